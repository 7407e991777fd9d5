// Command watchers measures what blocking queries cost a disco server: it
// parks many waiters (each on its own keep-alive connection, as separate
// clients would) on GET /v1/services/{service}?index=N&wait=5m, reads the
// server's memory, goroutines and CPU from its /metrics before and after,
// then makes one change and measures how long each woken waiter took to get
// its answer and how much CPU the wake-up cost.
//
//	go run ./bench/watchers -admin http://127.0.0.1:8054 -token T -waiters 10000 -services 1
//
// With -services 1 every waiter waits on the service that changes (a wake-up
// storm); with more, the waiters spread over them and only those of the
// changed service must wake.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	admin := flag.String("admin", "http://127.0.0.1:8054", "admin API URL (http only)")
	token := flag.String("token", "", "admin token")
	waiters := flag.Int("waiters", 10000, "blocking queries to park")
	services := flag.Int("services", 1, "services the waiters spread over (the first one changes)")
	settle := flag.Duration("settle", 3*time.Second, "how long to watch the parked server before the change")
	flag.Parse()
	if err := run(*admin, *token, *waiters, *services, *settle); err != nil {
		log.Fatal(err)
	}
}

type client struct {
	base, token, host string
	hc                *http.Client
}

func (c *client) do(method, path, body string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode/100 != 2 {
		err = fmt.Errorf("%s %s: %s %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	return resp, b, err
}

// metrics reads a few of the server's Prometheus metrics.
func (c *client) metrics() (map[string]float64, error) {
	_, b, err := c.do("GET", "/metrics", "")
	if err != nil {
		return nil, err
	}
	want := []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes",
		"process_resident_memory_bytes", "process_cpu_seconds_total"}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if ok && slices.Contains(want, name) {
			out[name], _ = strconv.ParseFloat(strings.TrimSpace(val), 64)
		}
	}
	return out, nil
}

func run(admin, token string, waiters, services int, settle time.Duration) error {
	u, err := url.Parse(admin)
	if err != nil || u.Scheme != "http" {
		return fmt.Errorf("-admin %q: want an http:// URL", admin)
	}
	c := &client{base: strings.TrimRight(admin, "/"), token: token, host: u.Host,
		hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}

	// One instance per service, and each service's index.
	index := make([]uint64, services)
	for i := range services {
		if _, _, err := c.do("PUT", fmt.Sprintf("/v1/services/w%d/instances/a", i), `{"address":"10.9.0.1","port":80}`); err != nil {
			return err
		}
	}
	for i := range services {
		resp, _, err := c.do("GET", fmt.Sprintf("/v1/services/w%d", i), "")
		if err != nil {
			return err
		}
		index[i], _ = strconv.ParseUint(resp.Header.Get("X-Disco-Index"), 10, 64)
	}
	time.Sleep(time.Second)
	before, err := c.metrics()
	if err != nil {
		return err
	}

	// Park the waiters: one connection each, the request written, the
	// answer read by one goroutine per connection that notes its arrival.
	conns := make([]net.Conn, waiters)
	arrived := make([]time.Time, waiters)
	var answered atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	dialSem := make(chan struct{}, 64)
	start := time.Now()
	for i := range waiters {
		dialSem <- struct{}{}
		svc := i % services
		conn, err := net.Dial("tcp", c.host)
		<-dialSem
		if err != nil {
			return fmt.Errorf("waiter %d: %w", i, err)
		}
		conns[i] = conn
		req := fmt.Sprintf("GET /v1/services/w%d?index=%d&wait=5m HTTP/1.1\r\nHost: %s\r\n", svc, index[svc], c.host)
		if token != "" {
			req += "Authorization: Bearer " + token + "\r\n"
		}
		if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
			return fmt.Errorf("waiter %d: %w", i, err)
		}
		wg.Go(func() {
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
				}
				return
			}
			arrived[i] = time.Now()
			answered.Add(1)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	parkedIn := time.Since(start)
	time.Sleep(settle / 3)
	if n := answered.Load(); n > 0 {
		return fmt.Errorf("%d waiters answered before any change", n)
	}
	parked, err := c.metrics()
	if err != nil {
		return err
	}
	time.Sleep(settle)
	idle, err := c.metrics()
	if err != nil {
		return err
	}

	// One change, to the first service.
	woken := waiters / services
	if waiters%services > 0 {
		woken++
	}
	cpu0, err := c.metrics()
	if err != nil {
		return err
	}
	t0 := time.Now()
	if _, _, err := c.do("PUT", "/v1/services/w0/instances/b", `{"address":"10.9.0.2","port":80}`); err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for answered.Load() < int64(woken) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	allIn := time.Since(t0)
	time.Sleep(500 * time.Millisecond) // any waiter woken by mistake shows now
	after, err := c.metrics()
	if err != nil {
		return err
	}
	extra := answered.Load() - int64(woken)

	var lat []time.Duration
	for i := 0; i < waiters; i += services {
		if !arrived[i].IsZero() {
			lat = append(lat, arrived[i].Sub(t0))
		}
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	for _, conn := range conns {
		conn.Close()
	}
	wg.Wait()
	if len(failures) > 0 {
		return fmt.Errorf("%d waiters failed, the first: %w", len(failures), failures[0])
	}

	mb := func(v float64) string { return fmt.Sprintf("%.1f MB", v/1e6) }
	per := func(k string) string { return fmt.Sprintf("%.1f KB", (parked[k]-before[k])/float64(waiters)/1e3) }
	report := map[string]any{
		"waiters": waiters, "services": services, "woken": woken, "woken_by_mistake": extra,
		"park_seconds":                  parkedIn.Seconds(),
		"goroutines_before_after":       fmt.Sprintf("%.0f -> %.0f", before["go_goroutines"], parked["go_goroutines"]),
		"rss_before_parked":             mb(before["process_resident_memory_bytes"]) + " -> " + mb(parked["process_resident_memory_bytes"]),
		"rss_per_waiter":                per("process_resident_memory_bytes"),
		"heap_per_waiter":               per("go_memstats_heap_inuse_bytes"),
		"stack_per_waiter":              per("go_memstats_stack_inuse_bytes"),
		"idle_cpu_seconds_per_second":   (idle["process_cpu_seconds_total"] - parked["process_cpu_seconds_total"]) / settle.Seconds(),
		"wake_cpu_seconds":              after["process_cpu_seconds_total"] - cpu0["process_cpu_seconds_total"],
		"wake_latency_p50_ms":           ms(pct(0.5)),
		"wake_latency_p99_ms":           ms(pct(0.99)),
		"wake_latency_max_ms":           ms(pct(1)),
		"all_woken_ms":                  ms(allIn),
		"rss_after_wake":                mb(after["process_resident_memory_bytes"]),
		"heap_before_parked_after_wake": mb(before["go_memstats_heap_inuse_bytes"]) + " / " + mb(parked["go_memstats_heap_inuse_bytes"]) + " / " + mb(after["go_memstats_heap_inuse_bytes"]),
	}
	b, _ := json.MarshalIndent(report, "", "  ")
	fmt.Println(string(b))
	if extra != 0 {
		return fmt.Errorf("%d waiters of unchanged services answered", extra)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
