package registry_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"disco/registry"
)

// history renders an instance's transitions as "from>to(output)" words.
func history(r *registry.Registry, k registry.Key) string {
	a, ok := r.Activity(k)
	if !ok {
		return "none"
	}
	var words []string
	for _, t := range a.History {
		words = append(words, fmt.Sprintf("%s>%s(%s)", t.From, t.To, t.Output))
	}
	return strings.Join(words, " ")
}

func TestActivity(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	for _, mode := range []string{"memory", "store"} {
		t.Run(mode, func(t *testing.T) {
			cfg := registry.Config{Now: clk.now}
			if mode == "store" {
				cfg.Store = newFakeStore()
			}
			r := registry.New(cfg)
			in, err := r.Register(ctx, inst(t, "web", "w1", "10.0.0.1:80", tcpCheck("10.0.0.1:80")))
			if err != nil {
				t.Fatal(err)
			}
			k := in.Key()
			if got := history(r, k); got != "none" {
				t.Errorf("history after registration: %s", got)
			}

			// A check run that changes nothing publishes nothing and moves
			// no index, but is remembered.
			snap := r.Snapshot()
			svc, _ := snap.Service("web")
			r.ObserveCheck(k, in.Revision, registry.CheckRun{Time: clk.now(), Status: registry.StatusCritical, Output: "refused", Failures: 1})
			if r.Snapshot() != snap {
				t.Fatal("a check run published a snapshot")
			}
			if run, ok := r.LastCheck(k); !ok || run.Failures != 1 || run.Output != "refused" || !run.Time.Equal(clk.now()) {
				t.Errorf("last check %+v %v", run, ok)
			}
			// Runs for another revision or instance are ignored.
			r.ObserveCheck(k, in.Revision+1, registry.CheckRun{Time: clk.now(), Output: "stale"})
			r.ObserveCheck(registry.Key{Service: "web", ID: "zz"}, 1, registry.CheckRun{Time: clk.now()})
			if run, _ := r.LastCheck(k); run.Output != "refused" {
				t.Errorf("a run of another revision was recorded: %+v", run)
			}
			if _, ok := r.Activity(registry.Key{Service: "web", ID: "zz"}); ok {
				t.Error("an unknown instance got activity")
			}

			clk.advance(time.Second)
			r.SetHealth(k, in.Revision, registry.Health{Status: registry.StatusPassing, Output: "ok", Since: clk.now()})
			if _, err := r.SetMaintenance(ctx, "web", "w1", true, "upgrade"); err != nil {
				t.Fatal(err)
			}
			r.SetHealth(k, in.Revision, registry.Health{Status: registry.StatusCritical, Output: "down", Since: clk.now()})
			if _, err := r.SetMaintenance(ctx, "web", "w1", false, ""); err != nil {
				t.Fatal(err)
			}
			want := "critical>passing(ok) passing>maintenance(upgrade) passing>critical(down) maintenance>critical(down)"
			if got := history(r, k); got != want {
				t.Errorf("history\n%s\nwant\n%s", got, want)
			}
			a, _ := r.Activity(k)
			if !a.History[0].Time.Equal(clk.now()) {
				t.Errorf("first transition at %v, want %v", a.History[0].Time, clk.now())
			}
			if svc2, _ := r.Snapshot().Service("web"); svc2.Index() <= svc.Index() {
				t.Errorf("service index %d after transitions, was %d", svc2.Index(), svc.Index())
			}

			// The history keeps the last HistoryLen transitions, oldest first.
			for i := range 31 {
				s := registry.StatusPassing
				if i%2 == 1 {
					s = registry.StatusCritical
				}
				r.SetHealth(k, in.Revision, registry.Health{Status: s, Output: fmt.Sprint(i), Since: clk.now()})
			}
			a, _ = r.Activity(k)
			if len(a.History) != registry.HistoryLen || a.History[0].Output != "11" || a.History[len(a.History)-1].Output != "30" {
				t.Errorf("history of %d from %q to %q, want %d from 11 to 30", len(a.History), a.History[0].Output, a.History[len(a.History)-1].Output, registry.HistoryLen)
			}

			// New checks forget the last run; deregistration forgets all.
			in2, err := r.Register(ctx, inst(t, "web", "w1", "10.0.0.1:80", tcpCheck("10.0.0.1:81")))
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := r.LastCheck(k); ok {
				t.Error("the last run of the old checks survived new checks")
			}
			if got := history(r, k); !strings.HasSuffix(got, "passing>critical(waiting for the first check)") {
				t.Errorf("new checks: history ends %q", got[max(0, len(got)-60):])
			}
			r.ObserveCheck(k, in2.Revision, registry.CheckRun{Time: clk.now(), Status: registry.StatusCritical})
			if err := r.Deregister(ctx, "web", "w1"); err != nil {
				t.Fatal(err)
			}
			if _, ok := r.Activity(k); ok {
				t.Error("a deregistered instance kept its activity")
			}
		})
	}
}

func TestServiceIndex(t *testing.T) {
	ctx := context.Background()
	r := registry.New(registry.Config{})
	reg := func(svc, id string) *registry.Instance {
		t.Helper()
		in, err := r.Register(ctx, inst(t, svc, id, "10.0.0.1:80", ttlCheck(time.Minute)))
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	a1 := reg("a", "1")
	reg("b", "1")
	s := r.Snapshot()
	ia, ib := s.ServiceIndex("a"), s.ServiceIndex("b")
	if ia == 0 || ib <= ia || s.ServicesIndex() != ib || s.ServiceIndex("nope") != ib {
		t.Fatalf("indexes a=%d b=%d services=%d nope=%d", ia, ib, s.ServicesIndex(), s.ServiceIndex("nope"))
	}
	r.SetHealth(a1.Key(), a1.Revision, registry.Health{Status: registry.StatusPassing})
	s = r.Snapshot()
	if s.ServiceIndex("a") != s.Version() || s.ServiceIndex("b") != ib || s.ServicesIndex() != ib {
		t.Errorf("after a's health: a=%d (version %d) b=%d services=%d", s.ServiceIndex("a"), s.Version(), s.ServiceIndex("b"), s.ServicesIndex())
	}
	if err := r.Deregister(ctx, "b", "1"); err != nil {
		t.Fatal(err)
	}
	s = r.Snapshot()
	if s.ServiceIndex("b") != s.Version() || s.ServicesIndex() != s.Version() {
		t.Errorf("after removing b: b=%d services=%d version=%d", s.ServiceIndex("b"), s.ServicesIndex(), s.Version())
	}
}

func TestWatchService(t *testing.T) {
	ctx := context.Background()
	r := registry.New(registry.Config{})
	reg := func(svc, id string) {
		t.Helper()
		if _, err := r.Register(ctx, inst(t, svc, id, "10.0.0.1:80")); err != nil {
			t.Fatal(err)
		}
	}
	reg("a", "1")
	snap := r.Snapshot()
	cha, stopA := r.WatchService(snap, "a")
	chb, stopB := r.WatchService(snap, "b")
	chb2, stopB2 := r.WatchService(snap, "b")
	defer stopA()
	reg("a", "2")
	if !closed(cha) || closed(chb) {
		t.Fatalf("after a change of a: a woken %v, b woken %v", closed(cha), closed(chb))
	}
	// An old snapshot gets a closed channel: look again.
	if ch, stop := r.WatchService(snap, "b"); !closed(ch) {
		t.Error("watching from an old snapshot blocks")
	} else {
		stop()
	}
	reg("b", "1") // the service appears
	if !closed(chb) || !closed(chb2) {
		t.Error("waiters of b not woken when it appeared")
	}
	stopB()
	stopB2()
}

func TestHistoryOutputBounded(t *testing.T) {
	r := registry.New(registry.Config{})
	in, err := r.Register(context.Background(), inst(t, "web", "w1", "10.0.0.1:80", tcpCheck("10.0.0.1:80")))
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("é", 1000) // two bytes each: a cut must not split one
	r.SetHealth(in.Key(), in.Revision, registry.Health{Status: registry.StatusPassing, Output: long})
	a, _ := r.Activity(in.Key())
	if out := a.History[0].Output; len(out) > 256 || !strings.HasPrefix(long, out) || len(out) < 250 {
		t.Errorf("history output of %d bytes, want the first 256 at most, whole characters", len(out))
	}
}
