package zones

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// zoneSrc returns a small valid zone with www at addr.
func zoneSrc(origin string, serial int, addr string) string {
	return fmt.Sprintf(`$ORIGIN %s
$TTL 300
@    IN SOA ns hostmaster %d 3600 600 86400 60
@    IN NS  ns
ns   IN A   192.0.2.53
www  IN A   %s
`, origin, serial, addr)
}

func writeFile(t *testing.T, path, src string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// wwwAddr returns what the Set answers for www.<origin> A, or "" if no address.
func wwwAddr(t *testing.T, s *Set, origin string) string {
	t.Helper()
	res, ok := s.Lookup("www."+origin, dns.TypeA)
	if !ok || len(res.Answer) != 1 {
		return ""
	}
	return res.Answer[0].(*dns.A).A.String()
}

func newTestManager(t *testing.T, dir string) (*Manager, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return NewManager(dir, discoReserved, log), &logs
}

func TestManagerNoDir(t *testing.T) {
	m, _ := newTestManager(t, "")
	if s := m.Current(); s == nil || s.Len() != 0 {
		t.Fatalf("Current() = %v, want an empty set", s)
	}
	rep, err := m.Reload(t.Context())
	if err != nil || len(rep.Zones) != 0 || len(rep.Errors) != 0 {
		t.Errorf("Reload() = %+v, %v", rep, err)
	}
	if _, ok := m.Current().Lookup("www.example.com.", dns.TypeA); ok {
		t.Error("empty set answered")
	}
}

func TestManagerReload(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "example.com.zone"), zoneSrc("example.com.", 1, "192.0.2.10"))
	writeFile(t, filepath.Join(dir, "example.net.zone"), zoneSrc("example.net.", 7, "198.51.100.10"))
	// Not zone files: ignored.
	writeFile(t, filepath.Join(dir, ".#example.org.zone"), "garbage")
	writeFile(t, filepath.Join(dir, "example.org.zone.bak"), "garbage")
	writeFile(t, filepath.Join(dir, "README"), "garbage")
	if err := os.Mkdir(filepath.Join(dir, "old.zone"), 0o755); err != nil {
		t.Fatal(err)
	}

	m, logs := newTestManager(t, dir)
	if m.Current().Len() != 0 {
		t.Fatal("NewManager loaded zones; it should start nothing")
	}
	before := m.Current().Generation()
	rep, err := m.Reload(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := Report{Generation: m.Current().Generation(), Zones: []ZoneInfo{
		{Origin: "example.com.", File: filepath.Join(dir, "example.com.zone"), Serial: 1, Records: 4},
		{Origin: "example.net.", File: filepath.Join(dir, "example.net.zone"), Serial: 7, Records: 4},
	}}
	if got, _ := json.Marshal(rep); string(got) != string(must(json.Marshal(want))) {
		t.Errorf("report:\n%s\nwant:\n%s", got, must(json.Marshal(want)))
	}
	if rep.Generation == before {
		t.Error("generation did not change")
	}
	if got := wwwAddr(t, m.Current(), "example.net."); got != "198.51.100.10" {
		t.Errorf("www.example.net. = %q", got)
	}
	if !strings.Contains(logs.String(), `level=INFO msg="zones reloaded" component=zones dir=`+dir+` zones=2 records=8 stale=0 errors=0`) {
		t.Errorf("logs:\n%s", logs.String())
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestManagerBrokenFileKeepsOld follows an operator through a bad edit:
// the broken file's previous version keeps serving until it is fixed.
func TestManagerBrokenFileKeepsOld(t *testing.T) {
	dir := t.TempDir()
	com := filepath.Join(dir, "example.com.zone")
	writeFile(t, com, zoneSrc("example.com.", 1, "192.0.2.10"))
	writeFile(t, filepath.Join(dir, "example.net.zone"), zoneSrc("example.net.", 1, "198.51.100.10"))
	m, logs := newTestManager(t, dir)
	if _, err := m.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}

	// Break example.com while changing it, and add a broken new zone.
	writeFile(t, com, zoneSrc("example.com.", 2, "192.0.2.11")+"oops IN A not-an-ip\n")
	bad := filepath.Join(dir, "bad.test.zone")
	writeFile(t, bad, "$ORIGIN bad.test.\n@ IN SOA ns hm 1 1 1 1 1\nwww IN A 999.1.1.1\n")
	writeFile(t, filepath.Join(dir, "example.net.zone"), zoneSrc("example.net.", 2, "198.51.100.11"))
	rep, err := m.Reload(t.Context())
	wantErrs := []string{
		bad + `:3: invalid A record: not an IPv4 address "999.1.1.1"`,
		com + `:7: invalid A record: not an IPv4 address "not-an-ip"`,
	}
	if err == nil || err.Error() != "reload zones: "+strings.Join(wantErrs, "\n") {
		t.Errorf("error:\n%v\nwant:\n%s", err, strings.Join(wantErrs, "\n"))
	}
	if len(rep.Errors) != 2 || rep.Errors[1].File != com || rep.Errors[1].Line != 7 {
		t.Errorf("report errors %v", rep.Errors)
	}
	if fmt.Sprint(rep.Err()) != strings.Join(wantErrs, "\n") {
		t.Errorf("Report.Err() = %v", rep.Err())
	}
	wantZones := []ZoneInfo{
		{Origin: "example.com.", File: com, Serial: 1, Records: 4, Stale: true},
		{Origin: "example.net.", File: filepath.Join(dir, "example.net.zone"), Serial: 2, Records: 4},
	}
	if fmt.Sprint(rep.Zones) != fmt.Sprint(wantZones) {
		t.Errorf("zones %v, want %v", rep.Zones, wantZones)
	}
	s := m.Current()
	if got := wwwAddr(t, s, "example.com."); got != "192.0.2.10" {
		t.Errorf("www.example.com. = %q, want the previous version's 192.0.2.10", got)
	}
	if got := wwwAddr(t, s, "example.net."); got != "198.51.100.11" {
		t.Errorf("www.example.net. = %q, want the new 198.51.100.11", got)
	}
	if s.Find("www.bad.test.") != nil {
		t.Error("broken new zone is served")
	}
	for _, want := range []string{
		`level=ERROR msg="zone file failed to load" component=zones file=` + com + ` err="invalid A record: not an IPv4 address \"not-an-ip\"" line=7 serving="previous version"`,
		`level=ERROR msg="zone file failed to load" component=zones file=` + bad + ` err="invalid A record: not an IPv4 address \"999.1.1.1\"" line=3`,
		`level=INFO msg="zones reloaded" component=zones dir=` + dir + ` zones=2 records=8 stale=1 errors=2`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack\n%s\nlogs:\n%s", want, logs.String())
		}
	}

	// Fixed: the new version is served.
	writeFile(t, com, zoneSrc("example.com.", 2, "192.0.2.11"))
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	rep, err = m.Reload(t.Context())
	if err != nil || len(rep.Zones) != 2 || rep.Zones[0].Stale {
		t.Fatalf("Reload() = %+v, %v", rep, err)
	}
	if got := wwwAddr(t, m.Current(), "example.com."); got != "192.0.2.11" {
		t.Errorf("www.example.com. = %q after the fix", got)
	}
}

func TestManagerRemovedFile(t *testing.T) {
	dir := t.TempDir()
	net := filepath.Join(dir, "example.net.zone")
	writeFile(t, filepath.Join(dir, "example.com.zone"), zoneSrc("example.com.", 1, "192.0.2.10"))
	writeFile(t, net, zoneSrc("example.net.", 1, "198.51.100.10"))
	m, _ := newTestManager(t, dir)
	if _, err := m.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	old := m.Current()
	if err := os.Remove(net); err != nil {
		t.Fatal(err)
	}
	rep, err := m.Reload(t.Context())
	if err != nil || len(rep.Zones) != 1 {
		t.Fatalf("Reload() = %+v, %v", rep, err)
	}
	if _, ok := m.Current().Lookup("www.example.net.", dns.TypeA); ok {
		t.Error("removed zone still served")
	}
	if got := wwwAddr(t, old, "example.net."); got != "198.51.100.10" {
		t.Errorf("the old set changed: %q", got)
	}
	// A file that was broken and is then removed stops serving too.
	writeFile(t, net, zoneSrc("example.net.", 1, "198.51.100.10"))
	if _, err := m.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	writeFile(t, net, "broken")
	if _, err := m.Reload(t.Context()); err == nil || wwwAddr(t, m.Current(), "example.net.") == "" {
		t.Fatalf("broken file: err %v, zone served: %v", err, m.Current().Find("example.net.") != nil)
	}
	if err := os.Remove(net); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Reload(t.Context()); err != nil || m.Current().Find("example.net.") != nil {
		t.Errorf("removed broken file: err %v, still served: %v", err, m.Current().Find("example.net.") != nil)
	}
}

func TestManagerDuplicateOrigin(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.zone"), filepath.Join(dir, "b.zone")
	writeFile(t, a, zoneSrc("example.com.", 1, "192.0.2.1"))
	writeFile(t, b, zoneSrc("example.org.", 1, "192.0.2.2"))
	m, _ := newTestManager(t, dir)
	if _, err := m.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	// b.zone now claims a.zone's origin: an error for b.zone, whose
	// previous version keeps serving.
	writeFile(t, b, zoneSrc("example.com.", 2, "192.0.2.3"))
	rep, err := m.Reload(t.Context())
	want := b + ":3: zone example.com. is already served from " + a
	if err == nil || err.Error() != "reload zones: "+want {
		t.Errorf("error %v, want %s", err, want)
	}
	if len(rep.Zones) != 2 || !rep.Zones[1].Stale || rep.Zones[1].Origin != "example.org." {
		t.Errorf("zones %+v", rep.Zones)
	}
	s := m.Current()
	if wwwAddr(t, s, "example.com.") != "192.0.2.1" || wwwAddr(t, s, "example.org.") != "192.0.2.2" {
		t.Errorf("answers changed: %s %s", wwwAddr(t, s, "example.com."), wwwAddr(t, s, "example.org."))
	}
	// A new file with a taken origin is not served at all.
	c := filepath.Join(dir, "c.zone")
	writeFile(t, c, zoneSrc("example.com.", 3, "192.0.2.4"))
	rep, err = m.Reload(t.Context())
	if err == nil || len(rep.Errors) != 2 || rep.Errors[1].File != c || len(rep.Zones) != 2 {
		t.Errorf("Reload() = %+v, %v", rep, err)
	}
}

func TestManagerDirProblems(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "example.com.zone"), zoneSrc("example.com.", 1, "192.0.2.10"))
	m, _ := newTestManager(t, dir)
	if _, err := m.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	gen := m.Current().Generation()

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := m.Reload(ctx); !errors.Is(err, context.Canceled) || m.Current().Generation() != gen {
		t.Errorf("canceled reload: %v, generation %d -> %d", err, gen, m.Current().Generation())
	}

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	rep, err := m.Reload(t.Context())
	// The directory is not a zone file: the error is no *Error (no file is
	// at fault), while the report lists the problem.
	var ze *Error
	if err == nil || errors.As(err, &ze) || !errors.Is(err, fs.ErrNotExist) ||
		err.Error() != "reload zones: "+dir+": cannot read zone directory: no such file or directory" {
		t.Errorf("missing directory: %v", err)
	}
	if len(rep.Errors) != 1 || rep.Errors[0].File != dir || !strings.Contains(rep.Errors[0].Msg, "no such file or directory") {
		t.Errorf("missing directory: report errors %+v", rep.Errors)
	}
	if m.Current().Generation() != gen || len(rep.Zones) != 1 || wwwAddr(t, m.Current(), "example.com.") != "192.0.2.10" {
		t.Errorf("a failed directory read changed what is served: %+v", rep)
	}
}

// TestManagerAtomicSwap reloads two zones that always change together
// while readers check that every Set they get holds both at one version.
func TestManagerAtomicSwap(t *testing.T) {
	dir := t.TempDir()
	write := func(v int) {
		addr := fmt.Sprintf("192.0.2.%d", v)
		writeFile(t, filepath.Join(dir, "example.com.zone"), zoneSrc("example.com.", v, addr))
		writeFile(t, filepath.Join(dir, "example.net.zone"), zoneSrc("example.net.", v, addr))
	}
	write(1)
	m, _ := newTestManager(t, dir)
	if _, err := m.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}

	var done atomic.Bool
	var wg sync.WaitGroup
	var seen atomic.Int64
	failures := make(chan string, 4)
	for range 4 {
		wg.Go(func() {
			var last uint64
			for !done.Load() {
				s := m.Current()
				if g := s.Generation(); g < last {
					failures <- fmt.Sprintf("generation went back from %d to %d", last, g)
					return
				} else {
					last = g
				}
				com, net := s.Find("example.com."), s.Find("example.net.")
				if com == nil || net == nil || com.SOA().Serial != net.SOA().Serial {
					failures <- fmt.Sprintf("half-loaded set: %v %v", com, net)
					return
				}
				want := fmt.Sprintf("192.0.2.%d", com.SOA().Serial)
				if a, b := wwwAddr(t, s, "example.com."), wwwAddr(t, s, "example.net."); a != want || b != want {
					failures <- fmt.Sprintf("serial %d answers %s and %s", com.SOA().Serial, a, b)
					return
				}
				seen.Add(1)
			}
		})
	}
	for v := 2; v <= 40; v++ {
		write(v)
		if _, err := m.Reload(t.Context()); err != nil {
			t.Error(err)
		}
	}
	done.Store(true)
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	if wwwAddr(t, m.Current(), "example.com.") != "192.0.2.40" {
		t.Error("last version not served")
	}
	t.Logf("%d consistent reads", seen.Load())
}
