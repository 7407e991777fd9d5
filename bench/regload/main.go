// Command regload registers instances with a disco server through its admin
// API, for benchmarks: as fast as it can with N concurrent clients, or at a
// steady rate in the background while DNS is measured.
//
//	regload -admin http://127.0.0.1:8054 -token T -file instances.txt -c 64
//	regload -admin ... -token T -count 100000 -c 64          # generated names
//	regload -admin ... -token T -rate 1000 -duration 30s -service churn
//
// Each client keeps one HTTP/1.1 connection and writes its requests on it
// directly, without net/http's transport and its per-connection goroutines:
// on a machine where the load generator shares a core with dnsperf, the
// generator's own cost would otherwise show up as a drop in DNS throughput.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type job struct{ service, id, addr, port string }

func main() {
	admin := flag.String("admin", "http://127.0.0.1:8054", "admin API base URL (http only)")
	token := flag.String("token", os.Getenv("DISCO_TOKEN"), "bearer token")
	file := flag.String("file", "", `"service id address port" lines to register`)
	count := flag.Int("count", 0, "register this many generated instances (bulk-K services of 10)")
	clients := flag.Int("c", 64, "concurrent clients")
	rate := flag.Int("rate", 0, "steady writes per second (with -duration) instead of as fast as possible")
	duration := flag.Duration("duration", 0, "how long to keep a steady rate")
	service := flag.String("service", "churn", "service of the steady-rate writes")
	flag.Parse()

	u, err := url.Parse(*admin)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		fmt.Fprintf(os.Stderr, "regload: -admin %q: want http://host:port\n", *admin)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	var done, failed atomic.Int64
	record := func(err error) {
		if err == nil {
			done.Add(1)
			return
		}
		if failed.Add(1) <= 3 {
			fmt.Fprintln(os.Stderr, "regload:", err)
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	if *rate > 0 {
		// Client k sends writes k, k+c, k+2c... each at its own time on a
		// fixed schedule, so the rate holds without a central ticker.
		end := start.Add(*duration)
		interval := time.Second / time.Duration(*rate)
		for k := range *clients {
			wg.Go(func() {
				c := &client{addr: u.Host, token: *token}
				defer c.close()
				for i := k; ; i += *clients {
					at := start.Add(time.Duration(i) * interval)
					if at.After(end) || ctx.Err() != nil {
						return
					}
					if d := time.Until(at); d > 0 {
						time.Sleep(d)
					}
					record(c.put(job{*service, fmt.Sprintf("c-%d", i%500), fmt.Sprintf("10.200.%d.%d", i%500/250, i%250+1), "80"}))
				}
			})
		}
	} else {
		jobs := make(chan job, 1024)
		for range *clients {
			wg.Go(func() {
				c := &client{addr: u.Host, token: *token}
				defer c.close()
				for j := range jobs {
					record(c.put(j))
				}
			})
		}
		if err := feed(ctx, jobs, *file, *count); err != nil {
			fmt.Fprintln(os.Stderr, "regload:", err)
			os.Exit(1)
		}
	}
	wg.Wait()
	took := time.Since(start)
	fmt.Printf("registered=%d failed=%d seconds=%.2f per_second=%.0f\n", done.Load(), failed.Load(), took.Seconds(), float64(done.Load())/took.Seconds())
	if failed.Load() > 0 {
		os.Exit(1)
	}
}

// feed sends the jobs of -file or -count, then closes jobs.
func feed(ctx context.Context, jobs chan<- job, file string, count int) error {
	defer close(jobs)
	send := func(j job) error {
		select {
		case jobs <- j:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fs := strings.Fields(sc.Text()); len(fs) == 4 {
				if err := send(job{fs[0], fs[1], fs[2], fs[3]}); err != nil {
					return err
				}
			}
		}
		return sc.Err()
	}
	for i := range count {
		if err := send(job{fmt.Sprintf("bulk-%d", i/10), fmt.Sprintf("b-%d", i), fmt.Sprintf("10.%d.%d.%d", 100+i>>16&63, i>>8&255, i&255), "8080"}); err != nil {
			return err
		}
	}
	return nil
}

// client is one keep-alive HTTP/1.1 connection to the admin API.
type client struct {
	addr, token string
	conn        net.Conn
	br          *bufio.Reader
	buf         []byte
}

// put registers j, redialing once when a kept-alive connection was closed.
func (c *client) put(j job) error {
	err := c.try(j)
	if err != nil && c.conn == nil && errors.Is(err, errStale) {
		err = c.try(j)
	}
	if err != nil {
		return fmt.Errorf("%s/%s: %w", j.service, j.id, err)
	}
	return nil
}

var errStale = errors.New("connection closed by server")

func (c *client) try(j job) error {
	reused := c.conn != nil
	if !reused {
		conn, err := net.DialTimeout("tcp", c.addr, 10*time.Second)
		if err != nil {
			return err
		}
		c.conn, c.br = conn, bufio.NewReaderSize(conn, 4096)
	}
	body := fmt.Sprintf(`{"address":%q,"port":%s}`, j.addr, j.port)
	c.buf = fmt.Appendf(c.buf[:0], "PUT /v1/services/%s/instances/%s HTTP/1.1\r\nHost: %s\r\n", j.service, j.id, c.addr)
	if c.token != "" {
		c.buf = fmt.Appendf(c.buf, "Authorization: Bearer %s\r\n", c.token)
	}
	c.buf = fmt.Appendf(c.buf, "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.conn.Write(c.buf); err != nil {
		c.close()
		if reused {
			return errStale
		}
		return err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		if reused && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
			return errStale
		}
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		c.close()
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return err
}

func (c *client) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.br = nil, nil
	}
}
