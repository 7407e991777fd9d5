// Command regload registers instances with a disco server through its admin
// API, for benchmarks: as fast as it can with N concurrent clients, or at a
// steady rate in the background while DNS is measured.
//
//	regload -admin http://127.0.0.1:8054 -token T -file instances.txt -c 64
//	regload -admin ... -token T -count 100000 -c 64          # generated names
//	regload -admin ... -token T -rate 1000 -duration 30s -service churn
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type job struct{ service, id, addr, port string }

func main() {
	admin := flag.String("admin", "http://127.0.0.1:8054", "admin API base URL")
	token := flag.String("token", os.Getenv("DISCO_TOKEN"), "bearer token")
	file := flag.String("file", "", `"service id address port" lines to register`)
	count := flag.Int("count", 0, "register this many generated instances (bulk-K services of 10)")
	clients := flag.Int("c", 64, "concurrent clients")
	rate := flag.Int("rate", 0, "steady writes per second (with -duration) instead of as fast as possible")
	duration := flag.Duration("duration", 0, "how long to keep a steady rate")
	service := flag.String("service", "churn", "service of the steady-rate writes")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	jobs := make(chan job, 1024)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *clients, MaxConnsPerHost: *clients}}
	var done, failed atomic.Int64
	var wg sync.WaitGroup
	for range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := put(ctx, hc, *admin, *token, j); err != nil {
					if failed.Add(1) <= 3 {
						fmt.Fprintln(os.Stderr, "regload:", err)
					}
					continue
				}
				done.Add(1)
			}
		}()
	}
	start := time.Now()
	switch {
	case *rate > 0:
		tick := time.NewTicker(time.Second / time.Duration(*rate))
		end := time.After(*duration)
	loop:
		for i := 0; ; i++ {
			select {
			case <-tick.C:
				jobs <- job{*service, fmt.Sprintf("c-%d", i%500), fmt.Sprintf("10.200.%d.%d", i%500/250, i%250+1), "80"}
			case <-end:
				break loop
			case <-ctx.Done():
				break loop
			}
		}
	case *file != "":
		f, err := os.Open(*file)
		if err != nil {
			fmt.Fprintln(os.Stderr, "regload:", err)
			os.Exit(1)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fs := strings.Fields(sc.Text()); len(fs) == 4 {
				jobs <- job{fs[0], fs[1], fs[2], fs[3]}
			}
		}
		f.Close()
	default:
		for i := range *count {
			jobs <- job{fmt.Sprintf("bulk-%d", i/10), fmt.Sprintf("b-%d", i), fmt.Sprintf("10.%d.%d.%d", 100+i>>16&63, i>>8&255, i&255), "8080"}
		}
	}
	close(jobs)
	wg.Wait()
	took := time.Since(start)
	fmt.Printf("registered=%d failed=%d seconds=%.2f per_second=%.0f\n", done.Load(), failed.Load(), took.Seconds(), float64(done.Load())/took.Seconds())
	if failed.Load() > 0 {
		os.Exit(1)
	}
}

func put(ctx context.Context, hc *http.Client, admin, token string, j job) error {
	body := fmt.Sprintf(`{"address":%q,"port":%s}`, j.addr, j.port)
	req, err := http.NewRequestWithContext(ctx, "PUT", admin+"/v1/services/"+j.service+"/instances/"+j.id, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body) // lets the connection be reused
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s/%s: HTTP %d", j.service, j.id, resp.StatusCode)
	}
	return nil
}
