package registry_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"disco/registry"
)

// clock is a manual clock for Config.Now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }
func tcpCheck(addr string) registry.Check {
	return registry.Check{Type: registry.CheckTCP, Address: addr}
}
func ttlCheck(d time.Duration) registry.Check {
	return registry.Check{Type: registry.CheckTTL, TTL: dur(d)}
}

// inst returns a valid instance of service at "addr:port".
func inst(t testing.TB, service, id, addrPort string, checks ...registry.Check) *registry.Instance {
	t.Helper()
	ap := netip.MustParseAddrPort(addrPort)
	in, err := registry.NewInstance(service, id, registry.Registration{Address: ap.Addr().String(), Port: int(ap.Port()), Checks: checks})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// render writes a snapshot as text, one line per service and per instance.
func render(s *registry.Snapshot) string {
	var b strings.Builder
	for _, svc := range s.Services() {
		c := svc.Counts()
		fmt.Fprintf(&b, "%s: passing=%d warning=%d critical=%d maintenance=%d", svc.Name(), c.Passing, c.Warning, c.Critical, c.Maintenance)
		if svc.Explicit() {
			b.WriteString(" explicit")
		}
		if ttl := svc.Settings().DNSTTL; ttl != nil {
			fmt.Fprintf(&b, " ttl=%d", *ttl)
		}
		b.WriteString("\n")
		for _, in := range svc.Instances() {
			fmt.Fprintf(&b, "  %s %s %s rev=%d", in.ID, netip.AddrPortFrom(in.Address, in.Port), in.Status(), in.Revision)
			if in.Maintenance != nil {
				fmt.Fprintf(&b, " reason=%q", in.Maintenance.Reason)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestWrites runs a sequence of writes against one registry. After each it
// checks the error, the published snapshot, its version and Touched, and
// that the previous snapshot did not change.
func TestWrites(t *testing.T) {
	type step struct {
		name    string
		do      func(ctx context.Context, r *registry.Registry) error
		err     string   // the error's text, "" for success
		touched []string // nil: no new version
		want    string   // render of the snapshot after the step
	}
	register := func(in *registry.Instance) func(context.Context, *registry.Registry) error {
		return func(ctx context.Context, r *registry.Registry) error {
			_, err := r.Register(ctx, in)
			return err
		}
	}
	maintenance := func(service, id string, on bool, reason string) func(context.Context, *registry.Registry) error {
		return func(ctx context.Context, r *registry.Registry) error {
			_, err := r.SetMaintenance(ctx, service, id, on, reason)
			return err
		}
	}
	deregister := func(service, id string) func(context.Context, *registry.Registry) error {
		return func(ctx context.Context, r *registry.Registry) error { return r.Deregister(ctx, service, id) }
	}
	settings := func(service string, ttl int) func(context.Context, *registry.Registry) error {
		return func(ctx context.Context, r *registry.Registry) error {
			_, err := r.SetSettings(ctx, service, registry.Settings{DNSTTL: &ttl})
			return err
		}
	}
	steps := []step{
		{name: "first instance", do: register(inst(t, "web", "a1", "10.0.0.1:80")), touched: []string{"web"},
			want: "web: passing=1 warning=0 critical=0 maintenance=0\n  a1 10.0.0.1:80 passing rev=1\n"},
		{name: "instance with a check starts critical", do: register(inst(t, "web", "a2", "10.0.0.2:80", tcpCheck("10.0.0.2:80"))), touched: []string{"web"},
			want: "web: passing=1 warning=0 critical=1 maintenance=0\n  a1 10.0.0.1:80 passing rev=1\n  a2 10.0.0.2:80 critical rev=2\n"},
		{name: "another service", do: register(inst(t, "api", "b1", "[2001:db8::1]:443")), touched: []string{"api"},
			want: "api: passing=1 warning=0 critical=0 maintenance=0\n  b1 [2001:db8::1]:443 passing rev=3\n" +
				"web: passing=1 warning=0 critical=1 maintenance=0\n  a1 10.0.0.1:80 passing rev=1\n  a2 10.0.0.2:80 critical rev=2\n"},
		{name: "settings", do: settings("web", 30), touched: []string{"web"},
			want: "api: passing=1 warning=0 critical=0 maintenance=0\n  b1 [2001:db8::1]:443 passing rev=3\n" +
				"web: passing=1 warning=0 critical=1 maintenance=0 explicit ttl=30\n  a1 10.0.0.1:80 passing rev=1\n  a2 10.0.0.2:80 critical rev=2\n"},
		{name: "deregister unknown", do: deregister("web", "zz"),
			err: `deregister web/zz: not found: instance "zz" of service "web" is not registered`,
			want: "api: passing=1 warning=0 critical=0 maintenance=0\n  b1 [2001:db8::1]:443 passing rev=3\n" +
				"web: passing=1 warning=0 critical=1 maintenance=0 explicit ttl=30\n  a1 10.0.0.1:80 passing rev=1\n  a2 10.0.0.2:80 critical rev=2\n"},
		{name: "bad settings", do: settings("web", -1), err: `invalid: dns_ttl -1 is out of range 0-86400 seconds`,
			want: "api: passing=1 warning=0 critical=0 maintenance=0\n  b1 [2001:db8::1]:443 passing rev=3\n" +
				"web: passing=1 warning=0 critical=1 maintenance=0 explicit ttl=30\n  a1 10.0.0.1:80 passing rev=1\n  a2 10.0.0.2:80 critical rev=2\n"},
		{name: "settings for a bad name", do: settings("-web", 5), err: `invalid: service name "-web" must be lower-case letters, digits and inner hyphens (one DNS label)`,
			want: "api: passing=1 warning=0 critical=0 maintenance=0\n  b1 [2001:db8::1]:443 passing rev=3\n" +
				"web: passing=1 warning=0 critical=1 maintenance=0 explicit ttl=30\n  a1 10.0.0.1:80 passing rev=1\n  a2 10.0.0.2:80 critical rev=2\n"},
		{name: "drain", do: maintenance("web", "a1", true, "disk swap"), touched: []string{"web"},
			want: "api: passing=1 warning=0 critical=0 maintenance=0\n  b1 [2001:db8::1]:443 passing rev=3\n" +
				"web: passing=0 warning=0 critical=1 maintenance=1 explicit ttl=30\n  a1 10.0.0.1:80 maintenance rev=1 reason=\"disk swap\"\n  a2 10.0.0.2:80 critical rev=2\n"},
		{name: "re-registration keeps maintenance", do: register(inst(t, "web", "a1", "10.0.0.1:8080")), touched: []string{"web"},
			want: "api: passing=1 warning=0 critical=0 maintenance=0\n  b1 [2001:db8::1]:443 passing rev=3\n" +
				"web: passing=0 warning=0 critical=1 maintenance=1 explicit ttl=30\n  a1 10.0.0.1:8080 maintenance rev=4 reason=\"disk swap\"\n  a2 10.0.0.2:80 critical rev=2\n"},
		{name: "new drain reason", do: maintenance("web", "a1", true, "still swapping"), touched: []string{"web"},
			want: "api: passing=1 warning=0 critical=0 maintenance=0\n  b1 [2001:db8::1]:443 passing rev=3\n" +
				"web: passing=0 warning=0 critical=1 maintenance=1 explicit ttl=30\n  a1 10.0.0.1:8080 maintenance rev=4 reason=\"still swapping\"\n  a2 10.0.0.2:80 critical rev=2\n"},
		{name: "undrain", do: maintenance("web", "a1", false, ""), touched: []string{"web"},
			want: "api: passing=1 warning=0 critical=0 maintenance=0\n  b1 [2001:db8::1]:443 passing rev=3\n" +
				"web: passing=1 warning=0 critical=1 maintenance=0 explicit ttl=30\n  a1 10.0.0.1:8080 passing rev=4\n  a2 10.0.0.2:80 critical rev=2\n"},
		{name: "drain unknown", do: maintenance("web", "zz", true, ""),
			err: `set maintenance of web/zz: not found: instance "zz" of service "web" is not registered`,
			want: "api: passing=1 warning=0 critical=0 maintenance=0\n  b1 [2001:db8::1]:443 passing rev=3\n" +
				"web: passing=1 warning=0 critical=1 maintenance=0 explicit ttl=30\n  a1 10.0.0.1:8080 passing rev=4\n  a2 10.0.0.2:80 critical rev=2\n"},
		{name: "last instance of a service without settings", do: deregister("api", "b1"), touched: []string{"api"},
			want: "web: passing=1 warning=0 critical=1 maintenance=0 explicit ttl=30\n  a1 10.0.0.1:8080 passing rev=4\n  a2 10.0.0.2:80 critical rev=2\n"},
		{name: "deregister", do: deregister("web", "a1"), touched: []string{"web"},
			want: "web: passing=0 warning=0 critical=1 maintenance=0 explicit ttl=30\n  a2 10.0.0.2:80 critical rev=2\n"},
		{name: "last instance of a service with settings", do: deregister("web", "a2"), touched: []string{"web"},
			want: "web: passing=0 warning=0 critical=0 maintenance=0 explicit ttl=30\n"},
		{name: "settings create a service", do: settings("db", 0), touched: []string{"db"},
			want: "db: passing=0 warning=0 critical=0 maintenance=0 explicit ttl=0\nweb: passing=0 warning=0 critical=0 maintenance=0 explicit ttl=30\n"},
	}
	for _, mode := range []string{"memory", "store"} {
		t.Run(mode, func(t *testing.T) {
			cfg := registry.Config{Now: newClock().now}
			if mode == "store" {
				cfg.Store = newFakeStore()
			}
			r := registry.New(cfg)
			ctx := context.Background()
			for _, st := range steps {
				prev := r.Snapshot()
				before := render(prev)
				err := st.do(ctx, r)
				if got := fmt.Sprint(err); (err != nil || st.err != "") && got != st.err {
					t.Fatalf("%s: error %q, want %q", st.name, got, st.err)
				}
				s := r.Snapshot()
				if got := render(s); got != st.want {
					t.Fatalf("%s: snapshot\n%s\nwant\n%s", st.name, got, st.want)
				}
				if got := render(prev); got != before {
					t.Fatalf("%s: the previous snapshot changed from\n%s\nto\n%s", st.name, before, got)
				}
				if st.touched == nil {
					if s != prev || closed(prev.Changed()) {
						t.Fatalf("%s: a new version was published for no change", st.name)
					}
					continue
				}
				if s.Version() != prev.Version()+1 {
					t.Errorf("%s: version %d after %d", st.name, s.Version(), prev.Version())
				}
				if !closed(prev.Changed()) || closed(s.Changed()) {
					t.Errorf("%s: previous Changed closed=%v, current closed=%v", st.name, closed(prev.Changed()), closed(s.Changed()))
				}
				if got := fmt.Sprint(s.Touched()); got != fmt.Sprint(st.touched) {
					t.Errorf("%s: Touched() = %s, want %v", st.name, got, st.touched)
				}
			}
		})
	}
}

// TestRegisterKeepsOrResetsHealth re-registers an instance whose checks
// reported passing: health and revision carry over only when the instance
// would be checked the same way.
func TestRegisterKeepsOrResetsHealth(t *testing.T) {
	check := tcpCheck("10.0.0.1:80")
	tests := []struct {
		name   string
		again  *registry.Instance
		want   string // status and output after re-registration
		keepRv bool
	}{
		{"same targets", inst(t, "web", "a1", "10.0.0.1:80", check), "passing: 200 OK", true},
		{"other tags, meta and weight", func() *registry.Instance {
			in, err := registry.NewInstance("web", "a1", registry.Registration{Address: "10.0.0.1", Port: 80, Checks: []registry.Check{check},
				Tags: []string{"v3"}, Meta: map[string]string{"a": "b"}, Weight: intp(9), Priority: intp(2)})
			if err != nil {
				t.Fatal(err)
			}
			return in
		}(), "passing: 200 OK", true},
		{"other port", inst(t, "web", "a1", "10.0.0.1:81", check), "critical: waiting for the first check", false},
		{"other address", inst(t, "web", "a1", "10.0.0.2:80", check), "critical: waiting for the first check", false},
		{"other interval", inst(t, "web", "a1", "10.0.0.1:80", registry.Check{Type: registry.CheckTCP, Address: "10.0.0.1:80", Interval: dur(5 * time.Second)}), "critical: waiting for the first check", false},
		{"other check", inst(t, "web", "a1", "10.0.0.1:80", ttlCheck(time.Minute)), "critical: waiting for the first check", false},
		{"checks removed", inst(t, "web", "a1", "10.0.0.1:80"), "passing: no checks", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			r := registry.New(registry.Config{Store: newFakeStore(), Now: clk.now})
			first, err := r.Register(ctx, inst(t, "web", "a1", "10.0.0.1:80", check))
			if err != nil {
				t.Fatal(err)
			}
			clk.advance(time.Minute)
			if !r.SetHealth(first.Key(), first.Revision, registry.Health{Status: registry.StatusPassing, Output: "200 OK", Since: clk.now()}) {
				t.Fatal("SetHealth reported no change")
			}
			clk.advance(time.Minute)
			got, err := r.Register(ctx, tt.again)
			if err != nil {
				t.Fatal(err)
			}
			if s := fmt.Sprintf("%s: %s", got.Status(), got.Health.Output); s != tt.want {
				t.Errorf("after re-registration %q, want %q", s, tt.want)
			}
			if (got.Revision == first.Revision) != tt.keepRv {
				t.Errorf("revision %d after %d, want kept=%v", got.Revision, first.Revision, tt.keepRv)
			}
			if !got.Registered.Equal(first.Registered) {
				t.Errorf("registration time %v, want the first one %v", got.Registered, first.Registered)
			}
			if snap, _ := r.Snapshot().Instance("web", "a1"); snap != got {
				t.Errorf("Register returned %p, the snapshot holds %p", got, snap)
			}
		})
	}
}

func TestSetHealth(t *testing.T) {
	passing := registry.Health{Status: registry.StatusPassing, Output: "200 OK"}
	tests := []struct {
		name    string
		key     registry.Key
		rev     func(rev uint64) uint64
		h       registry.Health
		changed bool
		want    string // render of web after
	}{
		{"passing", registry.Key{Service: "web", ID: "a1"}, func(r uint64) uint64 { return r }, passing, true,
			"web: passing=1 warning=0 critical=0 maintenance=0\n  a1 10.0.0.1:80 passing rev=1\n"},
		{"warning", registry.Key{Service: "web", ID: "a1"}, func(r uint64) uint64 { return r }, registry.Health{Status: registry.StatusWarning, Output: "429"}, true,
			"web: passing=0 warning=1 critical=0 maintenance=0\n  a1 10.0.0.1:80 warning rev=1\n"},
		{"same status and output", registry.Key{Service: "web", ID: "a1"}, func(r uint64) uint64 { return r }, registry.Health{Status: registry.StatusCritical, Output: "waiting for the first check"}, false,
			"web: passing=0 warning=0 critical=1 maintenance=0\n  a1 10.0.0.1:80 critical rev=1\n"},
		{"older revision", registry.Key{Service: "web", ID: "a1"}, func(r uint64) uint64 { return r - 1 }, passing, false,
			"web: passing=0 warning=0 critical=1 maintenance=0\n  a1 10.0.0.1:80 critical rev=1\n"},
		{"unknown instance", registry.Key{Service: "web", ID: "zz"}, func(r uint64) uint64 { return r }, passing, false,
			"web: passing=0 warning=0 critical=1 maintenance=0\n  a1 10.0.0.1:80 critical rev=1\n"},
		{"unknown service", registry.Key{Service: "api", ID: "a1"}, func(r uint64) uint64 { return r }, passing, false,
			"web: passing=0 warning=0 critical=1 maintenance=0\n  a1 10.0.0.1:80 critical rev=1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := registry.New(registry.Config{Store: newFakeStore(), Now: newClock().now})
			in, err := r.Register(context.Background(), inst(t, "web", "a1", "10.0.0.1:80", tcpCheck("10.0.0.1:80")))
			if err != nil {
				t.Fatal(err)
			}
			prev := r.Snapshot()
			if got := r.SetHealth(tt.key, tt.rev(in.Revision), tt.h); got != tt.changed {
				t.Errorf("SetHealth = %v, want %v", got, tt.changed)
			}
			s := r.Snapshot()
			if got := render(s); got != tt.want {
				t.Errorf("snapshot\n%s\nwant\n%s", got, tt.want)
			}
			if tt.changed != (s.Version() == prev.Version()+1) {
				t.Errorf("version %d after %d with changed=%v", s.Version(), prev.Version(), tt.changed)
			}
			if tt.changed && fmt.Sprint(s.Touched()) != "[web]" {
				t.Errorf("Touched() = %v, want [web]", s.Touched())
			}
		})
	}
}

func TestReap(t *testing.T) {
	critical := registry.Health{Status: registry.StatusCritical, Output: "connection refused"}
	tests := []struct {
		name    string
		health  *registry.Health // reported before the reap; nil for none
		rev     func(rev uint64) uint64
		removed bool
		drained bool // in maintenance
	}{
		{"critical at its revision", &critical, func(r uint64) uint64 { return r }, true, false},
		{"critical, never passed", nil, func(r uint64) uint64 { return r }, true, false},
		{"passing", &registry.Health{Status: registry.StatusPassing}, func(r uint64) uint64 { return r }, false, false},
		{"warning", &registry.Health{Status: registry.StatusWarning}, func(r uint64) uint64 { return r }, false, false},
		{"older revision", &critical, func(r uint64) uint64 { return r - 1 }, false, false},
		{"newer revision", &critical, func(r uint64) uint64 { return r + 1 }, false, false},
		{"critical but in maintenance", &critical, func(r uint64) uint64 { return r }, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			r := registry.New(registry.Config{Store: newFakeStore(), Now: newClock().now})
			if _, err := r.Register(ctx, inst(t, "web", "a0", "10.0.0.1:80")); err != nil {
				t.Fatal(err)
			}
			in, err := r.Register(ctx, inst(t, "web", "a1", "10.0.0.1:80", tcpCheck("10.0.0.1:80")))
			if err != nil {
				t.Fatal(err)
			}
			if tt.health != nil {
				r.SetHealth(in.Key(), in.Revision, *tt.health)
			}
			if tt.drained {
				if _, err := r.SetMaintenance(ctx, "web", "a1", true, "disk"); err != nil {
					t.Fatal(err)
				}
			}
			prev := r.Snapshot()
			removed, err := r.Reap(ctx, in.Key(), tt.rev(in.Revision))
			if err != nil {
				t.Fatal(err)
			}
			if removed != tt.removed {
				t.Errorf("Reap = %v, want %v", removed, tt.removed)
			}
			_, still := r.Snapshot().Instance("web", "a1")
			if still == tt.removed {
				t.Errorf("instance still registered: %v", still)
			}
			if !tt.removed && r.Snapshot() != prev {
				t.Error("a Reap that removed nothing published a new snapshot")
			}
		})
	}
	t.Run("never registered", func(t *testing.T) {
		r := registry.New(registry.Config{})
		if removed, err := r.Reap(context.Background(), registry.Key{Service: "web", ID: "nope"}, 1); removed || err != nil {
			t.Errorf("Reap of an unknown instance = %v, %v; want false, nil", removed, err)
		}
	})
}

// TestLoad reads a store's state: instances with checks start critical, the
// others passing, maintenance is kept, and new revisions continue above the
// stored ones.
func TestLoad(t *testing.T) {
	fs := newFakeStore()
	add := func(in *registry.Instance, rev uint64, m *registry.Maintenance) {
		in.Revision, in.Maintenance = rev, m
		fs.instances[in.Key()] = in
	}
	add(inst(t, "web", "a1", "10.0.0.1:80"), 7, nil)
	add(inst(t, "web", "a2", "10.0.0.2:80", tcpCheck("10.0.0.2:80")), 41, nil)
	add(inst(t, "web", "a3", "10.0.0.3:80", tcpCheck("10.0.0.3:80")), 3, &registry.Maintenance{Reason: "rack move"})
	fs.services["db"] = registry.Settings{DNSTTL: intp(60)}

	r := registry.New(registry.Config{Store: fs, Now: newClock().now})
	prev := r.Snapshot()
	if err := r.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := r.Snapshot()
	want := "db: passing=0 warning=0 critical=0 maintenance=0 explicit ttl=60\n" +
		"web: passing=1 warning=0 critical=1 maintenance=1\n" +
		"  a1 10.0.0.1:80 passing rev=7\n  a2 10.0.0.2:80 critical rev=41\n  a3 10.0.0.3:80 maintenance rev=3 reason=\"rack move\"\n"
	if got := render(s); got != want {
		t.Errorf("loaded\n%s\nwant\n%s", got, want)
	}
	if !closed(prev.Changed()) || s.Version() != prev.Version()+1 {
		t.Error("Load did not publish a new version")
	}
	if fmt.Sprint(s.Touched()) != "[db web]" {
		t.Errorf("Touched() = %v, want [db web]", s.Touched())
	}
	in, err := r.Register(context.Background(), inst(t, "web", "a4", "10.0.0.4:80"))
	if err != nil {
		t.Fatal(err)
	}
	if in.Revision <= 41 {
		t.Errorf("new registration got revision %d, not above the stored 41", in.Revision)
	}
}

// TestLoadError reports the store's error.
func TestLoadError(t *testing.T) {
	r := registry.New(registry.Config{Store: failingLoad{}})
	err := r.Load(context.Background())
	if err == nil || err.Error() != "load registry: disk full" || !errors.Is(err, errDiskFull) {
		t.Errorf("Load: %v", err)
	}
}

type failingLoad struct{ registry.Store }

func (failingLoad) Load(context.Context) (*registry.State, error) { return nil, errDiskFull }
