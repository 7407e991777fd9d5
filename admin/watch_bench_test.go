//go:build unix

package admin_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"disco/admin"
	"disco/registry"
)

// BenchmarkWake parks 10,000 blocking queries on the API's handler (no
// network: the cost of waiting and waking itself) and measures one change
// that wakes them: all of them on the changed service, or one in 1,000
// services. It reports the heap per parked waiter, the time until every
// woken waiter has its answer, and the CPU time of the wake-up.
func BenchmarkWake(b *testing.B) {
	for _, services := range []int{1, 1000} {
		b.Run(fmt.Sprintf("waiters=10000/services=%d", services), func(b *testing.B) {
			benchWake(b, 10000, services)
		})
	}
}

func benchWake(b *testing.B, waiters, services int) {
	ctx := context.Background()
	reg := registry.New(registry.Config{})
	h := admin.New(admin.Config{Registry: reg}).Handler()
	register := func(svc int, id string) {
		in, err := registry.NewInstance(fmt.Sprintf("w%d", svc), id, registry.Registration{Address: "10.9.0.1", Port: 80})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := reg.Register(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	for i := range services {
		register(i, "a")
	}
	var heapPer, cpuPer float64
	var wakeAll time.Duration
	round := 0
	for b.Loop() {
		round++
		snap := reg.Snapshot()
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		var parked, done, wake sync.WaitGroup
		var woken atomic.Int64
		want := (waiters + services - 1) / services
		wake.Add(want)
		for i := range waiters {
			svc := i % services
			path := fmt.Sprintf("/v1/services/w%d?index=%d&wait=5m", svc, snap.ServiceIndex(fmt.Sprintf("w%d", svc)))
			parked.Add(1)
			done.Add(1)
			go func() {
				defer done.Done()
				r := httptest.NewRequest("GET", path, nil)
				w := httptest.NewRecorder()
				parked.Done()
				h.ServeHTTP(w, r)
				if w.Code == 200 && svc == 0 {
					woken.Add(1)
					wake.Done()
				}
			}()
		}
		parked.Wait()
		time.Sleep(200 * time.Millisecond) // let them reach their wait
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		heapPer = float64(ms1.HeapInuse+ms1.StackInuse-ms0.HeapInuse-ms0.StackInuse) / float64(waiters)
		cpu0 := cpuTime()
		t0 := time.Now()
		register(0, "b"+strconv.Itoa(round))
		wake.Wait()
		wakeAll = time.Since(t0)
		if n := woken.Load(); n != int64(want) {
			b.Fatalf("%d woken, want %d", n, want)
		}
		cpuPer = float64(cpuTime()-cpu0) / float64(want)
		// Let the others go: a change of every service wakes them.
		for i := 1; i < services; i++ {
			register(i, "b"+strconv.Itoa(round))
		}
		done.Wait()
	}
	b.ReportMetric(heapPer, "heap-B/waiter")
	b.ReportMetric(float64(wakeAll.Microseconds())/1000, "wake-all-ms")
	b.ReportMetric(cpuPer, "cpu-ns/woken")
}

// cpuTime is the CPU time the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
