package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"disco/health"
	"disco/registry"
	"disco/store/etcdstore"
	"disco/store/etcdstore/etcdtest"
)

// server is one disco server's registry, cluster node and health monitor
// on a shared etcd, as cmd/disco wires them.
type server struct {
	id   string
	reg  *registry.Registry
	node *Node
	mon  *health.Monitor
	logs *lockedBuffer
}

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newServer builds a server on ec's etcd under prefix /n/; it runs once
// start is called, until the test ends.
func newServer(t *testing.T, ec *etcdtest.Cluster, id string) *server {
	t.Helper()
	cli, err := etcdstore.NewClient(etcdstore.ClientConfig{Endpoints: ec.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	s := &server{id: id, logs: &lockedBuffer{}}
	log := slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st := etcdstore.New(cli, etcdstore.Options{Prefix: "/n/", Member: id, Logger: log})
	s.reg = registry.New(registry.Config{Store: st, MaxBatch: etcdstore.MaxBatch})
	if err := s.reg.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A generous timeout: the machine may be loaded, and a heartbeat that
	// gets no answer within it is what the tests look for.
	s.node, err = New(Config{Registry: s.reg, Store: st, Client: cli, Self: Member{ID: id},
		TTL: 2 * time.Second, Timeout: 15 * time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	s.mon = health.New(health.Config{Source: s.reg, Reporter: s.node, Owns: s.node.Owns, Logger: log})
	return s
}

func (s *server) start(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{
		s.mon.Run,
		func(ctx context.Context) error { return s.node.Run(ctx, s.mon) },
	} {
		wg.Go(func() {
			if err := run(ctx); err != nil {
				t.Errorf("%s: %v", s.id, err)
			}
		})
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if t.Failed() {
			t.Logf("%s's log:\n%s", s.id, s.logs)
		}
	})
}

func (s *server) status(id string) string {
	in, ok := s.reg.Snapshot().Instance("web", id)
	if !ok {
		return "gone"
	}
	return string(in.Status())
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 20s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNodeHeartbeat: a heartbeat sent to either server renews the ttl
// check on the server that owns the instance, and returns once the server
// it was sent to holds the owner's result; heartbeats for unknown
// instances, instances without a ttl check, or sent to a node that is not
// running are refused.
func TestNodeHeartbeat(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	a, b := newServer(t, ec, "a"), newServer(t, ec, "b")
	ttl := []registry.Check{{Type: registry.CheckTTL, TTL: registry.Duration(time.Minute)}}
	// One instance owned by each server.
	ids := map[string]string{}
	for i := 0; len(ids) < 2; i++ {
		id := fmt.Sprintf("t%d", i)
		owner := Owner([]string{"a", "b"}, registry.Key{Service: "web", ID: id})
		if _, ok := ids[owner]; !ok {
			ids[owner] = id
		}
	}
	for _, r := range []struct {
		id     string
		checks []registry.Check
	}{
		{ids["a"], ttl},
		{ids["b"], ttl},
		{"tcp", []registry.Check{{Type: registry.CheckTCP, Address: "127.0.0.1:1"}}},
	} {
		in, err := registry.NewInstance("web", r.id, registry.Registration{Address: "10.0.0.1", Port: 80, Checks: r.checks})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.reg.Register(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.node.Heartbeat(registry.Key{Service: "web", ID: ids["a"]}); !errors.Is(err, registry.ErrUnavailable) {
		t.Errorf("heartbeat to a node not running: %v, want ErrUnavailable", err)
	}
	a.start(t)
	b.start(t)
	for _, s := range []*server{a, b} {
		waitUntil(t, s.id+" sees both members", func() bool { return slices.Equal(s.node.Members(), []string{"a", "b"}) })
	}
	waitUntil(t, "b knows the instances", func() bool { return b.status(ids["a"]) != "gone" && b.status("tcp") != "gone" })
	for _, s := range []*server{a, b} {
		for _, id := range ids {
			if st := s.status(id); st != "critical" {
				t.Fatalf("%s holds %s %s before any heartbeat, want critical", s.id, id, st)
			}
		}
	}

	tests := []struct {
		name string
		via  *server
		id   string
		err  error // nil, or what the error wraps
	}{
		{"forwarded to the owner", b, ids["a"], nil},
		{"forwarded again, nothing changes", b, ids["a"], nil},
		{"owned by the server it was sent to", b, ids["b"], nil},
		{"forwarded the other way", a, ids["b"], nil},
		{"case folded", a, strings.ToUpper(ids["a"]), nil},
		{"no ttl check", b, "tcp", registry.ErrInvalid},
		{"unknown instance", b, "nope", registry.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.via.node.Heartbeat(registry.Key{Service: "web", ID: tt.id})
			if (tt.err == nil) != (err == nil) || (tt.err != nil && !errors.Is(err, tt.err)) {
				t.Fatalf("Heartbeat: %v, want %v", err, tt.err)
			}
			if tt.err != nil {
				return
			}
			// The answer holds the owner's result: passing, at once.
			if st := tt.via.status(strings.ToLower(tt.id)); st != "passing" {
				t.Errorf("%s holds %s right after the heartbeat, want passing", tt.via.id, st)
			}
		})
	}
	for _, s := range []*server{a, b} {
		if strings.Contains(s.logs.String(), "did not answer") {
			t.Errorf("a heartbeat through %s went unanswered", s.id)
		}
	}
}

// TestAnswers: a wait ends once a heartbeat at or after its revision is
// answered, or when its context is done.
func TestAnswers(t *testing.T) {
	var a answers
	a.waiting = make(map[registry.Key]*answer)
	k := registry.Key{Service: "web", ID: "a1"}
	w := a.add(k)
	a.answered(k, 5)
	a.answered(registry.Key{Service: "web", ID: "other"}, 9)
	if !a.wait(context.Background(), w, 5) {
		t.Error("answered revision 5, wait for 5 not done")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if a.wait(ctx, w, 6) {
		t.Error("wait for 6 done with only 5 answered")
	}
	done := make(chan bool)
	go func() { done <- a.wait(context.Background(), w, 7) }()
	a.answered(k, 6)
	a.answered(k, 8)
	if !<-done {
		t.Error("wait for 7 not done after 8 was answered")
	}
	w2 := a.add(k)
	a.remove(k)
	if len(a.waiting) != 1 || w2 != w {
		t.Errorf("%d keys waited on with one wait left, want 1 (shared)", len(a.waiting))
	}
	a.remove(k)
	if len(a.waiting) != 0 {
		t.Errorf("%d keys waited on after every wait ended", len(a.waiting))
	}
}
