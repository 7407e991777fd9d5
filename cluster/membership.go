package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"disco/registry"
)

// Defaults of Config.
const (
	DefaultTTL     = 5 * time.Second
	DefaultTimeout = 2 * time.Second
)

// Member describes a live server, as it announces itself.
type Member struct {
	// ID names the member; unique per running server.
	ID string `json:"id"`
	// Admin and DNS are the server's admin API and DNS addresses.
	Admin string `json:"admin,omitempty"`
	DNS   string `json:"dns,omitempty"`
	// Started is when the server started.
	Started time.Time `json:"started"`
}

// membershipConfig configures a membership.
type membershipConfig struct {
	// Client reaches etcd (required).
	Client *clientv3.Client
	// Dir is the key prefix of the members, e.g. "/disco/members/"
	// (required; ends with '/').
	Dir string
	// Self is this server (its ID is required).
	Self Member
	// TTL is the lease of this server's membership: a server that stops
	// renewing it (it died, or lost etcd) is dropped after TTL, and its
	// instances move to the others. DefaultTTL when zero; at least 1s.
	TTL time.Duration
	// Timeout bounds each request to etcd; DefaultTimeout when zero.
	Timeout time.Duration
	// Logger receives membership changes; nil discards them.
	Logger *slog.Logger
	// OnChange, if set, is called after the set of members changed (from
	// Run's goroutines, never concurrently with itself).
	OnChange func(members []string)
}

func (c membershipConfig) validate() error {
	var errs []error
	if c.Client == nil {
		errs = append(errs, errors.New("etcd client is required"))
	}
	if !strings.HasSuffix(c.Dir, "/") {
		errs = append(errs, fmt.Errorf("members directory %q must end with '/'", c.Dir))
	}
	if c.Self.ID == "" || strings.Contains(c.Self.ID, "/") {
		errs = append(errs, fmt.Errorf("member id %q must be set and hold no '/'", c.Self.ID))
	}
	if c.TTL != 0 && c.TTL < time.Second {
		errs = append(errs, fmt.Errorf("membership ttl %s is shorter than 1s", c.TTL))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster membership config: %w", err)
	}
	return nil
}

// membership keeps this server a member of the cluster and follows the
// others. Its methods are safe for concurrent use.
type membership struct {
	cfg membershipConfig
	log *slog.Logger

	mu sync.RWMutex
	// known holds the members seen in etcd, by id.
	known map[string]Member
	// members is the sorted ids of known plus this server, once the
	// members were first listed; nil before.
	members []string
}

// newMembership returns a membership for cfg. It starts nothing; call Run.
func newMembership(cfg membershipConfig) *membership {
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	m := &membership{cfg: cfg, log: cfg.Logger}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.log = m.log.With("component", "cluster")
	return m
}

// Self returns this server's member id.
func (m *membership) Self() string { return m.cfg.Self.ID }

// Members returns the ids of the live members, sorted, this server
// included; nil until the members were first listed.
func (m *membership) Members() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.members
}

// Owns reports whether this server checks instance k. It owns nothing
// until the members were first listed. While etcd is unreachable the
// members last seen stay in force, so checks do not move because of the
// outage.
func (m *membership) Owns(k registry.Key) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.members != nil && Owner(m.members, k) == m.cfg.Self.ID
}

// Run keeps this server's membership and follows the others until ctx is
// done; then it withdraws the membership (so that the others take over at
// once rather than after the TTL) and returns nil. It returns an error only
// if the configuration is invalid.
func (m *membership) Run(ctx context.Context) error {
	if err := m.cfg.validate(); err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Go(func() { m.keep(ctx) })
	wg.Go(func() { m.follow(ctx) })
	wg.Wait()
	return nil
}

// keep holds this server's member key on a lease, granting a new lease
// whenever the last one is lost.
func (m *membership) keep(ctx context.Context) {
	key := m.cfg.Dir + m.cfg.Self.ID
	val, _ := json.Marshal(m.cfg.Self)
	wait := newBackoff()
	failing := false
	for ctx.Err() == nil {
		id, err := m.join(ctx, key, string(val))
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				m.log.Warn("cannot join the cluster; retrying", "err", err)
				failing = true
			}
			wait.sleep(ctx)
			continue
		}
		if failing {
			m.log.Info("joined the cluster again", "member", m.cfg.Self.ID)
		} else {
			m.log.Info("joined the cluster", "member", m.cfg.Self.ID, "ttl", m.cfg.TTL)
		}
		failing = false
		wait.reset()
		ch, err := m.cfg.Client.KeepAlive(ctx, id)
		if err == nil {
			for range ch {
			}
		}
		if ctx.Err() != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_, err := m.cfg.Client.Revoke(rctx, id)
			cancel()
			if err != nil {
				m.log.Warn("could not withdraw the membership; it lapses after its ttl", "err", err)
			} else {
				m.log.Info("left the cluster", "member", m.cfg.Self.ID)
			}
			return
		}
		m.log.Warn("membership lease lost; joining again", "member", m.cfg.Self.ID)
		failing = true
	}
}

// join grants a lease and puts this server's key on it.
func (m *membership) join(ctx context.Context, key, val string) (clientv3.LeaseID, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	lease, err := m.cfg.Client.Grant(ctx, int64((m.cfg.TTL+time.Second-1)/time.Second))
	if err != nil {
		return 0, fmt.Errorf("grant lease: %w", err)
	}
	if _, err := m.cfg.Client.Put(ctx, key, val, clientv3.WithLease(lease.ID)); err != nil {
		return 0, fmt.Errorf("put member key %s: %w", key, err)
	}
	return lease.ID, nil
}

// follow lists the members and watches them, listing again whenever the
// watch breaks.
func (m *membership) follow(ctx context.Context) {
	wait := newBackoff()
	for ctx.Err() == nil {
		rev, err := m.list(ctx)
		if err == nil {
			err = m.watch(ctx, rev)
			wait.reset()
		}
		if ctx.Err() != nil {
			return
		}
		m.log.Debug("members watch interrupted; listing again", "err", err)
		wait.sleep(ctx)
	}
}

func (m *membership) list(ctx context.Context) (int64, error) {
	lctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	resp, err := m.cfg.Client.Get(lctx, m.cfg.Dir, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("list members: %w", err)
	}
	known := make(map[string]Member)
	for _, kv := range resp.Kvs {
		if mem, ok := m.decode(kv.Key, kv.Value); ok {
			known[mem.ID] = mem
		}
	}
	m.set(known)
	return resp.Header.Revision, nil
}

func (m *membership) watch(ctx context.Context, rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range m.cfg.Client.Watch(wctx, m.cfg.Dir, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		if err := resp.Err(); err != nil {
			return err
		}
		if len(resp.Events) == 0 {
			continue
		}
		m.mu.RLock()
		known := make(map[string]Member, len(m.known)+1)
		for id, mem := range m.known {
			known[id] = mem
		}
		m.mu.RUnlock()
		for _, ev := range resp.Events {
			id := strings.TrimPrefix(string(ev.Kv.Key), m.cfg.Dir)
			if ev.Type == clientv3.EventTypeDelete {
				delete(known, id)
			} else if mem, ok := m.decode(ev.Kv.Key, ev.Kv.Value); ok {
				known[mem.ID] = mem
			}
		}
		m.set(known)
	}
	return errors.New("members watch closed")
}

func (m *membership) decode(key, val []byte) (Member, bool) {
	var mem Member
	id := strings.TrimPrefix(string(key), m.cfg.Dir)
	if err := json.Unmarshal(val, &mem); err != nil || mem.ID != id {
		m.log.Warn("bad member record left out", "key", string(key))
		return Member{}, false
	}
	return mem, true
}

// set makes known the members seen, and tells OnChange if the ids changed.
// Only follow calls it.
func (m *membership) set(known map[string]Member) {
	ids := []string{m.cfg.Self.ID}
	for id := range known {
		if id != m.cfg.Self.ID {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	m.mu.Lock()
	changed := !slices.Equal(ids, m.members)
	m.known = known
	if changed {
		m.members = ids
	}
	m.mu.Unlock()
	if !changed {
		return
	}
	m.log.Info("cluster members changed", "members", strings.Join(ids, ","))
	if m.cfg.OnChange != nil {
		m.cfg.OnChange(ids)
	}
}

// backoff waits between retries: 100ms, doubling up to 1s.
type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: 100 * time.Millisecond} }
func (b *backoff) reset()  { b.d = 100 * time.Millisecond }
func (b *backoff) sleep(ctx context.Context) {
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	b.d = min(2*b.d, time.Second)
}
