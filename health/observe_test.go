package health

import (
	"testing"
	"testing/synctest"
	"time"

	"disco/registry"
)

// TestObserver checks that every probe reaches the Observer with the
// consecutive failures, while the registry publishes only transitions.
func TestObserver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var reg *registry.Registry
		h := start(t, func(c *Config) { c.Observer = c.Source.(*registry.Registry); reg = c.Source.(*registry.Registry) })
		u := endpoint(1)
		h.world.set(u, up)
		k := h.register("web", "web-1", hc(u, time.Second, 500*time.Millisecond, 1, 2)).Key()
		sleep(1500 * time.Millisecond)
		snap := reg.Snapshot()
		sleep(3 * time.Second) // passing runs that change nothing
		if reg.Snapshot() != snap {
			t.Fatal("passing probes that change nothing published a snapshot")
		}
		run, ok := reg.LastCheck(k)
		if !ok || run.Status != passing || run.Failures != 0 || run.Output != "HTTP 200 OK" {
			t.Fatalf("last check %+v (%v), want passing, HTTP 200 OK, 0 failures", run, ok)
		}
		if last := h.world.probes(u); !run.Time.Equal(last[len(last)-1]) {
			t.Errorf("last check at %v, last probe at %v", run.Time, last[len(last)-1])
		}
		h.world.set(u, down)
		sleep(time.Second)
		if run, _ := reg.LastCheck(k); run.Failures != 1 || run.Status != passing {
			t.Errorf("after one failure with fall 2: %+v, want passing with 1 failure", run)
		}
		sleep(2 * time.Second)
		if run, _ := reg.LastCheck(k); run.Failures != 3 || run.Status != critical || run.Output != "connection refused" {
			t.Errorf("after three failures: %+v, want critical, connection refused, 3 failures", run)
		}
		a, _ := reg.Activity(k)
		if n := len(a.History); n != 2 || a.History[0].To != passing || a.History[1].To != critical {
			t.Errorf("history %+v, want critical>passing, passing>critical", a.History)
		}
	})
}
