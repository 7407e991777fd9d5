package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"disco/tsig"
)

const benchToken = "bench-token"

// benchServer is "disco serve" run in-process on loopback ports, so that a
// benchmark can set what has no flag (CommitBatch). The end-to-end tests,
// in package e2e, run the built binary instead.
type benchServer struct {
	dnsAddr string
	admin   string // http://host:port
}

// startBenchServer runs the server with a fresh data directory and the
// flags' defaults, adjusted by mod; it stops when the benchmark ends.
func startBenchServer(b *testing.B, mod func(*serveConfig)) *benchServer {
	b.Helper()
	ns, err := nsAddrs("127.0.0.1", "")
	if err != nil {
		b.Fatal(err)
	}
	cfg := serveConfig{
		DNSAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Domain: "disco.internal.",
		DataDir: b.TempDir(), AdminToken: benchToken, DNSTTL: 5, NegativeTTL: 5,
		NSAddrs: ns, LogFormat: "text", TCPIdleTimeout: 10 * time.Second,
		MaxTCPConns: 100, ShutdownTimeout: 10 * time.Second, CommitDelay: DefaultCommitDelay,
	}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	up := make(chan *benchServer, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- runServer(ctx, cfg, newLogger(io.Discard, slog.LevelInfo, "text"), func(d, a net.Addr) {
			up <- &benchServer{dnsAddr: d.String(), admin: "http://" + a.String()}
		})
	}()
	select {
	case s := <-up:
		b.Cleanup(func() {
			cancel()
			if err := <-errc; err != nil {
				b.Errorf("server stopped with %v", err)
			}
		})
		return s
	case err := <-errc:
		cancel()
		b.Fatalf("server did not start: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		b.Fatal("server did not start within 20s")
	}
	return nil
}

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
			s := startBenchServer(b, func(c *serveConfig) { c.CommitBatch, c.CommitDelay = tc.batch, tc.delay })
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
						req.Header.Set("Authorization", "Bearer "+benchToken)
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

// BenchmarkRegisterUpdate measures durable registrations per second
// through signed DNS UPDATE (RFC 2136, TSIG hmac-sha256, over UDP) with 64
// concurrent clients, the same load as BenchmarkRegisterHTTP: one instance
// per message, and ten per message. Every UPDATE is fsync'd before its
// NOERROR.
//
//	go test -run '^$' -bench 'Register(HTTP|Update)' -benchtime 20000x ./cmd/disco
func BenchmarkRegisterUpdate(b *testing.B) {
	const secret = "YmVuY2htYXJrLXVwZGF0ZS1rZXktMDEyMzQ1Njc4OWFiY2Q="
	key, err := tsig.NewKey("bench", "hmac-sha256", secret)
	if err != nil {
		b.Fatal(err)
	}
	keys, err := tsig.NewKeyring(key)
	if err != nil {
		b.Fatal(err)
	}
	for _, perMsg := range []int{1, 10} {
		b.Run(fmt.Sprintf("instances-per-message=%d", perMsg), func(b *testing.B) {
			s := startBenchServer(b, func(c *serveConfig) {
				c.Transfer.Keys = keys
				c.Update.Allow = []string{"bench."}
			})
			const clients = 64
			var next, failed atomic.Int64
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cl := &dns.Client{Net: "udp", Timeout: 10 * time.Second, TsigSecret: map[string]string{"bench.": secret}}
					for {
						first := next.Add(int64(perMsg)) - int64(perMsg)
						if first >= int64(b.N) {
							return
						}
						m := new(dns.Msg)
						m.SetUpdate("disco.internal.")
						for i := first; i < min(first+int64(perMsg), int64(b.N)); i++ {
							// 100 services of growing size, as in BenchmarkRegisterHTTP.
							name := fmt.Sprintf("i-%d-%d.svc-%d.instance.disco.internal.", c, i, i%100)
							m.Insert([]dns.RR{
								&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
									A: net.IPv4(10, byte(i>>16), byte(i>>8), byte(i|1))},
								&dns.SRV{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 60},
									Priority: 1, Weight: 1, Port: 8080, Target: name},
							})
						}
						m.SetTsig("bench.", dns.HmacSHA256, 300, time.Now().Unix())
						r, _, err := cl.Exchange(m, s.dnsAddr)
						if err != nil || r.Rcode != dns.RcodeSuccess {
							if failed.Add(1) == 1 {
								b.Logf("first failed UPDATE: %v %v", err, r)
							}
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if failed.Load() > 0 {
				b.Fatalf("%d UPDATEs failed", failed.Load())
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "registrations/s")
		})
	}
}
