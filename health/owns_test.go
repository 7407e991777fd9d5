package health

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"disco/registry"
)

// owner is a changeable Config.Owns: the set of instance ids owned.
type owner struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (o *owner) owns(k registry.Key) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ids[k.ID]
}

func (o *owner) set(ids ...string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ids = map[string]bool{}
	for _, id := range ids {
		o.ids[id] = true
	}
}

// TestOwns: a monitor checks only the instances it owns; after Rebalance it
// takes over those it now owns from the health the registry holds (so a
// passing instance does not flap when its checks change hands) and stops
// checking those it gave away.
func TestOwns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := &owner{}
		o.set("web-1")
		h := start(t, func(c *Config) { c.Owns = o.owns })
		u1, u2 := endpoint(1), endpoint(2)
		h.world.set(u1, up)
		h.world.set(u2, down)
		k1 := h.register("web", "web-1", hc(u1, time.Second, 500*time.Millisecond, 1, 3)).Key()
		in2 := h.register("web", "web-2", hc(u2, time.Second, 500*time.Millisecond, 1, 3))
		k2 := in2.Key()
		sleep(5 * time.Second)
		if n := len(h.world.probes(u2)); n != 0 {
			t.Errorf("web-2, owned elsewhere, was probed %d times", n)
		}
		if s := h.status(k1); s != passing {
			t.Errorf("web-1 is %s, want passing", s)
		}
		// The owner of web-2 reported it passing (as another server would,
		// through the shared registry).
		h.reg.SetHealth(k2, in2.Revision, registry.Health{Status: passing, Output: "HTTP 200 OK", Since: time.Now()})

		o.set("web-2")
		h.mon.Rebalance()
		synctest.Wait()
		before := len(h.world.probes(u1))
		for range 30 { // until two failed probes of web-2: below fall
			if len(h.world.probes(u2)) >= 2 {
				break
			}
			sleep(100 * time.Millisecond)
		}
		if n := len(h.world.probes(u1)); n != before {
			t.Errorf("web-1, given away, was probed %d more times", n-before)
		}
		if n := len(h.world.probes(u2)); n != 2 {
			t.Fatalf("web-2 was probed %d times within 3s of the takeover, want 2", n)
		}
		if s := h.status(k2); s != passing {
			t.Errorf("web-2 is %s after two failures taken over, want still passing (fall 3)", s)
		}
		sleep(2 * time.Second)
		if s := h.status(k2); s != critical {
			t.Errorf("web-2 is %s after its fall, want critical", s)
		}
		if s := h.status(k1); s != passing {
			t.Errorf("web-1 is %s, want left as it was (passing)", s)
		}

		// Owning nothing: no probes at all.
		o.set()
		h.mon.Rebalance()
		synctest.Wait()
		n1, n2 := len(h.world.probes(u1)), len(h.world.probes(u2))
		sleep(5 * time.Second)
		if len(h.world.probes(u1)) != n1 || len(h.world.probes(u2)) != n2 {
			t.Error("probes went on after the monitor gave every instance away")
		}
	})
}
