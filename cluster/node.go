// Package cluster lets several disco servers sharing one registry in etcd
// split the health checks between them. A Node is one server's part in the
// cluster. It keeps the server a member, on an etcd lease that lapses when
// the server dies, and follows the other members; each instance is checked
// by one member, chosen by rendezvous hashing of its key over the live
// members (Owner). The Node runs the etcd watch that keeps the registry up
// to date, records this server's health results in etcd so that every
// server answers the same, and routes ttl heartbeats to the owner from any
// server, answering with the owner's result.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"

	"disco/registry"
	"disco/store/etcdstore"
)

// Registry is this server's registry as a Node uses it.
// *registry.Registry implements it.
type Registry interface {
	etcdstore.Target
	// Reap removes instance k if it is still at revision rev and critical.
	Reap(ctx context.Context, k registry.Key, rev uint64) (bool, error)
}

// Monitor is this server's health monitor as a Node drives it.
// *health.Monitor implements it.
type Monitor interface {
	// Heartbeat renews instance k's ttl checks.
	Heartbeat(k registry.Key) error
	// Rebalance makes the monitor ask again which instances it owns.
	Rebalance()
}

// Config configures a Node.
type Config struct {
	// Registry is this server's registry, loaded from Store (required).
	Registry Registry
	// Store is the registry's etcd store (required).
	Store *etcdstore.Store
	// Client reaches etcd, for the membership (required).
	Client *clientv3.Client
	// Self is this server (its ID is required, and must be the Member the
	// Store writes as).
	Self Member
	// TTL is the lease of this server's membership: a server that stops
	// renewing it (it died, or lost etcd) is dropped after TTL, and its
	// instances move to the others. DefaultTTL when zero; at least 1s.
	TTL time.Duration
	// Timeout bounds each request to etcd, and how long a heartbeat
	// forwarded to the owner waits for its answer; DefaultTimeout when
	// zero.
	Timeout time.Duration
	// Logger receives membership changes and delivery problems; nil
	// discards them.
	Logger *slog.Logger
}

// Node is this server's part in the cluster: its membership, the health
// reporter that shares its results, and the routing of heartbeats. Build it
// before the health monitor, which asks it what this server owns (Owns)
// and reports through it (SetHealth, Reap); Run then drives that monitor.
// Its methods are safe for concurrent use.
type Node struct {
	reg      Registry
	store    *etcdstore.Store
	timeout  time.Duration
	log      *slog.Logger
	members  *membership
	reporter *reporter
	answers  answers

	mu sync.Mutex
	// mon is the monitor while Run runs; nil otherwise.
	mon Monitor
}

var _ etcdstore.Cluster = (*Node)(nil)

// New returns a Node for cfg, or an error naming what cfg lacks. It starts
// nothing; call Run.
func New(cfg Config) (*Node, error) {
	var errs []error
	if cfg.Registry == nil {
		errs = append(errs, errors.New("registry is required"))
	}
	if cfg.Store == nil {
		errs = append(errs, errors.New("etcd store is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("cluster node config: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{reg: cfg.Registry, store: cfg.Store, timeout: cfg.Timeout, log: log.With("component", "cluster"),
		answers: answers{waiting: make(map[registry.Key]*answer)}}
	n.members = newMembership(membershipConfig{
		Client: cfg.Client, Dir: cfg.Store.Prefix() + etcdstore.DirMembers, Self: cfg.Self,
		TTL: cfg.TTL, Timeout: cfg.Timeout, Logger: cfg.Logger, OnChange: n.membersChanged,
	})
	if err := n.members.cfg.validate(); err != nil {
		return nil, err
	}
	n.reporter = newReporter(cfg.Registry, cfg.Store, cfg.Logger)
	return n, nil
}

// Run takes part in the cluster until ctx is done: it keeps the membership,
// watches etcd into the registry, writes this server's health results, and
// drives mon — rebalancing it when the members change, and giving it the
// heartbeats other servers forward for the instances it owns. It returns
// nil once ctx is done, after withdrawing the membership, or the first
// error of its parts.
func (n *Node) Run(ctx context.Context, mon Monitor) error {
	n.mu.Lock()
	if n.mon != nil {
		n.mu.Unlock()
		return errors.New("cluster node is already running")
	}
	n.mon = mon
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.mon = nil
		n.mu.Unlock()
	}()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return n.store.Watch(ctx, n.reg, n) })
	g.Go(func() error { return n.members.Run(ctx) })
	g.Go(func() error { return n.reporter.Run(ctx) })
	return g.Wait()
}

// monitor returns the monitor Run drives, or nil.
func (n *Node) monitor() Monitor {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mon
}

// membersChanged rebalances the monitor.
func (n *Node) membersChanged([]string) {
	if mon := n.monitor(); mon != nil {
		mon.Rebalance()
	}
}

// Self returns this server's member id.
func (n *Node) Self() string { return n.members.Self() }

// Members returns the ids of the live members, sorted, this server
// included; nil until the members were first listed.
func (n *Node) Members() []string { return n.members.Members() }

// Owns reports whether this server checks instance k. It owns nothing
// until the members were first listed. While etcd is unreachable the
// members last seen stay in force, so checks do not move because of the
// outage.
func (n *Node) Owns(k registry.Key) bool { return n.members.Owns(k) }

// PendingHealth returns how many health results wait to be written to
// etcd.
func (n *Node) PendingHealth() int { return n.reporter.Pending() }

// SetHealth records a result of this server's checks: in the local
// registry at once, and in etcd in the background, so that every server
// answers with it. It never blocks on etcd. With Reap, it makes the Node
// the health monitor's Reporter.
func (n *Node) SetHealth(k registry.Key, rev uint64, h registry.Health) bool {
	return n.reporter.SetHealth(k, rev, h)
}

// Reap removes instance k through the local registry, which commits it to
// etcd like any write.
func (n *Node) Reap(ctx context.Context, k registry.Key, rev uint64) (bool, error) {
	return n.reporter.Reap(ctx, k, rev)
}

// Heartbeat renews instance k's ttl checks wherever they run: in this
// server's monitor when it owns the instance, otherwise through etcd to the
// owner, whose answer it waits for (up to the Timeout) so that the
// registry holds the owner's result when Heartbeat returns. If no answer
// comes in time (the owner just left and the members have not yet
// noticed), the heartbeat stands recorded and Heartbeat returns nil. The
// error wraps registry.ErrNotFound for an unknown instance,
// registry.ErrInvalid for one without a ttl check, and
// registry.ErrUnavailable when health checks are not running or etcd did
// not take the heartbeat.
func (n *Node) Heartbeat(k registry.Key) error {
	k = registry.Key{Service: registry.Fold(k.Service), ID: registry.Fold(k.ID)}
	in, ok := n.reg.Snapshot().Instance(k.Service, k.ID)
	if !ok {
		return registry.NotFound("instance %q of service %q is not registered", k.ID, k.Service).In("heartbeat " + k.String())
	}
	if !slices.ContainsFunc(in.Checks, func(c registry.Check) bool { return c.Type == registry.CheckTTL }) {
		return registry.Invalid("the instance has no ttl check").In("heartbeat " + k.String())
	}
	mon := n.monitor()
	if mon == nil {
		return fmt.Errorf("heartbeat %s: %w: health checks are not running", k, registry.ErrUnavailable)
	}
	if n.members.Owns(k) {
		return mon.Heartbeat(k)
	}
	// Wait for answers before the heartbeat is recorded, so that none is
	// missed.
	a := n.answers.add(k)
	defer n.answers.remove(k)
	rev, err := n.store.PutHeartbeat(context.Background(), k)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.timeout)
	defer cancel()
	if !n.answers.wait(ctx, a, rev) {
		n.log.Warn("the owner did not answer a heartbeat in time; answering with this server's view",
			"service", k.Service, "instance", k.ID, "owner", Owner(n.members.Members(), k), "waited", n.timeout)
	}
	return nil
}

// RemoteHeartbeat applies a heartbeat recorded in etcd (by any server,
// at etcd revision rev) if this server checks the instance, and queues its
// answer for the server that recorded it. It implements etcdstore.Cluster.
func (n *Node) RemoteHeartbeat(k registry.Key, rev int64) {
	mon := n.monitor()
	if mon == nil || !n.members.Owns(k) {
		return
	}
	if err := mon.Heartbeat(k); err != nil {
		n.log.Debug("heartbeat from the cluster not applied", "service", k.Service, "instance", k.ID, "err", err)
		return
	}
	n.reporter.Answer(k, rev)
	// This server may have recorded the heartbeat itself before it came to
	// own the instance; its own answers do not come back through etcd.
	n.answers.answered(k, rev)
}

// RemoteHealth takes a health result another server recorded: for an
// instance this server checks, the result is out of date (it comes from the
// instance's previous owner, or from a server that has not yet learnt who
// owns it now), so this server's own view is written again; for the others
// it goes to the registry. A result that answers a heartbeat releases the
// Heartbeat waiting for it. It implements etcdstore.Cluster.
func (n *Node) RemoteHealth(k registry.Key, rev uint64, h registry.Health, heartbeat int64) {
	if n.members.Owns(k) {
		n.reporter.Reassert(k, rev, h)
	} else {
		n.reg.SetHealth(k, rev, h)
	}
	if heartbeat > 0 {
		n.answers.answered(k, heartbeat)
	}
}

// answers lets forwarded heartbeats wait for the owner's answer.
type answers struct {
	mu      sync.Mutex
	waiting map[registry.Key]*answer
}

// answer is what the heartbeats of one instance wait on.
type answer struct {
	// users counts the heartbeats waiting.
	users int
	// rev is the latest heartbeat revision answered.
	rev int64
	// changed is closed when rev grows.
	changed chan struct{}
}

// add starts waiting for answers about instance k.
func (a *answers) add(k registry.Key) *answer {
	a.mu.Lock()
	defer a.mu.Unlock()
	w := a.waiting[k]
	if w == nil {
		w = &answer{changed: make(chan struct{})}
		a.waiting[k] = w
	}
	w.users++
	return w
}

// remove ends a wait that add started.
func (a *answers) remove(k registry.Key) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if w := a.waiting[k]; w != nil {
		if w.users--; w.users == 0 {
			delete(a.waiting, k)
		}
	}
}

// answered records that the heartbeats of instance k up to revision rev
// have their answer.
func (a *answers) answered(k registry.Key, rev int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if w := a.waiting[k]; w != nil && rev > w.rev {
		w.rev = rev
		close(w.changed)
		w.changed = make(chan struct{})
	}
}

// wait waits until w has the answer to the heartbeat at revision rev, and
// reports whether it came before ctx was done.
func (a *answers) wait(ctx context.Context, w *answer, rev int64) bool {
	for {
		a.mu.Lock()
		done, changed := w.rev >= rev, w.changed
		a.mu.Unlock()
		if done {
			return true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}
