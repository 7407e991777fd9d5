package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"disco/registry"
	"disco/store/etcdstore"
	"disco/store/etcdstore/etcdtest"
)

// TestReporter: results are recorded locally at once and reach the other
// servers through etcd; while etcd is down they wait, and once it is back
// the latest result of each instance is written.
func TestReporter(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	ctx := context.Background()
	node := func(member string) (*registry.Registry, *etcdstore.Store) {
		cli, err := etcdstore.NewClient(etcdstore.ClientConfig{Endpoints: ec.Endpoints()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		st := etcdstore.New(cli, etcdstore.Options{Prefix: "/r/", Member: member})
		reg := registry.New(registry.Config{Store: st})
		if err := reg.Load(ctx); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { st.Watch(wctx, reg, nil); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		return reg, st
	}
	regA, stA := node("a")
	regB, _ := node("b")
	rep := newReporter(regA, stA, slog.New(slog.DiscardHandler))
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rep.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })

	in, err := registry.NewInstance("web", "a1", registry.Registration{Address: "10.0.0.1", Port: 80,
		Checks: []registry.Check{{Type: registry.CheckTCP, Address: "10.0.0.1:80"}}})
	if err != nil {
		t.Fatal(err)
	}
	in, err = regA.Register(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	status := func(reg *registry.Registry) string {
		got, ok := reg.Snapshot().Instance("web", "a1")
		if !ok {
			return "gone"
		}
		return string(got.Status()) + ": " + got.Health.Output
	}
	waitB := func(want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for status(regB) != want {
			if time.Now().After(deadline) {
				t.Fatalf("b holds %q, want %q", status(regB), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	report := func(s registry.Status, out string) {
		rep.SetHealth(in.Key(), in.Revision, registry.Health{Status: s, Output: out, Since: time.Now()})
		if got, want := status(regA), string(s)+": "+out; got != want {
			t.Errorf("a holds %q right after the report, want %q", got, want)
		}
	}

	report(registry.StatusPassing, "connected")
	waitB("passing: connected")

	ec.Members[0].Stop()
	report(registry.StatusWarning, "slow")
	report(registry.StatusCritical, "connection refused")
	if n := rep.Pending(); n > 1 {
		t.Errorf("%d results pending for one instance with etcd down, want only the latest", n)
	}
	ec.Members[0].Restart()
	waitB("critical: connection refused")
	deadline := time.Now().Add(10 * time.Second)
	for rep.Pending() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := rep.Pending(); n != 0 {
		t.Errorf("%d results still pending after etcd came back", n)
	}
}

// memHealth is an in-memory healthStore (the etcd one is tested above).
type memHealth struct {
	mu      sync.Mutex
	written []string
}

func (m *memHealth) PutHealth(_ context.Context, k registry.Key, rev uint64, h registry.Health, heartbeat int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := fmt.Sprintf("%s@%d %s", k, rev, h.Status)
	if heartbeat != 0 {
		w += fmt.Sprintf(" answers %d", heartbeat)
	}
	m.written = append(m.written, w)
	return nil
}

func (m *memHealth) get() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.written)
}

// TestReassert: a result another server wrote for an instance this server
// checks is answered by writing this server's view again, unless the two
// agree or the result is for another revision.
func TestReassert(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := registry.New(registry.Config{})
		in, err := registry.NewInstance("web", "a1", registry.Registration{Address: "10.0.0.1", Port: 80,
			Checks: []registry.Check{{Type: registry.CheckTCP, Address: "10.0.0.1:80"}}})
		if err != nil {
			t.Fatal(err)
		}
		in, err = reg.Register(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		store := &memHealth{}
		rep := newReporter(reg, store, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- rep.Run(ctx) }()

		rev := in.Revision
		rep.SetHealth(in.Key(), rev, registry.Health{Status: registry.StatusCritical, Output: "refused"})
		synctest.Wait()
		rep.Reassert(in.Key(), rev, registry.Health{Status: registry.StatusCritical, Output: "refused"}) // agrees
		rep.Reassert(in.Key(), rev+1, registry.Health{Status: registry.StatusPassing, Output: "ok"})     // another revision
		synctest.Wait()
		rep.Reassert(in.Key(), rev, registry.Health{Status: registry.StatusPassing, Output: "ok"}) // stale
		synctest.Wait()
		want := fmt.Sprintf("[web/a1@%d critical web/a1@%d critical]", rev, rev)
		if got := fmt.Sprint(store.get()); got != want {
			t.Errorf("written %s, want %s", got, want)
		}
		if got, _ := reg.Snapshot().Instance("web", "a1"); got.Health.Status != registry.StatusCritical {
			t.Errorf("local health %s, want the owner's critical", got.Health.Status)
		}
		cancel()
		<-done
	})
}

// TestAnswer: the answer to a heartbeat is this server's view of the
// instance, written even when nothing changed, naming the latest
// heartbeat it answers; a result reported meanwhile keeps that name.
func TestAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := registry.New(registry.Config{})
		in, err := registry.NewInstance("web", "a1", registry.Registration{Address: "10.0.0.1", Port: 80,
			Checks: []registry.Check{{Type: registry.CheckTTL, TTL: registry.Duration(time.Minute)}}})
		if err != nil {
			t.Fatal(err)
		}
		in, err = reg.Register(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		store := &memHealth{}
		rep := newReporter(reg, store, nil)
		rev := in.Revision
		rep.Answer(in.Key(), 7) // nothing changed: the registry's critical
		rep.Answer(in.Key(), 5) // older
		rep.SetHealth(in.Key(), rev, registry.Health{Status: registry.StatusPassing, Output: "heartbeat received"})
		rep.Answer(registry.Key{Service: "web", ID: "nope"}, 8)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- rep.Run(ctx) }()
		synctest.Wait()
		rep.Answer(in.Key(), 9)
		synctest.Wait()
		want := fmt.Sprintf("[web/a1@%d passing answers 7 web/a1@%d passing answers 9]", rev, rev)
		if got := fmt.Sprint(store.get()); got != want {
			t.Errorf("written %s, want %s", got, want)
		}
		cancel()
		<-done
	})
}
