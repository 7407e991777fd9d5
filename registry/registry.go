// Package registry holds disco's data model: services, their instances and
// their health, with validation. Readers take immutable snapshots published
// atomically, so lookups never wait on writers; writers serialise on a mutex,
// write through to a Store with group commit, and publish the next snapshot
// once the change is durable.
package registry

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Store makes the registry's changes durable. The registry calls Commit from
// one goroutine at a time, with changes in the order they were accepted;
// Commit returns only once they are on stable storage, and either all of a
// call's changes are stored or none.
type Store interface {
	// Load returns the stored state.
	Load(ctx context.Context) (*State, error)
	// Commit stores changes atomically and durably.
	Commit(ctx context.Context, changes []Change) error
}

// State is the durable content of the registry, as a Store returns it.
type State struct {
	// Services holds the settings of services whose settings were written.
	Services map[string]Settings
	// Instances holds every registered instance. A store that keeps health
	// may set an instance's Health (Status not empty) to start it from that
	// health; otherwise it is derived as after a restart.
	Instances []*Instance
}

// Config configures a Registry.
type Config struct {
	// Store makes writes durable; nil keeps the registry in memory only.
	Store Store
	// Logger receives the registry's logs; nil discards them.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// OnCommit, if set, is called after each store commit with the number
	// of changes, how long it took and its error.
	OnCommit func(changes int, took time.Duration, err error)
	// MaxBatch caps how many queued writes one store commit takes; 0 means
	// no cap (every write waiting joins the commit), 1 commits each write
	// on its own.
	MaxBatch int
	// CommitDelay is the longest a commit waits for more writes to join it
	// when writes are arriving concurrently; 0 never waits. The wait is
	// also capped by how long recent commits took, so a fast store hardly
	// waits, and it ends as soon as as many writes are queued as the
	// previous commit carried. A lone writer (the previous commit carried
	// one write and nothing queued behind it) never waits, and neither do
	// commits once they carry several writes each without waiting.
	CommitDelay time.Duration
	// NextRevision, if set, returns the revision for an instance whose
	// targets changed, given the highest revision seen so far; it must
	// return a larger one. Nil means last+1. Servers sharing a store use it
	// to allocate revisions that do not collide between them.
	NextRevision func(last uint64) uint64
}

// Registry is the live registry. Its methods are safe for concurrent use.
type Registry struct {
	store    Store
	log      *slog.Logger
	now      func() time.Time
	onCommit func(int, time.Duration, error)
	maxBatch int
	nextRev  func(uint64) uint64
	delay    time.Duration

	current atomic.Pointer[Snapshot]
	// activity holds each instance's last check run and transitions,
	// beside the snapshots.
	activity activityLog
	// watch wakes the readers waiting for one service to change.
	watch serviceWatch

	mu   sync.Mutex
	cond *sync.Cond
	// head is current plus the accepted writes not yet durable; writes are
	// planned against it.
	head       *Snapshot
	queue      []*pending
	committing bool
	revision   uint64

	// Group commit pacing: whether writes overlapped the last commit, how
	// many it carried, when it ended, a moving average of commit time, and
	// the queue length that ends a commit's wait early (signalled on full).
	concurrent bool
	lastBatch  int
	lastEnd    time.Time
	avgCommit  time.Duration
	wantBatch  int
	full       chan struct{}
}

// pending is one accepted write waiting for its commit.
type pending struct {
	changes  []Change
	finished bool
	err      error
	snap     *Snapshot
}

// New returns an empty registry. Call Load to read the store's state.
func New(cfg Config) *Registry {
	r := &Registry{store: cfg.Store, log: cfg.Logger, now: cfg.Now, onCommit: cfg.OnCommit, maxBatch: cfg.MaxBatch,
		nextRev: cfg.NextRevision, delay: cfg.CommitDelay, full: make(chan struct{}, 1)}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("component", "registry")
	if r.now == nil {
		r.now = time.Now
	}
	r.cond = sync.NewCond(&r.mu)
	empty := emptySnapshot(r.now())
	r.current.Store(empty)
	r.head = empty
	return r
}

// Load replaces the registry's content with the store's state. Instances
// with checks start critical, the others passing, unless the state carries
// their health; maintenance is kept.
func (r *Registry) Load(ctx context.Context) error {
	if r.store == nil {
		return nil
	}
	st, err := r.store.Load(ctx)
	if err != nil {
		return fmt.Errorf("load registry: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b := newBuilder(emptySnapshot(r.now()), r.now())
	for name, s := range st.Services {
		b.apply(Change{Op: OpPutService, Service: name, Settings: s})
	}
	for _, in := range st.Instances {
		b.apply(Change{Op: OpPutInstance, Service: in.Service, Instance: in})
		if in.Health.Status != "" {
			b.setHealth(in.Key(), in.Revision, in.Health)
		}
		r.revision = max(r.revision, in.Revision)
	}
	next := b.build()
	r.head = next
	r.publish(next)
	services, instances := next.Len()
	r.log.Info("registry loaded", "services", services, "instances", instances)
	return nil
}

// Snapshot returns the current snapshot. It never blocks.
func (r *Registry) Snapshot() *Snapshot { return r.current.Load() }

// Register registers in (from NewInstance), replacing any instance with the
// same service and id. A replaced instance keeps its registration time and
// maintenance, and its health if the address, port and checks are unchanged.
// It returns the instance as stored.
func (r *Registry) Register(ctx context.Context, in *Instance) (*Instance, error) {
	in = in.clone()
	in.Health = Health{}
	snap, err := r.write(ctx, func(head *Snapshot) ([]Change, error) {
		r.carryOver(head, in)
		return []Change{{Op: OpPutInstance, Service: in.Service, Instance: in}}, nil
	})
	if err != nil {
		return nil, withOp(fmt.Sprintf("register %s/%s", in.Service, in.ID), err)
	}
	return stored(snap, in), nil
}

// Deregister removes an instance.
func (r *Registry) Deregister(ctx context.Context, service, id string) error {
	_, err := r.write(ctx, func(head *Snapshot) ([]Change, error) {
		if _, ok := head.Instance(service, id); !ok {
			return nil, NotFound("instance %q of service %q is not registered", id, service)
		}
		return []Change{{Op: OpDeleteInstance, Service: service, ID: id}}, nil
	})
	if err != nil {
		return withOp(fmt.Sprintf("deregister %s/%s", service, id), err)
	}
	return nil
}

// Reap removes instance k if it is still at revision rev, critical and not
// in maintenance; the health checks use it to enforce deregister_after. It
// reports whether this call removed the instance.
func (r *Registry) Reap(ctx context.Context, k Key, rev uint64) (bool, error) {
	removed := false
	_, err := r.write(ctx, func(head *Snapshot) ([]Change, error) {
		in, ok := head.Instance(k.Service, k.ID)
		if !ok || in.Revision != rev || in.Health.Status != StatusCritical || in.Maintenance != nil {
			return nil, nil
		}
		removed = true
		return []Change{{Op: OpDeleteInstance, Service: k.Service, ID: k.ID}}, nil
	})
	if err != nil {
		return false, withOp(fmt.Sprintf("reap %s", k), err)
	}
	return removed, nil
}

// SetSettings writes a service's settings, creating the service if needed.
func (r *Registry) SetSettings(ctx context.Context, service string, s Settings) (*Service, error) {
	service = Fold(service)
	if err := ValidateName("service name", service); err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	snap, err := r.write(ctx, func(*Snapshot) ([]Change, error) {
		return []Change{{Op: OpPutService, Service: service, Settings: s}}, nil
	})
	if err != nil {
		return nil, withOp(fmt.Sprintf("set settings of %s", service), err)
	}
	svc, _ := snap.Service(service)
	return svc, nil
}

// SetMaintenance drains (enabled) or undrains an instance. It returns the
// instance as stored.
func (r *Registry) SetMaintenance(ctx context.Context, service, id string, enabled bool, reason string) (*Instance, error) {
	var in *Instance
	snap, err := r.write(ctx, func(head *Snapshot) ([]Change, error) {
		old, ok := head.Instance(service, id)
		if !ok {
			return nil, NotFound("instance %q of service %q is not registered", id, service)
		}
		in = old.clone()
		switch {
		case !enabled:
			in.Maintenance = nil
		case old.Maintenance != nil:
			in.Maintenance.Reason = reason
		default:
			in.Maintenance = &Maintenance{Reason: reason, Since: r.now().UTC()}
		}
		return []Change{{Op: OpPutInstance, Service: service, Instance: in}}, nil
	})
	if err != nil {
		return nil, withOp(fmt.Sprintf("set maintenance of %s/%s", service, id), err)
	}
	return stored(snap, in), nil
}

// SetHealth records what the checks of instance k at revision rev
// concluded. Health is not durable, so it is published at once. It reports
// whether the instance's health changed; results for an unknown instance or
// an older revision are ignored.
func (r *Registry) SetHealth(k Key, rev uint64, h Health) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.current.Load()
	now := r.now()
	b := newBuilder(cur, now)
	if !b.setHealth(k, rev, h) {
		return false
	}
	next := b.build()
	if r.head != cur {
		hb := newBuilder(r.head, now)
		if hb.setHealth(k, rev, h) {
			r.head = hb.build()
		}
	} else {
		r.head = next
	}
	r.publish(next)
	return true
}

// write plans changes against head under the lock, applies them to head,
// and waits for them to be durable and published. Concurrent writes are
// committed together: whichever waiting writer finds no commit running takes
// every queued change into one Store.Commit.
func (r *Registry) write(ctx context.Context, plan func(head *Snapshot) ([]Change, error)) (*Snapshot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changes, err := plan(r.head)
	if err != nil {
		return nil, err
	}
	if len(changes) == 0 {
		return r.current.Load(), nil
	}
	b := newBuilder(r.head, r.now())
	for _, c := range changes {
		b.apply(c)
	}
	r.head = b.build()
	if r.store == nil {
		r.publish(r.head)
		return r.head, nil
	}
	p := &pending{changes: changes}
	r.queue = append(r.queue, p)
	if r.wantBatch > 0 && len(r.queue) >= r.wantBatch {
		r.wantBatch = 0
		select {
		case r.full <- struct{}{}:
		default:
		}
	}
	for !p.finished {
		if r.committing {
			r.cond.Wait()
			continue
		}
		r.commitQueue(ctx)
	}
	return p.snap, p.err
}

// commitQueue commits the queued writes (at most maxBatch of them, oldest
// first) in one Store.Commit and publishes the result. It is called with
// r.mu held and releases it while committing.
func (r *Registry) commitQueue(ctx context.Context) {
	r.gather()
	batch := r.queue
	r.queue = nil
	if r.maxBatch > 0 && len(batch) > r.maxBatch {
		batch, r.queue = batch[:r.maxBatch:r.maxBatch], batch[r.maxBatch:]
	}
	var changes []Change
	for _, p := range batch {
		changes = append(changes, p.changes...)
	}
	r.committing = true
	r.mu.Unlock()
	start := time.Now()
	err := r.store.Commit(context.WithoutCancel(ctx), changes)
	took := time.Since(start)
	r.mu.Lock()
	r.committing = false
	defer r.cond.Broadcast()
	r.concurrent = len(batch) > 1 || len(r.queue) > 0
	r.lastBatch = len(batch)
	r.lastEnd = time.Now()
	if r.avgCommit == 0 {
		r.avgCommit = took
	} else {
		r.avgCommit += (took - r.avgCommit) / 8
	}
	if r.onCommit != nil {
		r.onCommit(len(changes), took, err)
	}

	if err != nil {
		// Writes accepted after this batch were planned on top of it: fail
		// them too, and go back to the durable state.
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		r.log.Error("store commit failed", "changes", len(changes), "err", err)
		for _, p := range append(batch, r.queue...) {
			p.finished, p.err = true, err
		}
		r.queue = nil
		r.head = r.current.Load()
		return
	}
	var next *Snapshot
	if len(r.queue) == 0 {
		next = r.head
	} else {
		b := newBuilder(r.current.Load(), r.now())
		for _, c := range changes {
			b.apply(c)
		}
		next = b.build()
	}
	next.touched = touchedBy(changes)
	r.publish(next)
	for _, p := range batch {
		p.finished, p.snap = true, next
	}
}

// gatherBelow is the commit size from which a commit no longer waits for
// more writes: the sync is already shared so widely that another write
// would save little of it, while every write in the commit would wait.
const gatherBelow = 8

// gather lets a commit wait briefly for more writes to join it, so that
// concurrent writers share one durable sync instead of queueing for one
// each: only when writes overlapped the previous commit and it carried
// fewer than gatherBelow, for at most CommitDelay and the average commit
// time, and only until the queue holds as many writes as the previous
// commit carried. A write after a quiet spell commits at once, whatever
// came before. It is called with r.mu held, and releases it while waiting;
// writers arriving meanwhile queue as they would behind a running commit.
func (r *Registry) gather() {
	if r.delay <= 0 || !r.concurrent || r.lastBatch >= gatherBelow ||
		time.Since(r.lastEnd) > r.delay+r.avgCommit {
		return
	}
	want := max(r.lastBatch, 2)
	if r.maxBatch > 0 {
		want = min(want, r.maxBatch)
	}
	if len(r.queue) >= want {
		return
	}
	select { // a stale signal from an earlier wait
	case <-r.full:
	default:
	}
	r.committing, r.wantBatch = true, want
	r.mu.Unlock()
	t := time.NewTimer(min(r.delay, r.avgCommit))
	select {
	case <-t.C:
	case <-r.full:
		t.Stop()
	}
	r.mu.Lock()
	r.committing, r.wantBatch = false, 0
}

// publish makes next the current snapshot and wakes the readers waiting on
// the previous one. It dates the services that changed with next's
// version, records the instances' transitions and forgets the activity of
// removed ones. Called with r.mu held.
func (r *Registry) publish(next *Snapshot) {
	prev := r.current.Load()
	if prev == next {
		return
	}
	next.version = prev.version + 1
	next.changed = make(chan struct{})
	next.servicesIndex = prev.servicesIndex
	changed := next.ChangedSince(prev)
	for _, name := range changed {
		_, existed := prev.Service(name)
		svc, exists := next.Service(name)
		if exists && svc.index == 0 {
			// Not yet published: a service is dated once, when it
			// first appears in a snapshot.
			svc.index = next.version
		}
		if existed != exists {
			next.servicesIndex = next.version
		}
	}
	r.current.Store(next)
	now := r.now()
	for _, name := range changed {
		old, _ := prev.Service(name)
		svc, _ := next.Service(name)
		r.activity.follow(old, svc, now)
	}
	close(prev.changed)
	r.watch.notify(changed)
}

func touchedBy(changes []Change) []string {
	names := make([]string, 0, len(changes))
	for _, c := range changes {
		names = append(names, c.Service)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// stored returns the instance as snap holds it, or in when a later write
// already replaced or removed it.
func stored(snap *Snapshot, in *Instance) *Instance {
	if got, ok := snap.Instance(in.Service, in.ID); ok && got.Revision == in.Revision {
		return got
	}
	return in
}
