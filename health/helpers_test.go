package health

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"disco/registry"
)

// world is a fake network for the monitor tests: each check target (URL or
// address) answers as told, and every probe is recorded. A target nobody
// set refuses connections.
type world struct {
	mu       sync.Mutex
	answers  map[string]answer
	scripts  map[string][]answer
	calls    map[string][]time.Time
	inFlight int
	maxIn    int
	// per-target probes in flight, and the most seen at once
	targetIn  map[string]int
	targetMax map[string]int
}

// answer is how a target answers a probe.
type answer struct {
	status registry.Status
	output string
	hang   bool          // never answers: the probe runs out of time
	delay  time.Duration // answers after this long
}

var (
	up      = answer{status: registry.StatusPassing, output: "HTTP 200 OK"}
	busy    = answer{status: registry.StatusWarning, output: "HTTP 429 Too Many Requests"}
	down    = answer{status: registry.StatusCritical, output: "connection refused"}
	broken  = answer{status: registry.StatusCritical, output: "HTTP 500 Internal Server Error"}
	hanging = answer{hang: true}
)

func newWorld() *world {
	return &world{answers: make(map[string]answer), scripts: make(map[string][]answer),
		calls: make(map[string][]time.Time), targetIn: make(map[string]int), targetMax: make(map[string]int)}
}

func (w *world) set(target string, a answer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.answers[target] = a
}

// script makes the n-th probe of target get answers[n]; the last answer
// repeats.
func (w *world) script(target string, answers ...answer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.scripts[target] = answers
}

// probes returns the times target was probed.
func (w *world) probes(target string) []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Time(nil), w.calls[target]...)
}

func (w *world) Check(ctx context.Context, c registry.Check) Result {
	target := c.URL + c.Address
	w.mu.Lock()
	w.calls[target] = append(w.calls[target], time.Now())
	a, ok := w.answers[target]
	if !ok {
		a = down
	}
	if s := w.scripts[target]; len(s) > 0 {
		a = s[min(len(w.calls[target])-1, len(s)-1)]
	}
	w.inFlight++
	w.maxIn = max(w.maxIn, w.inFlight)
	w.targetIn[target]++
	w.targetMax[target] = max(w.targetMax[target], w.targetIn[target])
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.inFlight--
		w.targetIn[target]--
		w.mu.Unlock()
	}()
	if a.hang {
		<-ctx.Done()
		return Result{registry.StatusCritical, "timeout: no response within " + c.Timeout.String()}
	}
	if a.delay > 0 {
		select {
		case <-time.After(a.delay):
		case <-ctx.Done():
			return Result{registry.StatusCritical, "timeout: no response within " + c.Timeout.String()}
		}
	}
	return Result{a.status, a.output}
}

// report is one SetHealth call the monitor made.
type report struct {
	at  time.Time
	key registry.Key
	rev uint64
	h   registry.Health
}

// recorder is the real registry as Reporter, remembering what it was told.
type recorder struct {
	*registry.Registry
	mu      sync.Mutex
	reports []report
	reaps   []registry.Key
}

func (r *recorder) SetHealth(k registry.Key, rev uint64, h registry.Health) bool {
	r.mu.Lock()
	r.reports = append(r.reports, report{time.Now(), k, rev, h})
	r.mu.Unlock()
	return r.Registry.SetHealth(k, rev, h)
}

func (r *recorder) Reap(ctx context.Context, k registry.Key, rev uint64) (bool, error) {
	ok, err := r.Registry.Reap(ctx, k, rev)
	if ok {
		r.mu.Lock()
		r.reaps = append(r.reaps, k)
		r.mu.Unlock()
	}
	return ok, err
}

// of returns the reports about instance k.
func (r *recorder) of(k registry.Key) []report {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []report
	for _, rp := range r.reports {
		if rp.key == k {
			out = append(out, rp)
		}
	}
	return out
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(substr string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range strings.Split(s.b.String(), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

// harness is a monitor running on a real in-memory registry with a fake
// network, inside a synctest bubble.
type harness struct {
	t     *testing.T
	reg   *registry.Registry
	rec   *recorder
	world *world
	mon   *Monitor
	logs  *syncBuffer
	lags  []time.Duration
	lagMu sync.Mutex

	cancel context.CancelFunc
	done   chan error
}

// start runs a monitor; call it inside synctest.Test. The monitor stops at
// the end of the test.
func start(t *testing.T, tweak func(*Config)) *harness {
	t.Helper()
	reg := registry.New(registry.Config{})
	h := &harness{t: t, reg: reg, rec: &recorder{Registry: reg}, world: newWorld(), logs: &syncBuffer{}}
	cfg := Config{
		Source:   reg,
		Reporter: h.rec,
		Logger:   slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Checkers: map[registry.CheckType]Checker{registry.CheckHTTP: h.world, registry.CheckTCP: h.world},
		OnLag: func(d time.Duration) {
			h.lagMu.Lock()
			h.lags = append(h.lags, d)
			h.lagMu.Unlock()
		},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	h.mon = New(cfg)
	h.run()
	t.Cleanup(h.stop)
	return h
}

// run starts the monitor's Run and lets it reconcile.
func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.mon.Run(ctx) }()
	synctest.Wait()
}

// stop ends Run and checks that it returned cleanly.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("Run returned %v", err)
	}
	h.cancel = nil
}

// register registers instance id of service with checks and returns it as
// stored.
func (h *harness) register(service, id string, checks ...registry.Check) *registry.Instance {
	h.t.Helper()
	return register(h.t, h.reg, service, id, checks...)
}

func register(t *testing.T, reg *registry.Registry, service, id string, checks ...registry.Check) *registry.Instance {
	t.Helper()
	in, err := registry.NewInstance(service, id, registry.Registration{Address: "10.0.0.1", Port: 80, Checks: checks})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := reg.Register(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

// statusAt returns the status the registry held for k at time at,
// according to the reports made so far (initial is the status before any).
func (h *harness) statusAt(k registry.Key, at time.Time, initial registry.Status) registry.Status {
	s := initial
	for _, r := range h.rec.of(k) {
		if r.at.After(at) {
			break
		}
		s = r.h.Status
	}
	return s
}

// health returns the registry's health of k.
func (h *harness) health(k registry.Key) registry.Health {
	h.t.Helper()
	in, ok := h.reg.Snapshot().Instance(k.Service, k.ID)
	if !ok {
		h.t.Fatalf("%s is not registered", k)
	}
	return in.Health
}

// status returns the registry's status of k, or "gone".
func (h *harness) status(k registry.Key) registry.Status {
	in, ok := h.reg.Snapshot().Instance(k.Service, k.ID)
	if !ok {
		return "gone"
	}
	return in.Health.Status
}

// sleep advances the bubble's clock by d and lets everything settle.
func sleep(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// check describes a check the way a registration would (before defaults).
func hc(url string, interval, timeout time.Duration, rise, fall int) registry.Check {
	return registry.Check{Type: registry.CheckHTTP, URL: url, Interval: registry.Duration(interval),
		Timeout: registry.Duration(timeout), Rise: rise, Fall: fall}
}

func endpoint(n int) string { return fmt.Sprintf("http://10.0.0.1:80/health/%d", n) }
