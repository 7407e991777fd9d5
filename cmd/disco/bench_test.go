package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRegisterHTTP measures durable registrations per second through
// the admin API with 64 concurrent clients, each write fsync'd before its
// 2xx: with group commit, and with one commit per write for comparison.
//
//	go test -run '^$' -bench RegisterHTTP -benchtime 20000x ./cmd/disco
func BenchmarkRegisterHTTP(b *testing.B) {
	for _, tc := range []struct {
		name  string
		batch int
		delay time.Duration
	}{{"group-commit", 0, DefaultCommitDelay}, {"group-commit-no-delay", 0, 0}, {"commit-per-write", 1, 0}} {
		b.Run(tc.name, func(b *testing.B) {
			s := startServer(&testing.T{}, func(c *serveConfig) {
				c.CommitBatch, c.CommitDelay, c.DataDir = tc.batch, tc.delay, b.TempDir()
			})
			if s == nil {
				b.Fatal("server did not start")
			}
			defer s.stop()
			const clients = 64
			tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
			hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			var next, failed atomic.Int64
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						// 100 services of growing size, as a fleet registers.
						url := fmt.Sprintf("%s/v1/services/svc-%d/instances/i-%d-%d", s.admin, i%100, c, i)
						body := fmt.Sprintf(`{"address":"10.%d.%d.%d","port":8080,"tags":["v1"]}`, i>>16&255, i>>8&255, i&255|1)
						req, _ := http.NewRequest("PUT", url, strings.NewReader(body))
						req.Header.Set("Authorization", "Bearer "+testToken)
						req.Header.Set("Content-Type", "application/json")
						resp, err := hc.Do(req)
						if err != nil || resp.StatusCode != 200 {
							failed.Add(1)
						}
						if resp != nil {
							io.Copy(io.Discard, resp.Body) // lets the connection be reused
							resp.Body.Close()
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if failed.Load() > 0 {
				b.Fatalf("%d registrations failed", failed.Load())
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "registrations/s")
		})
	}
}
