package health

import (
	"testing"
	"time"

	"disco/registry"
)

func TestSchedule(t *testing.T) {
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return base.Add(d) }
	ms := time.Millisecond
	tests := []struct {
		name           string
		interval, ph   time.Duration
		appear         time.Duration
		wantFirst      time.Duration
		due, now, want time.Duration // nextProbe(due, now)
	}{
		{"short-interval-first-on-slot", time.Second, 300 * ms, 100 * ms, 300 * ms, 300 * ms, 300 * ms, 1300 * ms},
		{"slot-just-passed", time.Second, 300 * ms, 301 * ms, 1300 * ms, 1300 * ms, 1301 * ms, 2300 * ms},
		{"appears-on-slot", time.Second, 300 * ms, 300 * ms, 300 * ms, 300 * ms, 300 * ms, 1300 * ms},
		{"long-interval-slot-soon", 10 * time.Second, 4500 * ms, 4000 * ms, 4500 * ms, 4500 * ms, 4500 * ms, 14500 * ms},
		{"long-interval-slot-far", 10 * time.Second, 4500 * ms, 0, 500 * ms, 500 * ms, 500 * ms, 4500 * ms},
		{"late-by-less-than-an-interval", time.Second, 0, 0, 0, 2 * time.Second, 2900 * ms, 3 * time.Second},
		{"late-by-more-skips-missed-slots", time.Second, 0, 0, 0, 2 * time.Second, 5500 * ms, 6 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := firstProbe(at(tt.appear), tt.interval, tt.ph); !got.Equal(at(tt.wantFirst)) {
				t.Errorf("firstProbe = +%s, want +%s", got.Sub(base), tt.wantFirst)
			}
			if got := nextProbe(at(tt.due), at(tt.now), tt.interval, tt.ph); !got.Equal(at(tt.want)) {
				t.Errorf("nextProbe = +%s, want +%s", got.Sub(base), tt.want)
			}
		})
	}
}

func TestPhase(t *testing.T) {
	k := registry.Key{Service: "web", ID: "web-1"}
	for _, iv := range []time.Duration{100 * time.Millisecond, time.Second, time.Hour} {
		seen := map[time.Duration]bool{}
		for n := range 8 {
			p := phase(k, n, iv)
			if p < 0 || p >= iv {
				t.Errorf("phase(%d, %s) = %s, out of [0, %s)", n, iv, p, iv)
			}
			if p != phase(k, n, iv) {
				t.Errorf("phase(%d, %s) not deterministic", n, iv)
			}
			seen[p] = true
		}
		if len(seen) < 7 {
			t.Errorf("interval %s: phases of 8 checks of one instance take %d values", iv, len(seen))
		}
	}
	if phase(k, 0, time.Second) == phase(registry.Key{Service: "web", ID: "web-2"}, 0, time.Second) {
		t.Error("two instances share a phase")
	}
}
