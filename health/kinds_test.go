package health

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"disco/registry"
)

// runMonitor runs a real monitor (real checkers, exec included) on reg
// until the end of the test.
func runMonitor(t *testing.T, reg *registry.Registry, tweak func(*Config)) *Monitor {
	t.Helper()
	cfg := Config{Source: reg, Reporter: reg, Checkers: map[registry.CheckType]Checker{
		registry.CheckExec: testExecChecker(0),
	}}
	if tweak != nil {
		tweak(&cfg)
	}
	mon := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mon.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v", err)
		}
	})
	return mon
}

// waitFor polls cond every 10ms for up to d and reports whether it held.
func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// TestBadTargetsBesideAFastCheck runs checks whose targets misbehave in
// every way a check kind allows (a gRPC server that accepts and never
// answers, a TLS handshake that stalls, scripts that flood their output
// or fork children, a missing program) next to a fast HTTP check: each
// ends critical with a clear output within its timeout, and the fast
// check keeps its schedule.
func TestBadTargetsBesideAFastCheck(t *testing.T) {
	var mu sync.Mutex
	var hits []time.Time
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits = append(hits, time.Now())
		mu.Unlock()
	}))
	defer fast.Close()
	silent := silentListener(t)
	dir := t.TempDir()
	flood := script(t, dir, "flood", "yes flood-marker")
	forks := script(t, dir, "forks", "sleep 30 & sleep 30 & echo forked-marker; sleep 30")

	// The bad checks time out after 4s: a fast check held up by them would
	// miss its 200ms turns by that much, far more than a loaded machine
	// delays it.
	const interval, timeout = 5 * time.Second, 4 * time.Second
	slow := func(c registry.Check) registry.Check {
		c.Interval, c.Timeout, c.Fall = registry.Duration(interval), registry.Duration(timeout), 1
		return c
	}
	bad := []struct {
		id    string
		check registry.Check
		want  string
	}{
		{"grpc-silent", slow(registry.Check{Type: registry.CheckGRPC, Address: silent}),
			"timeout: " + silent + " accepted the connection but did not answer the HTTP/2 handshake within 4s"},
		{"tls-stall", slow(registry.Check{Type: registry.CheckHTTP, URL: "https://" + silent + "/health"}),
			"timeout: the TLS handshake with " + silent + " did not finish within 4s"},
		{"grpc-tls-stall", slow(registry.Check{Type: registry.CheckGRPC, Address: silent, TLS: true}),
			"timeout: " + silent + " accepted the connection but the TLS or HTTP/2 handshake did not finish within 4s"},
		{"exec-flood", slow(registry.Check{Type: registry.CheckExec, Command: []string{flood}}),
			"timeout: " + flood + " did not finish within 4s; killed it and its process group; output: flood-marker flood-marker"},
		{"exec-forks", slow(registry.Check{Type: registry.CheckExec, Command: []string{forks}}),
			"timeout: " + forks + " did not finish within 4s; killed it and its process group; output: forked-marker"},
		{"exec-missing", slow(registry.Check{Type: registry.CheckExec, Command: []string{filepath.Join(dir, "missing")}}),
			"cannot run " + filepath.Join(dir, "missing") + ": no such file"},
	}

	reg := registry.New(registry.Config{})
	fastCheck := registry.Check{Type: registry.CheckHTTP, URL: fast.URL + "/health",
		Interval: registry.Duration(200 * time.Millisecond), Timeout: registry.Duration(100 * time.Millisecond), Fall: 1}
	register(t, reg, "fast", "f-1", fastCheck)
	for _, b := range bad {
		register(t, reg, "bad", b.id, b.check)
	}
	start := time.Now()
	runMonitor(t, reg, nil)

	// Every first probe starts within min(interval, 1s) and ends within
	// its timeout: all are critical by then (give or take a loaded machine).
	for _, b := range bad {
		ok := waitFor(time.Second+timeout+2*time.Second-time.Since(start), func() bool {
			in, _ := reg.Snapshot().Instance("bad", b.id)
			return strings.HasPrefix(in.Health.Output, b.want)
		})
		in, _ := reg.Snapshot().Instance("bad", b.id)
		if !ok || in.Health.Status != registry.StatusCritical || len(in.Health.Output) > MaxOutput {
			t.Errorf("%s: %s %.160q, want critical %q", b.id, in.Health.Status, in.Health.Output, b.want)
		}
	}

	in, _ := reg.Snapshot().Instance("fast", "f-1")
	if in.Health.Status != registry.StatusPassing {
		t.Errorf("fast check: %s %q", in.Health.Status, in.Health.Output)
	}
	mu.Lock()
	defer mu.Unlock()
	elapsed := time.Since(start)
	if want := int(elapsed/(200*time.Millisecond)) / 2; len(hits) < want {
		t.Errorf("fast check probed %d times in %s, want at least %d", len(hits), elapsed.Round(time.Millisecond), want)
	}
	for i := 1; i < len(hits); i++ {
		if gap := hits[i].Sub(hits[i-1]); gap > timeout/2 {
			t.Errorf("fast check: %s between probes %d and %d (interval 200ms)", gap.Round(time.Millisecond), i, i+1)
		}
	}
}

// TestGRPCConnectionFollowsTargets checks that the monitor holds one gRPC
// connection per endpoint while instances check it, keeps it across a
// re-registration that changes the check, and closes it when the last
// instance goes.
func TestGRPCConnectionFollowsTargets(t *testing.T) {
	hs, l := grpcHealthServer(t, nil)
	addr := l.Addr().String()
	g := NewGRPCChecker()
	reg := registry.New(registry.Config{})
	check := func(interval time.Duration) registry.Check {
		return registry.Check{Type: registry.CheckGRPC, Address: addr, Service: "api",
			Interval: registry.Duration(interval), Timeout: registry.Duration(500 * time.Millisecond), Fall: 1}
	}
	register(t, reg, "api", "a-1", check(time.Second))
	register(t, reg, "api", "a-2", check(time.Second))
	runMonitor(t, reg, func(c *Config) { c.Checkers[registry.CheckGRPC] = g })

	status := func(id string) registry.Status {
		in, ok := reg.Snapshot().Instance("api", id)
		if !ok {
			return "gone"
		}
		return in.Health.Status
	}
	if !waitFor(6*time.Second, func() bool { return status("a-1") == registry.StatusPassing && status("a-2") == registry.StatusPassing }) {
		t.Fatalf("not passing: a-1 %s, a-2 %s", status("a-1"), status("a-2"))
	}
	hs.SetServingStatus("api", healthpb.HealthCheckResponse_NOT_SERVING)
	if !waitFor(6*time.Second, func() bool { return status("a-1") == registry.StatusCritical }) {
		t.Errorf("NOT_SERVING: a-1 is %s", status("a-1"))
	}
	hs.SetServingStatus("api", healthpb.HealthCheckResponse_SERVING)
	if !waitFor(6*time.Second, func() bool { return status("a-1") == registry.StatusPassing }) {
		t.Errorf("SERVING again: a-1 is %s", status("a-1"))
	}

	// A new revision of a-1 with another interval: same endpoint, same
	// connection.
	register(t, reg, "api", "a-1", check(2*time.Second))
	if !waitFor(6*time.Second, func() bool { return status("a-1") == registry.StatusPassing }) {
		t.Errorf("re-registered: a-1 is %s", status("a-1"))
	}
	if n := l.accepted.Load(); n != 1 {
		t.Errorf("%d connections for two instances of one endpoint, re-registered, want 1", n)
	}
	for _, id := range []string{"a-1", "a-2"} {
		if err := reg.Deregister(context.Background(), "api", id); err != nil {
			t.Fatal(err)
		}
	}
	if !waitFor(6*time.Second, func() bool { return g.Conns() == 0 && l.closed.Load() == 1 }) {
		t.Errorf("after both instances left: the checker holds %d connections, the server saw %d of %d closed",
			g.Conns(), l.closed.Load(), l.accepted.Load())
	}
}

// TestExecDisabled checks that a server without exec checks reports them
// critical, saying why.
func TestExecDisabled(t *testing.T) {
	reg := registry.New(registry.Config{})
	register(t, reg, "job", "j-1", registry.Check{Type: registry.CheckExec, Command: []string{"/bin/true"},
		Interval: registry.Duration(100 * time.Millisecond), Timeout: registry.Duration(50 * time.Millisecond)})
	runMonitor(t, reg, func(c *Config) { c.Checkers = nil })
	if !waitFor(3*time.Second, func() bool {
		in, _ := reg.Snapshot().Instance("job", "j-1")
		return in.Health.Output == "exec checks are not enabled on this server"
	}) {
		in, _ := reg.Snapshot().Instance("job", "j-1")
		t.Errorf("exec check on a server without them: %s %q", in.Health.Status, in.Health.Output)
	}
}
