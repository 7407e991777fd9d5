package etcdstore

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"disco/registry"
	"disco/store"
)

// Target is the registry Watch keeps up to date. *registry.Registry
// implements it.
type Target interface {
	// Snapshot returns the registry's current snapshot.
	Snapshot() *registry.Snapshot
	// ApplyRemote applies changes other servers committed.
	ApplyRemote(changes []registry.Change, skip func(i int) bool) int
	// SetHealth records the health of instance k at revision rev.
	SetHealth(k registry.Key, rev uint64, h registry.Health) bool
}

// Cluster acts on the health results and heartbeats the servers record,
// which Watch hands to it in order with the registry's changes.
// *cluster.Node implements it.
type Cluster interface {
	// RemoteHealth receives a health result another server recorded for
	// instance k at revision rev; heartbeat is the etcd revision of the
	// latest heartbeat the result answers (0 for none). It decides
	// whether the result goes to the registry.
	RemoteHealth(k registry.Key, rev uint64, h registry.Health, heartbeat int64)
	// RemoteHeartbeat receives a heartbeat of instance k's ttl checks,
	// recorded by any server at etcd revision rev.
	RemoteHeartbeat(k registry.Key, rev int64)
}

// Watch keeps t up to date with what the other servers write under the
// prefix, from the revision Load read, until ctx is done: registrations,
// deregistrations and settings through t.ApplyRemote (leaving out this
// server's own commits, which t already holds); health results of other
// servers and heartbeats through cl, or, when cl is nil, health results
// through t.SetHealth and heartbeats nowhere (a server that checks no
// instance).
//
// When etcd is unreachable it waits, leaving t as it is, and resumes from
// the last revision it saw once etcd is back; if etcd has compacted that
// revision away meanwhile, it reads the whole prefix again and applies the
// difference. It returns nil once ctx is done.
func (s *Store) Watch(ctx context.Context, t Target, cl Cluster) error {
	s.mu.Lock()
	rev := s.loaded
	s.mu.Unlock()
	wait := 100 * time.Millisecond
	for {
		next, err := s.watchFrom(ctx, t, cl, rev)
		if ctx.Err() != nil {
			return nil
		}
		if next > rev {
			wait = 100 * time.Millisecond
		}
		rev = next
		if errors.Is(err, rpctypes.ErrCompacted) {
			s.log.Warn("watch fell behind etcd's compaction; reading the registry again", "revision", rev)
			if rev, err = s.reload(ctx, t, cl, rev); err == nil {
				continue
			}
		}
		s.log.Warn("etcd watch interrupted; retrying", "revision", rev, "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// watchFrom watches the prefix from revision rev+1 until the watch fails or
// ctx is done, and returns the last revision it delivered.
func (s *Store) watchFrom(ctx context.Context, t Target, cl Cluster, rev int64) (int64, error) {
	// Require a leader: a member cut off from the others ends the watch
	// rather than leave it silently stale.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	ch := s.cli.Watch(wctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	tick := time.NewTicker(s.progress)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return rev, ctx.Err()
		case <-tick.C:
			// The answer comes on ch as a progress notification.
			pctx, pcancel := context.WithTimeout(wctx, s.progress)
			err := s.cli.RequestProgress(pctx)
			pcancel()
			if err != nil && ctx.Err() == nil {
				s.log.Debug("watch progress request failed", "err", err)
			}
		case resp, ok := <-ch:
			if !ok {
				return rev, errors.New("watch closed")
			}
			if err := resp.Err(); err != nil {
				return rev, err
			}
			switch {
			case resp.IsProgressNotify():
				if r := resp.Header.Revision; r > rev {
					rev = r
					s.passed(rev)
					s.reached(rev)
				}
				s.markSync()
			case len(resp.Events) > 0:
				rev = s.apply(t, cl, resp.Events)
				s.reached(rev)
				s.markSync()
			}
		}
	}
}

// apply delivers one watch response's events to t in order and returns the
// revision of the last.
func (s *Store) apply(t Target, cl Cluster, events []*clientv3.Event) int64 {
	var (
		changes []registry.Change
		keys    []string
		revs    []int64
	)
	flush := func() {
		if len(changes) == 0 {
			return
		}
		s.reached(revs[len(revs)-1]) // before the registry publishes them
		t.ApplyRemote(changes, func(i int) bool { return s.isOwn(keys[i], revs[i]) })
		changes, keys, revs = nil, nil, nil
	}
	for _, ev := range events {
		rel := strings.TrimPrefix(string(ev.Kv.Key), s.prefix)
		put := ev.Type == clientv3.EventTypePut
		c, ok, err := func() (registry.Change, bool, error) {
			switch {
			case strings.HasPrefix(rel, dirInstances):
				k, ok := splitKey(strings.TrimPrefix(rel, dirInstances))
				if !ok {
					return registry.Change{}, false, errors.New("not an instance key (service/id)")
				}
				if !put {
					return registry.Change{Op: registry.OpDeleteInstance, Service: k.Service, ID: k.ID}, true, nil
				}
				in, err := store.DecodeInstance(k.Service, k.ID, ev.Kv.Value)
				return registry.Change{Op: registry.OpPutInstance, Service: k.Service, Instance: in}, err == nil, err
			case strings.HasPrefix(rel, dirServices) && put:
				name := strings.TrimPrefix(rel, dirServices)
				set, err := store.DecodeSettings(name, ev.Kv.Value)
				return registry.Change{Op: registry.OpPutService, Service: name, Settings: set}, err == nil, err
			case strings.HasPrefix(rel, dirHealth) && put:
				k, ok := splitKey(strings.TrimPrefix(rel, dirHealth))
				if !ok {
					return registry.Change{}, false, errors.New("not a health key (service/id)")
				}
				h, err := decodeHealth(ev.Kv.Value)
				if err != nil || h.By == s.member {
					return registry.Change{}, false, err
				}
				flush()
				s.reached(ev.Kv.ModRevision)
				applyHealth(t, cl, k, h)
			case strings.HasPrefix(rel, dirHeartbeats) && put:
				k, ok := splitKey(strings.TrimPrefix(rel, dirHeartbeats))
				if ok && cl != nil {
					flush()
					cl.RemoteHeartbeat(k, ev.Kv.ModRevision)
				}
			}
			return registry.Change{}, false, nil
		}()
		if err != nil {
			s.log.Error("bad record left out", "key", string(ev.Kv.Key), "revision", ev.Kv.ModRevision, "err", err)
			continue
		}
		if ok {
			changes, keys, revs = append(changes, c), append(keys, rel), append(revs, ev.Kv.ModRevision)
		}
	}
	flush()
	last := events[len(events)-1].Kv.ModRevision
	s.passed(last)
	return last
}

// reload reads the whole prefix again after the watch lost its place (etcd
// compacted the revisions it had not seen yet) and brings t to it: every
// record is applied again (an instance at an unchanged revision keeps its
// health), instances no longer stored are removed, and other servers'
// health results are applied. It returns the revision read.
func (s *Store) reload(ctx context.Context, t Target, cl Cluster, prev int64) (int64, error) {
	gctx, cancel := context.WithTimeout(ctx, 10*s.timeout)
	defer cancel()
	resp, err := s.cli.Get(gctx, s.prefix, clientv3.WithPrefix())
	if err != nil {
		return prev, s.unavailable("read the registry", err)
	}
	rev := resp.Header.Revision
	st, recs, err := s.parse(resp.Kvs, false)
	if err != nil {
		return prev, err
	}
	changes := make([]registry.Change, 0, len(recs))
	keys := make([]string, 0, len(recs))
	revs := make([]int64, 0, len(recs))
	stored := make(map[registry.Key]bool, len(st.Instances))
	for _, r := range recs {
		changes, keys, revs = append(changes, r.change), append(keys, r.key), append(revs, r.rev)
		if r.change.Op == registry.OpPutInstance {
			stored[r.change.Instance.Key()] = true
		}
	}
	for _, svc := range t.Snapshot().Services() {
		for _, in := range svc.Instances() {
			if k := in.Key(); !stored[k] {
				changes = append(changes, registry.Change{Op: registry.OpDeleteInstance, Service: k.Service, ID: k.ID})
				keys = append(keys, strings.TrimPrefix(s.instanceKey(k), s.prefix))
				revs = append(revs, rev)
			}
		}
	}
	t.ApplyRemote(changes, func(i int) bool { return s.isOwn(keys[i], revs[i]) })
	for _, kv := range resp.Kvs {
		rel := strings.TrimPrefix(string(kv.Key), s.prefix)
		if !strings.HasPrefix(rel, dirHealth) {
			continue
		}
		k, ok := splitKey(strings.TrimPrefix(rel, dirHealth))
		h, err := decodeHealth(kv.Value)
		if ok && err == nil && h.By != s.member {
			applyHealth(t, cl, k, h)
		}
	}
	s.passed(rev)
	s.reached(rev)
	s.markSync()
	s.log.Info("registry read from etcd again", "revision", rev, "previous", prev)
	return rev, nil
}

// applyHealth hands a health record another server wrote to cl, or to t
// when cl is nil.
func applyHealth(t Target, cl Cluster, k registry.Key, h healthRecord) {
	if cl == nil {
		t.SetHealth(k, h.Revision, h.health())
		return
	}
	cl.RemoteHealth(k, h.Revision, h.health(), h.Heartbeat)
}
