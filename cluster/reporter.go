package cluster

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"disco/registry"
)

// local is this server's registry, as the reporter uses it.
type local interface {
	Snapshot() *registry.Snapshot
	SetHealth(k registry.Key, rev uint64, h registry.Health) bool
	Reap(ctx context.Context, k registry.Key, rev uint64) (bool, error)
}

// healthStore records health results for every server to see.
// *etcdstore.Store implements it.
type healthStore interface {
	PutHealth(ctx context.Context, k registry.Key, rev uint64, h registry.Health, heartbeat int64) error
}

// reporter records the health results of a server in a cluster: each
// result goes to the local registry at once (so this server answers with
// it without waiting) and to the shared healthStore in the background, so that the other servers answer the same. Only the latest
// result of each instance is written; while the store is unreachable the
// results wait and are written once it is back, and nothing is lost or
// reordered per instance. Reaps go to the local registry, which commits
// them to the shared store like any write.
type reporter struct {
	local  local
	remote healthStore
	log    *slog.Logger
	wake   chan struct{}

	mu      sync.Mutex
	pending map[registry.Key]result
}

// result is a health result waiting to be written.
type result struct {
	rev uint64
	h   registry.Health
	// heartbeat is the etcd revision of the latest heartbeat from another
	// server the result answers; 0 for none.
	heartbeat int64
}

// newReporter returns a reporter. It starts nothing; call Run.
func newReporter(local local, remote healthStore, log *slog.Logger) *reporter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &reporter{local: local, remote: remote, log: log.With("component", "cluster"),
		wake: make(chan struct{}, 1), pending: make(map[registry.Key]result)}
}

// SetHealth records h locally and queues it for the shared store. It never
// blocks on the store.
func (r *reporter) SetHealth(k registry.Key, rev uint64, h registry.Health) bool {
	changed := r.local.SetHealth(k, rev, h)
	r.mu.Lock()
	r.pending[k] = result{rev, h, r.pending[k].heartbeat}
	r.mu.Unlock()
	r.poke()
	return changed
}

// Answer queues this server's view of instance k to be written as the
// answer to the heartbeat recorded at etcd revision heartbeat, which this
// server has applied: the server that recorded it waits for the answer.
func (r *reporter) Answer(k registry.Key, heartbeat int64) {
	in, ok := r.local.Snapshot().Instance(k.Service, k.ID)
	if !ok {
		return
	}
	r.mu.Lock()
	p, queued := r.pending[k]
	if !queued {
		p = result{rev: in.Revision, h: in.Health}
	}
	p.heartbeat = max(p.heartbeat, heartbeat)
	r.pending[k] = p
	r.mu.Unlock()
	r.poke()
}

// poke wakes Run.
func (r *reporter) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Reassert answers a health result another server recorded for instance
// k, which this server checks: such a result is out of date (it comes from
// the instance's previous owner, or from a server that has not yet learnt
// who owns it now), so it is not applied here, and this server's own view
// is queued to be written again, so that every server ends up answering
// with the owner's view. Nothing is written when the two agree.
func (r *reporter) Reassert(k registry.Key, rev uint64, h registry.Health) {
	in, ok := r.local.Snapshot().Instance(k.Service, k.ID)
	if !ok || in.Revision != rev || len(in.Checks) == 0 ||
		(in.Health.Status == h.Status && in.Health.Output == h.Output) {
		return
	}
	r.mu.Lock()
	if _, queued := r.pending[k]; !queued {
		r.pending[k] = result{rev: in.Revision, h: in.Health}
	}
	r.mu.Unlock()
	r.poke()
}

// Reap removes instance k through the local registry.
func (r *reporter) Reap(ctx context.Context, k registry.Key, rev uint64) (bool, error) {
	return r.local.Reap(ctx, k, rev)
}

// Pending returns how many results wait to be written.
func (r *reporter) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// Run writes the queued results to the shared store until ctx is done,
// retrying while it fails; then it makes one last attempt, of at most a
// second, and returns nil.
func (r *reporter) Run(ctx context.Context) error {
	wait := newBackoff()
	failing := false
	for {
		var retry <-chan time.Time
		var timer *time.Timer
		if failing {
			timer = time.NewTimer(wait.d)
			retry = timer.C
			wait.d = min(2*wait.d, 2*time.Second)
		}
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = r.flush(fctx)
			cancel()
			return nil
		case <-r.wake:
		case <-retry:
		}
		if timer != nil {
			timer.Stop()
		}
		err := r.flush(ctx)
		switch {
		case err != nil && !failing:
			r.log.Warn("cannot record health results in etcd; they wait, and this server answers with them meanwhile", "err", err)
		case err == nil && failing:
			r.log.Info("health results recorded in etcd again")
			wait.reset()
		}
		failing = err != nil
	}
}

// flush writes the pending results, stopping at the first failure; the
// results not written stay pending unless a newer one came meanwhile.
func (r *reporter) flush(ctx context.Context) error {
	r.mu.Lock()
	batch := r.pending
	r.pending = make(map[registry.Key]result)
	r.mu.Unlock()
	var err error
	for k, res := range batch {
		if err == nil && ctx.Err() == nil {
			if err = r.remote.PutHealth(ctx, k, res.rev, res.h, res.heartbeat); err == nil {
				continue
			}
		}
		r.mu.Lock()
		if newer, ok := r.pending[k]; ok {
			newer.heartbeat = max(newer.heartbeat, res.heartbeat)
			r.pending[k] = newer
		} else {
			r.pending[k] = res
		}
		r.mu.Unlock()
	}
	if err == nil {
		err = ctx.Err()
	}
	return err
}
