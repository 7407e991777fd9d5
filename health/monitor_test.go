package health

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"disco/registry"
)

const (
	passing  = registry.StatusPassing
	warning  = registry.StatusWarning
	critical = registry.StatusCritical
)

func TestFirstProbeAtOnce(t *testing.T) {
	for _, iv := range []time.Duration{100 * time.Millisecond, time.Second, 3 * time.Second, 10 * time.Second, time.Minute} {
		t.Run(iv.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := start(t, nil)
				u := endpoint(1)
				h.world.set(u, up)
				sleep(1234567 * time.Microsecond) // not on a round time
				t0 := time.Now()
				in := h.register("web", "web-1", hc(u, iv, min(iv/2, 2*time.Second), 1, 3))
				k := in.Key()
				if in.Health.Status != critical || in.Health.Output != "waiting for the first check" {
					t.Fatalf("new instance health = %+v, want critical, waiting for the first check", in.Health)
				}
				bound := min(iv, time.Second)
				sleep(bound)

				probes := h.world.probes(u)
				if len(probes) == 0 {
					t.Fatalf("no probe within %s of registration", bound)
				}
				first := probes[0]
				if first.Before(t0) || !first.Before(t0.Add(bound)) {
					t.Errorf("first probe %s after registration, want within [0, %s)", first.Sub(t0), bound)
				}
				if want := firstProbe(t0, iv, phase(k, 0, iv)); !first.Equal(want) {
					t.Errorf("first probe at +%s, want the deterministic +%s", first.Sub(t0), want.Sub(t0))
				}
				reports := h.rec.of(k)
				if len(reports) != 1 || reports[0].h.Status != passing || !reports[0].at.Equal(first) ||
					!reports[0].h.Since.Equal(first) || reports[0].h.Output != "HTTP 200 OK" {
					t.Fatalf("reports = %+v, want one: passing, HTTP 200 OK, since the first probe", reports)
				}

				sleep(5 * iv)
				probes = h.world.probes(u)
				if len(probes) < 6 {
					t.Fatalf("%d probes in 5 intervals after the first, want at least 6", len(probes))
				}
				if gap := probes[1].Sub(probes[0]); gap <= 0 || gap > iv {
					t.Errorf("second probe %s after the first, want within (0, %s]", gap, iv)
				}
				ph := phase(k, 0, iv)
				for i := 1; i < len(probes); i++ {
					if off := time.Duration(probes[i].UnixNano() % int64(iv)); off != ph {
						t.Errorf("probe %d at offset %s in its interval, want the phase %s", i, off, ph)
					}
					if i > 1 && probes[i].Sub(probes[i-1]) != iv {
						t.Errorf("probe %d came %s after the previous, want %s", i, probes[i].Sub(probes[i-1]), iv)
					}
				}
			})
		})
	}
}

func TestThresholds(t *testing.T) {
	// Scripts: P passing, W warning (429), F failing. Statuses after each
	// probe: P passing, W warning, C critical. Instances start critical.
	tests := []struct {
		name       string
		rise, fall int
		script     string
		want       string
	}{
		{"defaults", 1, 3, "PPFFFPP", "PPPPCPP"},
		{"new-instance-stays-critical-until-a-pass", 1, 3, "FFFFP", "CCCCP"},
		{"rise-2", 2, 3, "PPFPFFFPP", "CPPPPPCCP"},
		{"rise-3-fall-2", 3, 2, "PPFPPPFFPPP", "CCCCCPPCCCP"},
		{"fall-1", 1, 1, "PFPFP", "PCPCP"},
		{"flapping-never-reaches-fall", 1, 2, "PFPFPF", "PPPPPP"},
		{"warning-counts-as-a-pass", 1, 3, "WPWFFFW", "WPWWWCW"},
		{"warning-then-pass-with-rise-2", 2, 3, "WWPFFF", "CWPPPC"},
		{"interrupted-rise", 3, 3, "PPFPPP", "CCCCCP"},
	}
	answers := map[byte]answer{'P': up, 'W': busy, 'F': down}
	statuses := map[registry.Status]byte{passing: 'P', warning: 'W', critical: 'C'}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := start(t, nil)
				u := endpoint(1)
				var script []answer
				for i := range len(tt.script) {
					script = append(script, answers[tt.script[i]])
				}
				h.world.script(u, script...)
				k := h.register("web", "web-1", hc(u, time.Second, 500*time.Millisecond, tt.rise, tt.fall)).Key()
				sleep(time.Duration(len(tt.script)) * time.Second)

				probes := h.world.probes(u)[:len(tt.script)]
				var got []byte
				for _, at := range probes {
					got = append(got, statuses[h.statusAt(k, at, critical)])
				}
				if string(got) != tt.want {
					t.Errorf("statuses after each probe = %s, want %s", got, tt.want)
				}
			})
		})
	}
}

func TestDetectionAndRecovery(t *testing.T) {
	const iv, timeout = time.Second, 500 * time.Millisecond
	type params struct{ rise, fall int }
	for _, p := range []params{{1, 2}, {1, 3}, {2, 3}} {
		for _, mode := range []struct {
			name string
			a    answer
		}{{"refused", down}, {"http-500", broken}, {"hung", hanging}} {
			for _, offset := range []time.Duration{time.Millisecond, 250 * time.Millisecond, 600 * time.Millisecond, 999 * time.Millisecond} {
				name := fmt.Sprintf("rise%d-fall%d/%s/%s", p.rise, p.fall, mode.name, offset)
				t.Run(name, func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						h := start(t, nil)
						u := endpoint(1)
						h.world.set(u, up)
						k := h.register("web", "web-1", hc(u, iv, timeout, p.rise, p.fall)).Key()
						sleep(time.Duration(p.rise+2) * iv)
						if s := h.status(k); s != passing {
							t.Fatalf("status %s before the backend died, want passing", s)
						}

						probes := h.world.probes(u)
						died := probes[len(probes)-1].Add(offset)
						time.Sleep(time.Until(died))
						h.world.set(u, mode.a)
						bound := iv*time.Duration(p.fall) + timeout
						sleep(bound + iv)
						var downAt time.Time
						for _, r := range h.rec.of(k) {
							if r.at.After(died) && r.h.Status == critical {
								downAt = r.at
								break
							}
						}
						if downAt.IsZero() {
							t.Fatalf("never marked critical after the backend died")
						}
						if took := downAt.Sub(died); took > bound || took <= iv*time.Duration(p.fall-1) {
							t.Errorf("marked critical %s after the backend died, want within (%s, %s]", took, iv*time.Duration(p.fall-1), bound)
						}

						revived := time.Now()
						h.world.set(u, up)
						sleep(time.Duration(p.rise+1) * iv)
						var upAt time.Time
						for _, r := range h.rec.of(k) {
							if r.at.After(revived) && r.h.Status == passing {
								upAt = r.at
								break
							}
						}
						if upAt.IsZero() {
							t.Fatalf("never passing again after the backend came back")
						}
						if took := upAt.Sub(revived); took > iv*time.Duration(p.rise) {
							t.Errorf("passing %s after the backend came back, want within %s", took, iv*time.Duration(p.rise))
						}
					})
				})
			}
		}
	}
}

// TestHungTargetIsolation checks that hung targets cost only their own
// timeouts: every other check keeps its exact schedule.
func TestHungTargetIsolation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, nil)
		const iv = time.Second
		var keys []registry.Key
		for i := range 50 {
			u := endpoint(i)
			if i%5 == 0 {
				h.world.set(u, hanging)
			} else {
				h.world.set(u, answer{status: passing, output: "HTTP 200 OK", delay: 3 * time.Millisecond})
			}
			keys = append(keys, h.register("web", fmt.Sprintf("web-%d", i), hc(u, iv, 900*time.Millisecond, 1, 2)).Key())
		}
		sleep(10 * iv)
		for i, k := range keys {
			probes := h.world.probes(endpoint(i))
			if len(probes) < 10 {
				t.Errorf("%s: %d probes in 10 intervals, want 10", k, len(probes))
				continue
			}
			for j := 1; j < len(probes); j++ {
				if off := time.Duration(probes[j].UnixNano() % int64(iv)); off != phase(k, 0, iv) {
					t.Errorf("%s: probe %d off its slot by %s", k, j, off-phase(k, 0, iv))
				}
			}
			want := passing
			if i%5 == 0 {
				want = critical
			}
			if s := h.status(k); s != want {
				t.Errorf("%s: status %s, want %s", k, s, want)
			}
		}
		h.lagMu.Lock()
		defer h.lagMu.Unlock()
		for _, l := range h.lags {
			if l != 0 {
				t.Errorf("a probe started %s late", l)
				break
			}
		}
	})
}

func TestMaxInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, func(c *Config) { c.MaxInFlight = 3 })
		for i := range 10 {
			h.world.set(endpoint(i), hanging)
			h.register("web", fmt.Sprintf("web-%d", i), hc(endpoint(i), time.Second, 500*time.Millisecond, 1, 3))
		}
		sleep(5 * time.Second)
		h.world.mu.Lock()
		defer h.world.mu.Unlock()
		maxIn := h.world.maxIn
		if maxIn != 3 {
			t.Errorf("at most %d probes ran at once, want the cap of 3", maxIn)
		}
		for i := range 10 {
			if n := h.world.targetMax[endpoint(i)]; n != 1 {
				t.Errorf("%s: %d probes at once, want 1 (a probe due while the last one waits is skipped)", endpoint(i), n)
			}
		}
		h.lagMu.Lock()
		defer h.lagMu.Unlock()
		late := 0
		for _, l := range h.lags {
			if l > 0 {
				late++
			}
		}
		if late == 0 {
			t.Errorf("no probe waited for a slot")
		}
	})
}

// TestOverload checks that a check whose last probe still waits for a slot
// skips its turn instead of queueing more probes: the wait stays bounded by
// the other checks' probes even when the cap cannot keep up.
func TestOverload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 900 * time.Millisecond
		h := start(t, func(c *Config) { c.MaxInFlight = 1 })
		for i := range 3 {
			h.world.set(endpoint(i), hanging)
			h.register("web", fmt.Sprintf("web-%d", i), hc(endpoint(i), time.Second, timeout, 1, 3))
		}
		sleep(30 * time.Second)
		h.lagMu.Lock()
		defer h.lagMu.Unlock()
		for _, l := range h.lags {
			if l > 2*timeout {
				t.Fatalf("a probe waited %s for a slot, want at most %s (the two other checks' probes)", l, 2*timeout)
			}
		}
		if len(h.lags) < 30 {
			t.Errorf("%d probes in 30s", len(h.lags))
		}
	})
}

// TestJitter checks that many checks registered at once are spread: their
// first probes over the first-probe bound, their later probes over the
// interval, the same way every time.
func TestJitter(t *testing.T) {
	const n, iv = 1000, 10 * time.Second
	run := func() (first, later map[registry.Key]time.Time, t0 time.Time) {
		first, later = make(map[registry.Key]time.Time), make(map[registry.Key]time.Time)
		synctest.Test(t, func(t *testing.T) {
			h := start(t, nil)
			sleep(777 * time.Millisecond)
			t0 = time.Now()
			var keys []registry.Key
			for i := range n {
				u := endpoint(i)
				h.world.set(u, up)
				keys = append(keys, h.register(fmt.Sprintf("svc-%d", i%10), fmt.Sprintf("i-%d", i), hc(u, iv, time.Second, 1, 3)).Key())
			}
			sleep(iv + time.Second)
			for i, k := range keys {
				probes := h.world.probes(endpoint(i))
				if len(probes) < 2 {
					t.Fatalf("%s: %d probes", k, len(probes))
				}
				first[k], later[k] = probes[0], probes[1]
			}
		})
		return first, later, t0
	}
	first, later, t0 := run()

	firstBuckets := make([]int, 10) // tenths of the first-probe bound (1s)
	laterBuckets := make([]int, 10) // tenths of the interval
	distinct := make(map[time.Time]bool)
	for k, at := range first {
		d := at.Sub(t0)
		if d < 0 || d >= time.Second {
			t.Fatalf("%s: first probe %s after registration, want within [0, 1s)", k, d)
		}
		firstBuckets[d/(100*time.Millisecond)]++
		distinct[at] = true
		laterBuckets[time.Duration(later[k].UnixNano()%int64(iv))/(iv/10)]++
	}
	if len(distinct) < n*9/10 {
		t.Errorf("%d distinct first-probe times for %d checks", len(distinct), n)
	}
	for i := range 10 {
		if firstBuckets[i] < n/20 || laterBuckets[i] < n/20 {
			t.Errorf("uneven spread: first probes per 100ms %v, later probes per second of the interval %v", firstBuckets, laterBuckets)
			break
		}
	}

	first2, later2, t02 := run()
	for k, at := range first {
		if first2[k].Sub(t02) != at.Sub(t0) || later2[k].Sub(t02) != later[k].Sub(t0) {
			t.Fatalf("%s: schedule differs between runs", k)
		}
	}
}

func TestTTL(t *testing.T) {
	ttl := func(d time.Duration, rise int) registry.Check {
		return registry.Check{Type: registry.CheckTTL, TTL: registry.Duration(d), Rise: rise}
	}
	t.Run("heartbeats", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := start(t, nil)
			k := h.register("job", "job-1", ttl(2*time.Second, 1)).Key()
			sleep(10 * time.Second)
			if got := h.health(k); got.Status != critical || got.Output != "waiting for the first check" {
				t.Fatalf("without heartbeats: %+v, want critical, waiting for the first check", got)
			}
			if err := h.mon.Heartbeat(k); err != nil {
				t.Fatal(err)
			}
			if got := h.health(k); got.Status != passing || got.Output != "heartbeat received" || !got.Since.Equal(time.Now()) {
				t.Fatalf("after a heartbeat: %+v, want passing at once", got)
			}
			for range 5 { // heartbeats every 1.9s keep it passing
				sleep(1900 * time.Millisecond)
				if err := h.mon.Heartbeat(registry.Key{Service: "JOB", ID: "Job-1"}); err != nil {
					t.Fatal(err)
				}
			}
			last := time.Now()
			sleep(2*time.Second - time.Millisecond)
			if s := h.status(k); s != passing {
				t.Fatalf("status %s within the ttl of the last heartbeat", s)
			}
			sleep(time.Millisecond)
			if got := h.health(k); got.Status != critical || got.Output != "no heartbeat within 2s" || !got.Since.Equal(last.Add(2*time.Second)) {
				t.Fatalf("ttl after the last heartbeat: %+v, want critical since then", got)
			}
			if n := len(h.rec.of(k)); n != 2 {
				t.Errorf("%d reports, want 2 (passing, then critical)", n)
			}
		})
	})
	t.Run("rise-2", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := start(t, nil)
			k := h.register("job", "job-1", ttl(2*time.Second, 2)).Key()
			if err := h.mon.Heartbeat(k); err != nil {
				t.Fatal(err)
			}
			if got := h.health(k); got.Status != critical || got.Output != "heartbeat received (pass 1 of 2 before passing)" {
				t.Fatalf("after one heartbeat: %+v", got)
			}
			sleep(time.Second)
			if err := h.mon.Heartbeat(k); err != nil {
				t.Fatal(err)
			}
			if s := h.status(k); s != passing {
				t.Fatalf("after two heartbeats: %s, want passing", s)
			}
		})
	})
	t.Run("with-http-check", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := start(t, nil)
			h.world.set(endpoint(1), up)
			k := h.register("job", "job-1", hc(endpoint(1), time.Second, 500*time.Millisecond, 1, 3), ttl(2*time.Second, 1)).Key()
			sleep(time.Second)
			if got := h.health(k); got.Status != critical || got.Output != "ttl check 2: waiting for the first check" {
				t.Fatalf("http passing, no heartbeat yet: %+v", got)
			}
			if err := h.mon.Heartbeat(k); err != nil {
				t.Fatal(err)
			}
			if got := h.health(k); got.Status != passing || got.Output != "http check 1: HTTP 200 OK" {
				t.Fatalf("after a heartbeat: %+v, want passing", got)
			}
			sleep(2 * time.Second)
			if got := h.health(k); got.Status != critical || got.Output != "ttl check 2: no heartbeat within 2s" {
				t.Fatalf("ttl after the heartbeat: %+v", got)
			}
		})
	})
	t.Run("errors", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := start(t, nil)
			plain := h.register("web", "plain").Key()
			http := h.register("web", "checked", hc(endpoint(1), time.Second, 500*time.Millisecond, 1, 3)).Key()
			tests := []struct {
				key  registry.Key
				want error
			}{
				{registry.Key{Service: "web", ID: "nope"}, registry.ErrNotFound},
				{registry.Key{Service: "nope", ID: "x"}, registry.ErrNotFound},
				{plain, registry.ErrInvalid},
				{http, registry.ErrInvalid},
			}
			for _, tt := range tests {
				if err := h.mon.Heartbeat(tt.key); !errors.Is(err, tt.want) {
					t.Errorf("Heartbeat(%s) = %v, want %v", tt.key, err, tt.want)
				}
			}
			h.stop()
			k := h.register("job", "job-1", ttl(2*time.Second, 1)).Key()
			if err := h.mon.Heartbeat(k); !errors.Is(err, registry.ErrUnavailable) {
				t.Errorf("Heartbeat with the monitor stopped = %v, want %v", err, registry.ErrUnavailable)
			}
		})
	})
}

func TestReap(t *testing.T) {
	const after = 5 * time.Second
	check := func(u string) registry.Check {
		c := hc(u, time.Second, 500*time.Millisecond, 1, 2)
		c.DeregisterAfter = registry.Duration(after)
		return c
	}
	t.Run("never-healthy", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := start(t, nil)
			k := h.register("web", "web-1", check(endpoint(1))).Key()
			sleep(after - time.Millisecond)
			if s := h.status(k); s != critical {
				t.Fatalf("status %s before deregister_after, want critical", s)
			}
			sleep(time.Millisecond)
			if s := h.status(k); s != "gone" {
				t.Fatalf("status %s at deregister_after, want deregistered", s)
			}
			if l := h.logs.lines("deregistered critical instance"); len(l) != 1 || !strings.Contains(l[0], "instance=web-1") {
				t.Errorf("logs = %q, want one line about web-1", l)
			}
			n := len(h.world.probes(endpoint(1)))
			sleep(10 * time.Second)
			if m := len(h.world.probes(endpoint(1))); m != n {
				t.Errorf("%d probes after deregistration, want none", m-n)
			}
		})
	})
	t.Run("dies-later", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := start(t, nil)
			h.world.set(endpoint(1), up)
			k := h.register("web", "web-1", check(endpoint(1))).Key()
			sleep(20 * time.Second)
			h.world.set(endpoint(1), down)
			sleep(3 * time.Second)
			reports := h.rec.of(k)
			last := reports[len(reports)-1]
			if last.h.Status != critical {
				t.Fatalf("not critical 3s after dying: %+v", last)
			}
			time.Sleep(time.Until(last.at.Add(after - time.Millisecond)))
			synctest.Wait()
			if s := h.status(k); s != critical {
				t.Fatalf("status %s before deregister_after, want critical", s)
			}
			sleep(time.Millisecond)
			if s := h.status(k); s != "gone" {
				t.Fatalf("status %s at deregister_after, want deregistered", s)
			}
		})
	})
	t.Run("recovery-cancels", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := start(t, nil)
			k := h.register("web", "web-1", check(endpoint(1))).Key()
			sleep(after - time.Second)
			h.world.set(endpoint(1), up)
			sleep(time.Minute)
			if s := h.status(k); s != passing {
				t.Fatalf("status %s, want passing", s)
			}
		})
	})
	t.Run("maintenance", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := start(t, nil)
			k := h.register("web", "web-1", check(endpoint(1))).Key()
			if _, err := h.reg.SetMaintenance(context.Background(), "web", "web-1", true, "upgrade"); err != nil {
				t.Fatal(err)
			}
			sleep(time.Minute)
			if s := h.status(k); s != critical {
				t.Fatalf("drained instance: %s, want still registered and critical", s)
			}
			if _, err := h.reg.SetMaintenance(context.Background(), "web", "web-1", false, ""); err != nil {
				t.Fatal(err)
			}
			sleep(after - time.Millisecond)
			if s := h.status(k); s != critical {
				t.Fatalf("status %s before deregister_after since maintenance ended", s)
			}
			sleep(time.Millisecond)
			if s := h.status(k); s != "gone" {
				t.Fatalf("status %s at deregister_after since maintenance ended, want deregistered", s)
			}
		})
	})
}

func TestReregister(t *testing.T) {
	t.Run("new-checks", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := start(t, nil)
			old, next := endpoint(1), endpoint(2)
			h.world.set(old, up)
			h.world.set(next, up)
			k := h.register("web", "web-1", hc(old, time.Second, 900*time.Millisecond, 1, 1)).Key()
			sleep(3 * time.Second)
			// Re-register while a probe of the old check hangs: its result
			// (critical) must be dropped.
			h.world.set(old, hanging)
			sleep(time.Second)
			probes := h.world.probes(old)
			time.Sleep(time.Until(probes[len(probes)-1].Add(100 * time.Millisecond)))
			in := h.register("web", "web-1", hc(next, time.Second, 900*time.Millisecond, 1, 1))
			at := time.Now()
			sleep(5 * time.Second)
			for _, p := range h.world.probes(old) {
				if p.After(at) {
					t.Errorf("old check probed %s after re-registration", p.Sub(at))
				}
			}
			got := h.world.probes(next)
			if len(got) == 0 || got[0].Sub(at) >= time.Second {
				t.Fatalf("new check probes %v, want the first within 1s of %s", got, at)
			}
			if s := h.status(k); s != passing {
				t.Errorf("status %s, want passing", s)
			}
			for _, r := range h.rec.of(k) {
				if r.at.After(at) && r.rev != in.Revision {
					t.Errorf("report %+v for the old revision after re-registration", r)
				}
			}
		})
	})
	t.Run("same-checks-keep-schedule", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := start(t, nil)
			u := endpoint(1)
			h.world.set(u, up)
			c := hc(u, time.Second, 500*time.Millisecond, 1, 3)
			k := h.register("web", "web-1", c).Key()
			sleep(3*time.Second + 300*time.Millisecond)
			h.register("web", "web-1", c)
			sleep(3 * time.Second)
			probes := h.world.probes(u)
			for i := 2; i < len(probes); i++ {
				if probes[i].Sub(probes[i-1]) != time.Second {
					t.Errorf("probe %d came %s after the previous, want 1s", i, probes[i].Sub(probes[i-1]))
				}
			}
			if n := len(h.rec.of(k)); n != 1 {
				t.Errorf("%d reports, want 1", n)
			}
		})
	})
	t.Run("deregister", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := start(t, nil)
			u := endpoint(1)
			h.world.set(u, up)
			h.register("web", "web-1", hc(u, time.Second, 500*time.Millisecond, 1, 3))
			sleep(2 * time.Second)
			if err := h.reg.Deregister(context.Background(), "web", "web-1"); err != nil {
				t.Fatal(err)
			}
			at := time.Now()
			sleep(5 * time.Second)
			for _, p := range h.world.probes(u) {
				if p.After(at) {
					t.Errorf("probed %s after deregistration", p.Sub(at))
				}
			}
		})
	})
}

func TestMultipleChecks(t *testing.T) {
	web, db := endpoint(1), "10.0.0.1:5432"
	tcp := registry.Check{Type: registry.CheckTCP, Address: db, Interval: registry.Duration(time.Second),
		Timeout: registry.Duration(500 * time.Millisecond), Rise: 1, Fall: 1}
	tests := []struct {
		name     string
		web, db  answer
		status   registry.Status
		output   string
		reported int
	}{
		{"both-pass", up, up, passing, "http check 1: HTTP 200 OK", 1},
		{"one-fails", up, down, critical, "tcp check 2: connection refused", 1},
		{"one-warns", busy, up, warning, "http check 1: HTTP 429 Too Many Requests", 1},
		{"worst-wins", busy, down, critical, "tcp check 2: connection refused", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := start(t, nil)
				h.world.set(web, tt.web)
				h.world.set(db, tt.db)
				k := h.register("web", "web-1", hc(web, time.Second, 500*time.Millisecond, 1, 1), tcp).Key()
				sleep(10 * time.Second)
				if got := h.health(k); got.Status != tt.status || got.Output != tt.output {
					t.Errorf("health = %s %q, want %s %q", got.Status, got.Output, tt.status, tt.output)
				}
				if n := len(h.rec.of(k)); n > tt.reported+1 {
					t.Errorf("%d reports for a steady state", n)
				}
			})
		})
	}
}

// TestReportsOnlyTransitions checks that the registry hears of status
// changes (and once of a new check's first output), and the log shows
// transitions only.
func TestReportsOnlyTransitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, nil)
		u := endpoint(1)
		h.world.set(u, down)
		k := h.register("web", "web-1", hc(u, time.Second, 500*time.Millisecond, 1, 3)).Key()
		sleep(time.Second)
		if got := h.health(k); got.Status != critical || got.Output != "connection refused" {
			t.Errorf("after the first failure: %+v, want the output of the check", got)
		}
		sleep(10 * time.Second)
		h.world.set(u, up)
		sleep(100 * time.Second)
		h.world.set(u, answer{status: critical, output: strings.Repeat("very long error ", 100)})
		sleep(100 * time.Second)

		reports := h.rec.of(k)
		var got []string
		for _, r := range reports {
			got = append(got, string(r.h.Status))
		}
		if want := "critical passing critical"; strings.Join(got, " ") != want {
			t.Errorf("reports %q, want %q", got, want)
		}
		if out := h.health(k).Output; len(out) > MaxOutput || !strings.HasPrefix(out, "very long error") {
			t.Errorf("output %q, want the error cut to %d bytes", out, MaxOutput)
		}
		if l := h.logs.lines(`msg="health changed"`); len(l) != 2 || !strings.Contains(l[0], "level=INFO") ||
			!strings.Contains(l[0], "service=web instance=web-1 status=passing") {
			t.Errorf("transition logs = %q, want 2 Info lines with service, instance, status", l)
		}
		if l := h.logs.lines("level=INFO"); len(l) != 3 { // started + 2 transitions
			t.Errorf("info logs = %q", l)
		}
	})
}

// TestRestart checks that a monitor starting on a registry carries on from
// the registry's health: after a server restart, from its initial health.
func TestRestart(t *testing.T) {
	t.Run("monitor", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := start(t, nil)
			u := endpoint(1)
			h.world.set(u, up)
			k := h.register("web", "web-1", hc(u, time.Second, 500*time.Millisecond, 1, 3)).Key()
			sleep(5 * time.Second)
			h.stop()
			h.run()
			sleep(5 * time.Second)
			if n := len(h.rec.of(k)); n != 1 {
				t.Errorf("%d reports, want only the first passing", n)
			}
			h.world.set(u, down)
			sleep(5 * time.Second)
			if s := h.status(k); s != critical {
				t.Errorf("status %s after the backend died, want critical", s)
			}
		})
	})
	t.Run("server", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			store := &memStore{}
			reg := registry.New(registry.Config{Store: store})
			u := endpoint(1)
			k := register(t, reg, "web", "web-1", hc(u, time.Second, 500*time.Millisecond, 1, 3)).Key()
			reg.SetHealth(k, 1, registry.Health{Status: passing, Output: "HTTP 200 OK", Since: time.Now()})

			reg = registry.New(registry.Config{Store: store})
			if err := reg.Load(context.Background()); err != nil {
				t.Fatal(err)
			}
			w := newWorld()
			w.set(u, up)
			m := New(Config{Source: reg, Reporter: reg, Checkers: map[registry.CheckType]Checker{registry.CheckHTTP: w}})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- m.Run(ctx) }()
			synctest.Wait()
			in, _ := reg.Snapshot().Instance("web", "web-1")
			if in.Health.Status != critical {
				t.Errorf("after restart: %s, want critical until checked", in.Health.Status)
			}
			sleep(time.Second)
			in, _ = reg.Snapshot().Instance("web", "web-1")
			if in.Health.Status != passing {
				t.Errorf("after the first probe: %s, want passing", in.Health.Status)
			}
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	})
}

// memStore is an in-memory registry.Store.
type memStore struct {
	instances map[registry.Key]*registry.Instance
}

func (s *memStore) Load(context.Context) (*registry.State, error) {
	st := &registry.State{}
	for _, in := range s.instances {
		st.Instances = append(st.Instances, in)
	}
	return st, nil
}

func (s *memStore) Commit(_ context.Context, changes []registry.Change) error {
	if s.instances == nil {
		s.instances = make(map[registry.Key]*registry.Instance)
	}
	for _, c := range changes {
		switch c.Op {
		case registry.OpPutInstance:
			s.instances[c.Instance.Key()] = c.Instance
		case registry.OpDeleteInstance:
			delete(s.instances, registry.Key{Service: c.Service, ID: c.ID})
		}
	}
	return nil
}

func TestRunErrors(t *testing.T) {
	reg := registry.New(registry.Config{})
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no-source", Config{Reporter: reg}, "source is required"},
		{"no-reporter", Config{Source: reg}, "reporter is required"},
		{"negative-cap", Config{Source: reg, Reporter: reg, MaxInFlight: -1}, "max in flight -1 must not be negative"},
		{"nil-checker", Config{Source: reg, Reporter: reg, Checkers: map[registry.CheckType]Checker{registry.CheckTCP: nil}}, `checker for "tcp" is nil`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := New(tt.cfg).Run(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run = %v, want an error about %q", err, tt.want)
			}
		})
	}
	t.Run("twice", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := start(t, nil)
			if err := h.mon.Run(context.Background()); err == nil {
				t.Error("a second Run started")
			}
		})
	})
	t.Run("stop-with-probes-in-flight", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := start(t, nil)
			u := endpoint(1)
			h.world.set(u, up)
			k := h.register("web", "web-1", hc(u, 10*time.Second, 5*time.Second, 1, 1)).Key()
			sleep(11 * time.Second)
			h.world.set(u, hanging)
			probes := h.world.probes(u)
			time.Sleep(time.Until(probes[len(probes)-1].Add(10*time.Second + time.Second)))
			synctest.Wait()
			h.stop() // a probe is hanging: Run must end it and return
			if s := h.status(k); s != passing {
				t.Errorf("status %s: a probe cut short by the stop was reported", s)
			}
		})
	})
}

// TestSync checks that the targets follow the registry through
// consecutive versions (reconciled from Touched) and through skipped ones
// (full rescans).
func TestSync(t *testing.T) {
	reg := registry.New(registry.Config{})
	m := New(Config{Source: reg, Reporter: reg})
	m.services = make(map[string]*watched)
	ctx := context.Background()
	c := hc(endpoint(1), 10*time.Second, time.Second, 1, 3)
	c2 := c
	c2.URL = endpoint(2)
	steps := []struct {
		name string
		do   func()
	}{
		{"one", func() { register(t, reg, "a", "a-1", c) }},
		{"burst", func() {
			register(t, reg, "a", "a-2", c)
			register(t, reg, "b", "b-1", c)
			register(t, reg, "b", "b-2")
			register(t, reg, "c", "c-1", c)
		}},
		{"new revision", func() { register(t, reg, "a", "a-1", c2) }},
		{"same revision", func() { register(t, reg, "a", "a-1", c2) }},
		{"removal", func() { reg.Deregister(ctx, "a", "a-2") }},
		{"burst removing a service", func() {
			reg.Deregister(ctx, "b", "b-1")
			reg.Deregister(ctx, "b", "b-2")
			register(t, reg, "d", "d-1", c)
		}},
		{"service gone", func() { reg.Deregister(ctx, "c", "c-1") }},
		{"checks added", func() { register(t, reg, "b", "b-2", c) }},
		{"burst of new revisions", func() {
			register(t, reg, "a", "a-1", c)
			register(t, reg, "b", "b-2", c2)
		}},
	}
	for _, st := range steps {
		st.do()
		m.mu.Lock()
		m.sync(time.Now())
		want := map[registry.Key]uint64{}
		for _, svc := range reg.Snapshot().Services() {
			for _, in := range svc.Instances() {
				if len(in.Checks) > 0 {
					want[in.Key()] = in.Revision
				}
			}
		}
		got := map[registry.Key]uint64{}
		for _, w := range m.services {
			for _, tg := range w.targets {
				got[tg.key] = tg.rev
			}
		}
		queued := 0
		for _, e := range m.queue {
			if e.c.t.gone {
				t.Errorf("%s: an event of a dropped target is queued", st.name)
			}
			queued++
		}
		m.mu.Unlock()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: targets %v, want %v", st.name, got, want)
		}
		if queued != len(want) {
			t.Errorf("%s: %d events queued for %d targets with one check", st.name, queued, len(want))
		}
	}
}

// TestDispatch checks that probes due together run together: an idle
// worker takes one and new workers the others.
func TestDispatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		reg := registry.New(registry.Config{})
		m := New(Config{Source: reg, Reporter: reg, Checkers: map[registry.CheckType]Checker{registry.CheckHTTP: w}})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		checks := make([]*check, 4)
		for i := range checks {
			in := register(t, reg, "web", fmt.Sprintf("web-%d", i), hc(endpoint(i), time.Second, 500*time.Millisecond, 1, 3))
			checks[i] = newTarget(in, time.Now()).checks[0]
		}
		m.mu.Lock()
		m.running, m.services = true, make(map[string]*watched)
		m.dispatch(ctx, job{checks[0], time.Now()}) // answers at once
		m.mu.Unlock()
		synctest.Wait()
		m.mu.Lock()
		if m.workers != 1 || m.idle != 1 {
			t.Fatalf("%d workers, %d idle; want one idle worker", m.workers, m.idle)
		}
		for _, c := range checks[1:] {
			w.set(c.spec.URL, hanging)
			m.dispatch(ctx, job{c, time.Now()})
		}
		m.mu.Unlock()
		synctest.Wait()
		w.mu.Lock()
		in := w.inFlight
		w.mu.Unlock()
		if in != 3 {
			t.Errorf("%d probes running, want the 3 dispatched together", in)
		}
		cancel()
		m.mu.Lock()
		m.running = false
		m.work.Broadcast()
		m.mu.Unlock()
		m.wg.Wait()
	})
}
