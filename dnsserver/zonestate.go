package dnsserver

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"

	"disco/registry"
	"disco/zones"
)

// zoneState is what DNS answers from at one instant: one registry snapshot,
// one set of zones, and the discovery zone's serial for them. Queries and
// transfers take the current state once and answer from it alone.
type zoneState struct {
	snap   *registry.Snapshot
	zs     *zones.Set // nil: no zones
	serial uint32
}

// zoneTracker keeps the current zoneState. The serial moves on lazily: the
// first reader that finds a newer snapshot or zone set computes what
// changed in the discovery zone (through the answer code), takes the next
// serial if anything did, and records the difference in the journal for
// IXFR. So the serial is right from the moment the registry publishes a
// change, whoever asks first (a query, a transfer, or Run).
type zoneTracker struct {
	cfg     *Config
	src     Source
	zones   ZoneSource
	serials *Serials
	journal *journal
	notify  func(zone string, soa *dns.SOA)
	log     *slog.Logger

	cur atomic.Pointer[zoneState]
	mu  sync.Mutex // serialises advance
}

func newZoneTracker(cfg *Config, src Source, zs ZoneSource, log *slog.Logger) *zoneTracker {
	t := &zoneTracker{cfg: cfg, src: src, zones: zs, serials: cfg.Serials, notify: cfg.Notify, log: log,
		journal: &journal{maxVersions: cfg.JournalVersions, maxBytes: cfg.JournalBytes}}
	if t.journal.maxVersions <= 0 {
		t.journal.maxVersions = DefaultJournalVersions
	}
	if t.journal.maxBytes <= 0 {
		t.journal.maxBytes = DefaultJournalBytes
	}
	first := cfg.Serial
	if t.serials != nil {
		first = t.serials.First()
	}
	t.cur.Store(&zoneState{snap: src.Snapshot(), zs: t.currentZones(), serial: first})
	return t
}

func (t *zoneTracker) currentZones() *zones.Set {
	if t.zones == nil {
		return nil
	}
	return t.zones.Current()
}

// current returns the state for the newest snapshot and zones. It costs
// three atomic loads unless something changed since the last call.
func (t *zoneTracker) current() *zoneState {
	st := t.cur.Load()
	if st.snap == t.src.Snapshot() && st.zs == t.currentZones() {
		return st
	}
	return t.advance()
}

// advance moves the state to the newest snapshot and zones.
func (t *zoneTracker) advance() *zoneState {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.cur.Load()
	snap, zs := t.src.Snapshot(), t.currentZones()
	if old.snap == snap && old.zs == zs {
		return old
	}
	next := &zoneState{snap: snap, zs: zs, serial: old.serial}
	del, add := t.cfg.diff(old.snap, snap, old.zs, zs)
	if len(del)+len(add) > 0 {
		serial, err := t.nextSerial(old.serial)
		if err != nil {
			t.log.Error("zone serial ceiling not stored; a restart may reuse serials", "serial", serial, "err", err)
		}
		next.serial = serial
		t.journal.add(old.serial, serial, del, add)
	}
	t.cur.Store(next)
	if next.serial != old.serial {
		t.log.Debug("discovery zone changed", "serial", next.serial, "deleted", len(del), "added", len(add))
		t.notifyZone(t.cfg.Domain, t.cfg.zoneSOA(snap, zs, next.serial))
		t.notifyReverse(next.serial)
	}
	if old.zs != zs {
		t.notifyStatic(old.zs, zs)
	}
	return next
}

func (t *zoneTracker) nextSerial(prev uint32) (uint32, error) {
	if t.serials == nil {
		return prev + 1, nil
	}
	return t.serials.Next(prev)
}

func (t *zoneTracker) notifyZone(zone string, soa *dns.SOA) {
	if t.notify != nil {
		t.notify(zone, soa)
	}
}

// notifyReverse announces the reverse zones, which share the discovery
// zone's serial.
func (t *zoneTracker) notifyReverse(serial uint32) {
	for i := range t.cfg.reverse {
		z := &t.cfg.reverse[i]
		t.notifyZone(z.origin, withSerial(t.cfg.reverseSOA(z.origin, z, t.cfg.TTL).(*dns.SOA), serial))
	}
}

// notifyStatic announces the static zones that are new in zs or whose SOA
// serial changed since old (the discovery domain's own file is part of the
// discovery zone).
func (t *zoneTracker) notifyStatic(old, zs *zones.Set) {
	if zs == nil {
		return
	}
	for _, z := range zs.Zones() {
		if z.Origin() == t.cfg.Domain {
			continue
		}
		if old != nil {
			if prev := old.Zone(z.Origin()); prev != nil && prev.SOA().Serial == z.SOA().Serial {
				continue
			}
		}
		t.notifyZone(z.Origin(), z.SOA())
	}
}

// run keeps the state current until ctx is done: it announces every zone
// once at the start, then moves on (and announces) as soon as the registry
// or the zones change, without waiting for a query.
func (t *zoneTracker) run(ctx context.Context) error {
	st := t.current()
	t.notifyZone(t.cfg.Domain, t.cfg.zoneSOA(st.snap, st.zs, st.serial))
	t.notifyReverse(st.serial)
	t.notifyStatic(nil, st.zs)
	for {
		var zonesChanged <-chan struct{}
		if st.zs != nil {
			zonesChanged = st.zs.Changed()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-st.snap.Changed():
		case <-zonesChanged:
		}
		st = t.current()
	}
}
