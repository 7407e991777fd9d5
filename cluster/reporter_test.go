package cluster

import (
	"context"
	"log/slog"
	"testing"
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
		go func() { st.Watch(wctx, reg); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		return reg, st
	}
	regA, stA := node("a")
	regB, _ := node("b")
	rep := NewReporter(regA, stA, slog.New(slog.DiscardHandler))
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
