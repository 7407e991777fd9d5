package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"disco/registry"
	"disco/store/etcdstore/etcdtest"
)

// running is a membership under test.
type running struct {
	m      *membership
	cli    *clientv3.Client
	cancel context.CancelFunc
	done   chan error

	mu      sync.Mutex
	changes [][]string
}

func join(t *testing.T, ec *etcdtest.Cluster, id string) *running {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: ec.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	r := &running{cli: cli}
	r.m = newMembership(membershipConfig{Client: cli, Dir: "/m/members/", Self: Member{ID: id}, TTL: 2 * time.Second,
		OnChange: func(ms []string) {
			r.mu.Lock()
			r.changes = append(r.changes, ms)
			r.mu.Unlock()
		}})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- r.m.Run(ctx) }()
	t.Cleanup(func() {
		r.stop(t)
		cli.Close()
	})
	return r
}

func (r *running) stop(t *testing.T) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	if err := <-r.done; err != nil {
		t.Errorf("Run: %v", err)
	}
	r.cancel = nil
}

// waitMembers waits up to 15s for r to see exactly want.
func (r *running) waitMembers(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !slices.Equal(r.m.Members(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s sees members %v, want %v", r.m.Self(), r.m.Members(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMembership: servers see each other; each instance is owned by
// exactly one of them; a server that stops leaves at once, one that dies
// (stops renewing its lease) leaves after the lease's ttl, and the others
// take over its instances.
func TestMembership(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	a, b, c := join(t, ec, "a"), join(t, ec, "b"), join(t, ec, "c")
	for _, r := range []*running{a, b, c} {
		r.waitMembers(t, "a", "b", "c")
	}
	var keys []registry.Key
	for i := range 300 {
		keys = append(keys, registry.Key{Service: "web", ID: fmt.Sprintf("i%d", i)})
	}
	owners := func(rs ...*running) map[string]int {
		count := map[string]int{}
		for _, k := range keys {
			var by []string
			for _, r := range rs {
				if r.m.Owns(k) {
					by = append(by, r.m.Self())
				}
			}
			if len(by) != 1 {
				t.Fatalf("%s is owned by %v, want exactly one", k, by)
			}
			count[by[0]]++
		}
		return count
	}
	if n := owners(a, b, c); n["a"] == 0 || n["b"] == 0 || n["c"] == 0 {
		t.Errorf("owners %v: someone owns nothing", n)
	}

	// b stops: it withdraws at once.
	b.stop(t)
	a.waitMembers(t, "a", "c")
	c.waitMembers(t, "a", "c")
	owners(a, c)

	// c dies: its client goes away without a word, and its lease lapses.
	c.cli.Close()
	a.waitMembers(t, "a")
	owners(a)
	a.mu.Lock()
	changes := slices.Clone(a.changes)
	a.mu.Unlock()
	// The first listing may have found fewer than three; the end is known.
	if n := len(changes); n < 3 || fmt.Sprint(changes[n-2:]) != "[[a c] [a]]" {
		t.Errorf("a saw the members change as %v, want ... [a c] [a]", changes)
	}
}

// TestMembershipOwnsNothingUntilListed: before it has seen the members, a
// server owns nothing (rather than everything).
func TestMembershipOwnsNothingUntilListed(t *testing.T) {
	m := newMembership(membershipConfig{Dir: "/m/members/", Self: Member{ID: "a"}})
	if m.Owns(registry.Key{Service: "web", ID: "a1"}) || m.Members() != nil {
		t.Error("a membership that never ran owns instances")
	}
	if err := m.Run(context.Background()); err == nil {
		t.Error("Run without a client succeeded")
	}
}
