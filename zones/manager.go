package zones

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
)

// Manager holds the current Set for a directory of zone files and reloads
// it safely: a file that fails to load keeps its previous version serving,
// and the new Set replaces the old one in a single atomic step.
type Manager struct {
	dir  string
	opts Options
	log  *slog.Logger

	cur atomic.Pointer[Set]

	mu sync.Mutex // serialises Reload
	// served maps each file to the zone currently served from it.
	served map[string]*Zone
}

// Report describes the outcome of a Reload.
type Report struct {
	// Generation is the generation of the Set now served.
	Generation uint64 `json:"generation"`
	// Zones lists the zones now served, sorted by origin.
	Zones []ZoneInfo `json:"zones"`
	// Errors lists every problem found, file by file.
	Errors []*Error `json:"errors,omitempty"`
}

// ZoneInfo describes one served zone.
type ZoneInfo struct {
	Origin  string `json:"origin"`
	File    string `json:"file"`
	Serial  uint32 `json:"serial"`
	Records int    `json:"records"`
	// Stale is true when the file failed to load this time and the
	// version loaded before is still served.
	Stale bool `json:"stale,omitempty"`
}

// NewManager returns a Manager for the "*.zone" files in dir; dir "" means
// no zones. It starts nothing and loads nothing: Current is an empty Set
// until the first Reload. log nil discards logs.
func NewManager(dir string, opts Options, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{dir: dir, opts: opts, log: log.With("component", "zones"), served: map[string]*Zone{}}
	m.cur.Store(emptySet())
	return m
}

// Dir returns the directory the Manager loads from.
func (m *Manager) Dir() string { return m.dir }

// Current returns the Set being served. It is never nil and never blocks.
func (m *Manager) Current() *Set { return m.cur.Load() }

// Reload reads every "*.zone" file in the directory (hidden files excepted)
// and swaps in the new Set. A file that fails to load is reported, logged,
// and its previous version, if any, keeps serving; a removed file's zone
// stops being served. When two files hold the same origin, the first in
// name order is served and the other is an error.
//
// The error is nil when everything loaded; otherwise it joins the problems
// listed in the Report, each an *Error naming its file (errors.As finds the
// first). When the directory cannot be read, or ctx ends first, nothing
// changes, and the error is not an *Error.
func (m *Manager) Reload(ctx context.Context) (Report, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dir == "" {
		return m.report(m.Current(), nil, nil), nil
	}
	files, err := m.list()
	if err != nil {
		e := &Error{File: m.dir, Msg: "cannot read zone directory: " + pathErrText(err)}
		m.log.Error("zone reload failed, keeping the zones served", "dir", m.dir, "err", e.Msg)
		cause := err
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			cause = pe.Err
		}
		// Not an *Error: no zone file is at fault.
		return m.report(m.Current(), nil, []*Error{e}), fmt.Errorf("reload zones: %s: cannot read zone directory: %w", m.dir, cause)
	}

	var errs []*Error
	served := make(map[string]*Zone, len(files))
	stale := make(map[string]bool)
	owner := make(map[string]string) // origin -> file serving it
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return m.report(m.Current(), nil, nil), fmt.Errorf("reload zones: %w", err)
		}
		z, ferrs := m.load(f)
		if z != nil {
			if prev, taken := owner[z.origin]; taken {
				ferrs = append(ferrs, &Error{File: f, Line: z.soaLine,
					Msg: fmt.Sprintf("zone %s is already served from %s", z.origin, prev)})
				z = nil
			}
		}
		errs = append(errs, ferrs...)
		if z == nil {
			// Keep what this file served before, unless another file
			// took its origin.
			old := m.served[f]
			if old == nil {
				continue
			}
			if _, taken := owner[old.origin]; taken {
				continue
			}
			z = old
			stale[f] = true
		}
		owner[z.origin] = f
		served[f] = z
	}

	zs := make([]*Zone, 0, len(served))
	for _, z := range served {
		zs = append(zs, z)
	}
	next, err := NewSet(zs...)
	if err != nil { // cannot happen: origins are unique by construction
		return m.report(m.Current(), nil, errs), fmt.Errorf("reload zones: %w", err)
	}
	m.cur.Store(next)
	m.served = served

	for _, e := range errs {
		attrs := []any{"file", e.File, "err", e.Msg}
		if e.Line > 0 {
			attrs = append(attrs, "line", e.Line)
		}
		if stale[e.File] {
			attrs = append(attrs, "serving", "previous version")
		}
		m.log.Error("zone file failed to load", attrs...)
	}
	records := 0
	for _, z := range zs {
		records += z.records
	}
	m.log.Info("zones reloaded", "dir", m.dir, "zones", len(zs), "records", records,
		"stale", len(stale), "errors", len(errs), "generation", next.gen)

	rep := m.report(next, stale, errs)
	if len(errs) > 0 {
		return rep, fmt.Errorf("reload zones: %w", joinErrors(errs))
	}
	return rep, nil
}

// load parses one file, returning the zone or its problems.
func (m *Manager) load(path string) (*Zone, []*Error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, []*Error{{File: path, Msg: "cannot read: " + pathErrText(err)}}
	}
	defer f.Close()
	return parse(f, OriginFromFileName(path), path, m.opts)
}

// list returns the paths of the zone files in the directory, in name order.
func (m *Manager) list() ([]string, error) {
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".zone") || strings.HasPrefix(name, ".") || e.IsDir() {
			continue
		}
		files = append(files, filepath.Join(m.dir, name))
	}
	return files, nil
}

func (m *Manager) report(s *Set, stale map[string]bool, errs []*Error) Report {
	r := Report{Generation: s.gen, Zones: make([]ZoneInfo, 0, len(s.zones)), Errors: errs}
	for _, z := range s.zones {
		r.Zones = append(r.Zones, ZoneInfo{
			Origin: z.origin, File: z.file, Serial: z.soa.Serial, Records: z.records, Stale: stale[z.file],
		})
	}
	return r
}

// Err returns the Report's problems joined, or nil.
func (r Report) Err() error {
	if len(r.Errors) == 0 {
		return nil
	}
	all := make([]error, len(r.Errors))
	for i, e := range r.Errors {
		all[i] = e
	}
	return errors.Join(all...)
}
