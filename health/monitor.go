// Package health runs disco's active health checks. A Monitor learns its
// targets from registry snapshots, probes http, tcp, grpc and exec checks
// on a fixed, jittered schedule with a cap on probes in flight, expires ttl
// checks that miss their heartbeats, applies rise and fall thresholds,
// reports status transitions to the registry, and deregisters instances
// that stay critical longer than their checks' deregister_after.
package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"disco/registry"
)

// DefaultMaxInFlight is the default cap on probes in flight.
const DefaultMaxInFlight = 512

// spareWorkers is how many idle probe workers stay for the next probes; a
// worker finding more idle ones ends.
const spareWorkers = 16

// reapRetry is how long the monitor waits before asking again to reap an
// instance when a Reap call failed or found the instance not critical.
const reapRetry = 10 * time.Second

// Source gives the monitor registry snapshots. Snapshot().Changed() is
// closed when a newer version is published, and Touched() names the
// services that changed since the previous version. *registry.Registry
// implements it.
type Source interface {
	Snapshot() *registry.Snapshot
}

// Reporter receives the monitor's conclusions. *registry.Registry
// implements it. The monitor calls SetHealth with its own lock held, so
// that results reach the registry in order; a Reporter must not call back
// into the Monitor.
type Reporter interface {
	// SetHealth records the health of instance k at revision rev; a result
	// for another revision is ignored.
	SetHealth(k registry.Key, rev uint64, h registry.Health) bool
	// Reap durably removes instance k if it is still at revision rev and
	// critical, and reports whether it did.
	Reap(ctx context.Context, k registry.Key, rev uint64) (bool, error)
}

// Observer is told of every check run, whether or not it changed
// anything. *registry.Registry implements it.
type Observer interface {
	// ObserveCheck records a run of the checks of instance k at revision
	// rev.
	ObserveCheck(k registry.Key, rev uint64, run registry.CheckRun)
}

// Config configures a Monitor.
type Config struct {
	// Source gives the registry snapshots to watch (required).
	Source Source
	// Reporter receives health transitions and reaps (required).
	Reporter Reporter
	// Logger receives transitions, reaps, start and stop; nil discards.
	Logger *slog.Logger
	// MaxInFlight caps the probes running at once; 0 means
	// DefaultMaxInFlight. A probe due while the cap is reached waits for a
	// slot, and a check whose last probe still waits skips its next turn.
	MaxInFlight int
	// Checkers overrides the checker of a check type; types not in it use
	// the real HTTPChecker, TCPChecker and GRPCChecker, and exec checks are
	// Disabled unless an ExecChecker is given here.
	Checkers map[registry.CheckType]Checker
	// OnCheck, if set, is called after every probe with the check's type,
	// the probe's status and how long it took (for metrics).
	OnCheck func(t registry.CheckType, s registry.Status, took time.Duration)
	// OnLag, if set, is called when a probe starts with how late it is
	// against its schedule, waiting for a free slot included (for metrics).
	// OnCheck and OnLag are called from many goroutines at once.
	OnLag func(lag time.Duration)
	// Observer, if set, is told of every probe result, heartbeat and ttl
	// expiry with the instance's status, output and consecutive failures
	// after it. It is called with the monitor's lock held and must not
	// call back into the Monitor.
	Observer Observer
	// Owns, if set, tells which instances this monitor checks: when several
	// servers share one registry, each checks its share. Nil checks every
	// instance. When its answers change, call Rebalance.
	Owns func(k registry.Key) bool
}

func (c Config) validate() error {
	var errs []error
	if c.Source == nil {
		errs = append(errs, errors.New("source is required"))
	}
	if c.Reporter == nil {
		errs = append(errs, errors.New("reporter is required"))
	}
	if c.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("max in flight %d must not be negative", c.MaxInFlight))
	}
	for typ, ch := range c.Checkers {
		if ch == nil {
			errs = append(errs, fmt.Errorf("checker for %q is nil", typ))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("health monitor config: %w", err)
	}
	return nil
}

// Monitor runs the health checks of every instance in its Source. Its
// methods are safe for concurrent use.
type Monitor struct {
	cfg         Config
	log         *slog.Logger
	checkers    map[registry.CheckType]Checker
	maxInFlight int
	wake        chan struct{}
	wg          sync.WaitGroup

	mu      sync.Mutex
	running bool
	// snap is the last snapshot reconciled.
	snap *registry.Snapshot
	// rebalance asks the next sync to reconsider every instance.
	rebalance bool
	services  map[string]*watched
	queue     queue

	// Probes due wait in jobs for one of at most maxInFlight workers.
	// Idle workers wait on work; idle counts those not yet woken.
	jobs    []job
	workers int
	idle    int
	work    *sync.Cond
}

// job is a probe waiting for a worker.
type job struct {
	c   *check
	due time.Time
}

// watched is the monitor's view of one service: the version of it last
// reconciled and the targets of its instances that have checks.
type watched struct {
	svc     *registry.Service
	targets map[string]*target
}

// New returns a Monitor for cfg. It starts nothing; call Run.
func New(cfg Config) *Monitor {
	m := &Monitor{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1)}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.log = m.log.With("component", "health")
	m.checkers = map[registry.CheckType]Checker{
		registry.CheckHTTP: NewHTTPChecker(),
		registry.CheckTCP:  NewTCPChecker(),
		registry.CheckGRPC: NewGRPCChecker(),
		registry.CheckExec: Disabled("exec checks are not enabled on this server"),
	}
	for typ, ch := range cfg.Checkers {
		m.checkers[typ] = ch
	}
	m.maxInFlight = cfg.MaxInFlight
	if m.maxInFlight <= 0 {
		m.maxInFlight = DefaultMaxInFlight
	}
	m.work = sync.NewCond(&m.mu)
	return m
}

// Run checks the instances of the Source until ctx is done. It starts from
// the health each instance has in the registry (after a restart: critical
// for instances with checks) and runs every first probe within
// min(interval, 1s). All its goroutines have ended when it returns; it
// returns nil once ctx is done, or an error if it cannot start.
func (m *Monitor) Run(ctx context.Context) error {
	if err := m.cfg.validate(); err != nil {
		return err
	}
	m.mu.Lock()
	if m.running {
		m.mu.Unlock()
		return errors.New("health monitor is already running")
	}
	m.running = true
	m.snap, m.services, m.queue = nil, make(map[string]*watched), nil
	m.mu.Unlock()
	m.log.Info("health monitor started", "max_in_flight", m.maxInFlight)

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		m.mu.Lock()
		now := time.Now()
		m.sync(now)
		next, ok := m.fire(ctx, now)
		changed := m.snap.Changed()
		m.mu.Unlock()
		if ok {
			timer.Reset(time.Until(next))
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			m.stop()
			return nil
		case <-changed:
		case <-timer.C:
		case <-m.wake:
		}
	}
}

// stop forgets every target and waits for probes and reaps in flight.
func (m *Monitor) stop() {
	m.mu.Lock()
	m.running = false
	for _, w := range m.services {
		for _, t := range w.targets {
			m.drop(t)
		}
	}
	m.snap, m.services, m.queue, m.jobs = nil, nil, nil, nil
	m.idle = 0
	m.work.Broadcast()
	m.mu.Unlock()
	m.wg.Wait()
	m.log.Info("health monitor stopped")
}

// Rebalance makes the monitor ask Config.Owns again about every instance:
// it starts checking the instances it now owns, from the health the
// registry holds for them, and stops checking those it no longer owns.
func (m *Monitor) Rebalance() {
	m.mu.Lock()
	m.rebalance = true
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// owns reports whether the monitor checks instance k.
func (m *Monitor) owns(k registry.Key) bool { return m.cfg.Owns == nil || m.cfg.Owns(k) }

// Heartbeat renews the ttl checks of instance k: each heartbeat counts as a
// passing result, so the checks pass at once when their rise is 1, and each
// stays passing for its ttl. The error wraps registry.ErrNotFound when the
// instance is not registered, registry.ErrInvalid when it has no ttl check,
// and registry.ErrUnavailable when the monitor is not running.
func (m *Monitor) Heartbeat(k registry.Key) error {
	k = registry.Key{Service: registry.Fold(k.Service), ID: registry.Fold(k.ID)}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.running {
		return fmt.Errorf("heartbeat %s: %w: health checks are not running", k, registry.ErrUnavailable)
	}
	now := time.Now()
	m.sync(now)
	var t *target
	if w := m.services[k.Service]; w != nil {
		t = w.targets[k.ID]
	}
	if t == nil {
		if _, ok := m.snap.Instance(k.Service, k.ID); !ok {
			return registry.NotFound("instance %q of service %q is not registered", k.ID, k.Service).In("heartbeat " + k.String())
		}
		return registry.Invalid("the instance has no ttl check").In("heartbeat " + k.String())
	}
	found, first := false, false
	for _, c := range t.checks {
		if c.spec.Type != registry.CheckTTL {
			continue
		}
		found, first = true, first || !c.seen
		if c.observe(Result{registry.StatusPassing, "heartbeat received"}, now) {
			m.checkChanged(c)
		}
		m.schedule(&c.next, now.Add(c.spec.TTL.Std()))
	}
	if !found {
		return registry.Invalid("the instance has no ttl check").In("heartbeat " + k.String())
	}
	m.settle(t, now, first)
	return nil
}

// sync reconciles the targets with the Source's current snapshot: with the
// services the snapshot says it touched when it directly follows the last
// one reconciled, with the services that differ between the two otherwise,
// and with every service the first time and after Rebalance. Called with
// m.mu held.
func (m *Monitor) sync(now time.Time) {
	snap := m.cfg.Source.Snapshot()
	prev := m.snap
	all := m.rebalance
	if prev == snap && !all {
		return
	}
	m.snap, m.rebalance = snap, false
	if !all && prev != nil && snap.Version() == prev.Version()+1 {
		for _, name := range snap.Touched() {
			svc, _ := snap.Service(name)
			m.syncService(name, svc, now)
		}
		return
	}
	if !all && prev != nil {
		// Versions were skipped: compare the two snapshots, which costs
		// the size of the change.
		for _, name := range snap.ChangedSince(prev) {
			svc, _ := snap.Service(name)
			m.syncService(name, svc, now)
		}
		return
	}
	for _, svc := range snap.Services() {
		if w := m.services[svc.Name()]; all || w == nil || w.svc != svc {
			m.syncService(svc.Name(), svc, now)
		}
	}
	for name := range m.services {
		if _, ok := snap.Service(name); !ok {
			m.syncService(name, nil, now)
		}
	}
}

// syncService reconciles the targets of one service with svc (nil when the
// service is gone): new instances and new revisions get targets whose
// first probes are scheduled, removed ones lose theirs, and so do those the
// monitor does not own.
func (m *Monitor) syncService(name string, svc *registry.Service, now time.Time) {
	w := m.services[name]
	if w == nil {
		if svc == nil {
			return
		}
		w = &watched{targets: make(map[string]*target)}
	}
	w.svc = svc
	if svc != nil {
		for _, in := range svc.Instances() {
			t := w.targets[in.ID]
			owned := len(in.Checks) > 0 && m.owns(in.Key())
			if t != nil && t.rev == in.Revision && owned {
				m.syncMaintenance(t, in.Maintenance != nil, now)
				continue
			}
			// Watch the new revision before dropping the old one, so that
			// what both check the same way (a gRPC connection) stays open.
			var nt *target
			if owned {
				nt = m.watch(in, now)
			}
			if t != nil {
				m.drop(t)
				delete(w.targets, in.ID)
			}
			if nt != nil {
				w.targets[in.ID] = nt
			}
		}
	}
	for id, t := range w.targets {
		if svc == nil {
			m.drop(t)
			delete(w.targets, id)
		} else if _, ok := svc.Instance(id); !ok {
			m.drop(t)
			delete(w.targets, id)
		}
	}
	if len(w.targets) == 0 {
		delete(m.services, name)
	} else {
		m.services[name] = w
	}
}

// watch starts watching instance in: first probes at once (within the
// first-probe jitter), expiry of ttl checks that are not already critical,
// and reaping of checks that are.
func (m *Monitor) watch(in *registry.Instance, now time.Time) *target {
	t := newTarget(in, now)
	for _, c := range t.checks {
		if h, ok := m.checkers[c.spec.Type].(Holder); ok {
			h.Hold(c.spec)
		}
		switch {
		case c.spec.Type != registry.CheckTTL:
			m.schedule(&c.next, firstProbe(now, c.spec.Interval.Std(), c.phase))
		case c.status != registry.StatusCritical:
			m.schedule(&c.next, now.Add(c.spec.TTL.Std()))
		}
		m.checkChanged(c)
	}
	return t
}

// drop stops watching t and releases what its checkers hold for it.
func (m *Monitor) drop(t *target) {
	if t.gone {
		return
	}
	t.gone = true
	for _, c := range t.checks {
		m.queue.cancel(&c.next)
		m.queue.cancel(&c.reap)
		if h, ok := m.checkers[c.spec.Type].(Holder); ok {
			h.Release(c.spec)
		}
	}
}

// syncMaintenance follows an instance into and out of maintenance; leaving
// it restarts the reaping clock.
func (m *Monitor) syncMaintenance(t *target, drained bool, now time.Time) {
	if t.drained == drained {
		return
	}
	t.drained = drained
	if !drained {
		t.undrained = now
		for _, c := range t.checks {
			m.checkChanged(c)
		}
	}
}

// checkChanged schedules or cancels the reaping of c after its status
// changed.
func (m *Monitor) checkChanged(c *check) {
	if c.spec.DeregisterAfter <= 0 {
		return
	}
	if c.status == registry.StatusCritical {
		m.schedule(&c.reap, c.reapAt())
	} else {
		m.queue.cancel(&c.reap)
	}
}

// schedule queues e at time at and wakes the scheduler if e is now the
// earliest event.
func (m *Monitor) schedule(e *event, at time.Time) {
	if m.queue.schedule(e, at) {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
}

// fire runs the events due at now and returns when the next one is due.
// Called with m.mu held.
func (m *Monitor) fire(ctx context.Context, now time.Time) (time.Time, bool) {
	for len(m.queue) > 0 {
		e := m.queue[0]
		if e.at.After(now) {
			return e.at, true
		}
		c := e.c
		switch e.kind {
		case probeEvent:
			due := e.at
			m.queue.schedule(e, nextProbe(due, now, c.spec.Interval.Std(), c.phase))
			if c.busy {
				m.log.Debug("probe skipped: the previous one is still waiting or running",
					"service", c.t.key.Service, "instance", c.t.key.ID, "check", c.n+1)
				continue
			}
			c.busy = true
			m.dispatch(ctx, job{c, due})
		case expireEvent:
			m.queue.pop()
			if c.expire(now) {
				m.checkChanged(c)
			}
			m.settle(c.t, now, false)
		case reapEvent:
			m.queue.pop()
			m.startReap(ctx, c)
		}
	}
	return time.Time{}, false
}

// dispatch hands a probe to an idle worker, or to a new one while fewer
// than maxInFlight run; otherwise it waits its turn. Called with m.mu held.
func (m *Monitor) dispatch(ctx context.Context, j job) {
	m.jobs = append(m.jobs, j)
	switch {
	case m.idle > 0:
		m.idle--
		m.work.Signal()
	case m.workers < m.maxInFlight:
		m.workers++
		m.wg.Add(1)
		go m.worker(ctx)
	}
}

// worker runs probes until none is waiting and enough other workers are
// idle, or the monitor stops.
func (m *Monitor) worker(ctx context.Context) {
	defer m.wg.Done()
	m.mu.Lock()
	defer m.mu.Unlock()
	for {
		for len(m.jobs) == 0 {
			if !m.running || m.idle >= spareWorkers {
				m.workers--
				return
			}
			m.idle++
			m.work.Wait() // whoever wakes it takes it off idle
		}
		j := m.jobs[0]
		m.jobs[0] = job{}
		m.jobs = m.jobs[1:]
		if len(m.jobs) == 0 {
			m.jobs = m.jobs[:0:0]
		}
		if j.c.t.gone {
			// Dropped while it waited: not worth a probe.
			j.c.busy = false
			continue
		}
		m.mu.Unlock()
		res, ok := m.probe(ctx, j)
		m.mu.Lock()
		j.c.busy = false
		if ok && m.running && !j.c.t.gone {
			now := time.Now()
			first := !j.c.seen
			if j.c.observe(res, now) {
				m.checkChanged(j.c)
			}
			m.settle(j.c.t, now, first)
		}
	}
}

// probe runs one probe. It reports false when the monitor is stopping and
// the result does not count.
func (m *Monitor) probe(ctx context.Context, j job) (Result, bool) {
	start := time.Now()
	if m.cfg.OnLag != nil {
		m.cfg.OnLag(start.Sub(j.due))
	}
	spec := j.c.spec
	var res Result
	if ch := m.checkers[spec.Type]; ch != nil {
		pctx, cancel := context.WithTimeout(ctx, spec.Timeout.Std())
		res = ch.Check(pctx, spec)
		cancel()
	} else {
		res = Result{registry.StatusCritical, fmt.Sprintf("this server cannot run %s checks", spec.Type)}
	}
	res = res.normalize()
	if m.cfg.OnCheck != nil {
		m.cfg.OnCheck(spec.Type, res.Status, time.Since(start))
	}
	return res, ctx.Err() == nil
}

// settle tells the Observer about every result, tells the registry about t
// when its combined status changed, or when the first result of one of its
// checks changed the output (so that "waiting for the first check" gives
// way to what the check saw), and logs transitions. Called with m.mu held; it may reconcile the targets (and so
// drop t).
func (m *Monitor) settle(t *target, now time.Time, first bool) {
	status, output := t.health()
	if m.cfg.Observer != nil {
		fails := 0
		for _, c := range t.checks {
			fails = max(fails, c.fails)
		}
		m.cfg.Observer.ObserveCheck(t.key, t.rev, registry.CheckRun{Time: now, Status: status, Output: output, Failures: fails})
	}
	changed := status != t.reported.Status
	if !changed && (!first || output == t.reported.Output) {
		return
	}
	h := registry.Health{Status: status, Output: output, Since: t.reported.Since}
	if changed {
		h.Since = now
		m.log.Info("health changed", "service", t.key.Service, "instance", t.key.ID,
			"status", status, "output", output, "previous", t.reported.Status)
	} else {
		m.log.Debug("health output updated", "service", t.key.Service, "instance", t.key.ID,
			"status", status, "output", output)
	}
	t.reported = h
	m.cfg.Reporter.SetHealth(t.key, t.rev, h)
	// Follow the snapshot this published from its Touched list now, while
	// it is the next version, rather than by a full rescan later.
	m.sync(now)
}

// startReap asks the registry to remove c's instance, critical for longer
// than c's deregister_after, unless it is in maintenance or no longer
// critical. Called with m.mu held.
func (m *Monitor) startReap(ctx context.Context, c *check) {
	t := c.t
	if t.gone || t.reaping || t.drained || c.status != registry.StatusCritical {
		return
	}
	t.reaping = true
	m.wg.Add(1)
	go m.reap(ctx, c, time.Since(c.since))
}

// reap removes c's instance durably and logs it.
func (m *Monitor) reap(ctx context.Context, c *check, criticalFor time.Duration) {
	defer m.wg.Done()
	t := c.t
	removed, err := m.cfg.Reporter.Reap(ctx, t.key, t.rev)
	attrs := []any{"service", t.key.Service, "instance", t.key.ID,
		"critical_for", criticalFor.Round(time.Millisecond), "deregister_after", c.spec.DeregisterAfter}
	switch {
	case err != nil && ctx.Err() == nil:
		m.log.Error("deregistering critical instance failed", append(attrs, "err", err)...)
	case removed:
		m.log.Info("deregistered critical instance", attrs...)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t.reaping = false
	if !removed && !t.gone && ctx.Err() == nil && c.status == registry.StatusCritical && c.reap.idx < 0 {
		m.schedule(&c.reap, time.Now().Add(reapRetry))
	}
}
