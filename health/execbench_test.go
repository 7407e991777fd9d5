package health

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"disco/registry"
)

// BenchmarkExec runs exec checks back to back, 8 at a time, and reports
// how many a second complete and the CPU each costs, the command's own
// included: a small binary (/bin/true) and a shell script.
//
//	go test -run '^$' -bench Exec -benchtime 3s ./health
func BenchmarkExec(b *testing.B) {
	dir := b.TempDir()
	sh := filepath.Join(dir, "check.sh")
	if err := os.WriteFile(sh, []byte("#!/bin/sh\necho OK - all good\nexit 0\n"), 0o755); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name    string
		command []string
	}{
		{"true", []string{"/bin/true"}},
		{"script", []string{sh}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const parallel = 8
			e := testExecChecker(DefaultMaxExecs)
			c := registry.Check{Type: registry.CheckExec, Command: bc.command,
				Interval: registry.Duration(10 * time.Second), Timeout: registry.Duration(5 * time.Second)}
			cpu0, start := cpuTimeWithChildren(), time.Now()
			b.ResetTimer()
			var wg sync.WaitGroup
			var mu sync.Mutex
			next, failed := 0, 0
			for range parallel {
				wg.Go(func() {
					for {
						mu.Lock()
						if next == b.N {
							mu.Unlock()
							return
						}
						next++
						mu.Unlock()
						if r := e.Check(context.Background(), c); r.Status != registry.StatusPassing {
							mu.Lock()
							failed++
							mu.Unlock()
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			elapsed, cpu := time.Since(start), cpuTimeWithChildren()-cpu0
			if failed > 0 {
				b.Fatalf("%d of %d probes failed", failed, b.N)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "execs/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/exec")
		})
	}
}

// cpuTimeWithChildren returns the user and system CPU time of this
// process and of its children that ended and were waited for.
func cpuTimeWithChildren() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return cpuTime()
	}
	return cpuTime() + time.Duration(ru.Utime.Nano()+ru.Stime.Nano())
}
