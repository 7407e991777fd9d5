package health

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"disco/registry"
)

// benchServersEnv makes the test binary serve HTTP health endpoints instead
// of running tests: the scale benchmark starts it as a child process, so
// that the benchmark's own CPU figures cover the monitor only.
const benchServersEnv = "DISCO_HEALTH_BENCH_SERVERS"

func TestMain(m *testing.M) {
	if kind, count, ok := strings.Cut(os.Getenv(benchServersEnv), ":"); ok {
		n, err := strconv.Atoi(count)
		switch {
		case err != nil || n < 1:
		case kind == "grpc":
			serveGRPCEndpoints(n)
			return
		default:
			serveHealthEndpoints(n)
			return
		}
	}
	os.Exit(m.Run())
}

// serveHealthEndpoints answers every HTTP/1.1 request with 200 on n
// loopback listeners, each on its own address (127.0.0.1, 127.0.0.2, ...),
// prints their addresses, and exits when stdin closes. It is a bare
// responder rather than net/http's server so that the endpoints, which in
// production run elsewhere, take little of the machine's CPU.
func serveHealthEndpoints(n int) {
	for i := range n {
		// One address each, so that the connections of 10,000 checks do
		// not all share one address pair (and its ephemeral ports).
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.%d.%d:0", i/250, i%250+1))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go answer200(c)
			}
		}()
		fmt.Println(l.Addr())
	}
	fmt.Println()
	io.Copy(io.Discard, os.Stdin)
}

// answer200 answers each request on c (headers only: health probes are
// GETs) with a fixed 200 response, until the client hangs up.
func answer200(c net.Conn) {
	defer c.Close()
	const resp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"
	br := bufio.NewReaderSize(c, 1024)
	for {
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 { // the blank line ending the headers
				break
			}
		}
		if _, err := io.WriteString(c, resp); err != nil {
			return
		}
	}
}

// BenchmarkScale runs 10,000 instances with 1s HTTP checks against
// loopback HTTP endpoints (64 listeners in a child process) for 10s after a 3s warm-up, and
// reports how late probes start against their schedule and the CPU the
// monitor (and registry) used. One iteration takes about 13s; run it with
//
//	go test -run '^$' -bench Scale -benchtime 1x ./health
func BenchmarkScale(b *testing.B) {
	runScale(b, 64, "http", func(i int, addr string) registry.Check {
		return registry.Check{Type: registry.CheckHTTP, URL: fmt.Sprintf("http://%s/health/%d", addr, i)}
	}, nil)
}

// BenchmarkGRPCScale is BenchmarkScale with grpc checks, each instance's
// against a gRPC health server of its own address (so 10,000 connections,
// one per check, as with 10,000 real servers), all served by one child
// process, after a 10s warm-up. One iteration takes about 25s.
func BenchmarkGRPCScale(b *testing.B) {
	var g *GRPCChecker
	runScale(b, 0, "grpc", func(i int, addr string) registry.Check {
		return registry.Check{Type: registry.CheckGRPC, Address: addr}
	}, func(cfg *Config) {
		g = NewGRPCChecker()
		cfg.Checkers = map[registry.CheckType]Checker{registry.CheckGRPC: g}
	})
	if g != nil {
		b.Logf("gRPC connections held at the end: %d", g.Conns())
	}
}

// runScale runs the scale benchmark with checks made by check for
// instance i against endpoint addr. servers is how many endpoints to
// start; 0 means one per instance. tweak adjusts the monitor's Config.
func runScale(b *testing.B, servers int, kind string, check func(i int, addr string) registry.Check, tweak func(*Config)) {
	b.ReportAllocs()
	instances := 10000
	if n, err := strconv.Atoi(os.Getenv("DISCO_HEALTH_BENCH_INSTANCES")); err == nil && n > 0 {
		instances = n
	}
	if servers == 0 {
		servers = instances
	}
	// The warm-up lets every instance be probed once; gRPC checks get
	// longer, for the 10,000 connections to open (all at once, into one
	// process on this machine, where real targets would each take theirs).
	warmup := 3 * time.Second
	if kind == "grpc" {
		warmup = 10 * time.Second
	}
	const (
		services = 100
		interval = time.Second
		timeout  = 500 * time.Millisecond
		window   = 10 * time.Second
	)
	for range b.N {
		addrs, stopServers := startBenchServers(b, kind, servers)
		reg := registry.New(registry.Config{})
		for i := range instances {
			addr := addrs[i%len(addrs)]
			host, port, _ := net.SplitHostPort(addr)
			p, _ := strconv.Atoi(port)
			c := check(i, addr)
			c.Interval, c.Timeout = registry.Duration(interval), registry.Duration(timeout)
			in, err := registry.NewInstance(fmt.Sprintf("svc-%d", i%services), fmt.Sprintf("i-%d", i), registry.Registration{
				Address: host, Port: p, Checks: []registry.Check{c},
			})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := reg.Register(context.Background(), in); err != nil {
				b.Fatal(err)
			}
		}

		var (
			measuring atomic.Bool
			mu        sync.Mutex
			lags      = make([]time.Duration, 0, 2*instances*int(window/interval))
			results   [3]atomic.Int64 // passing, warning, critical
		)
		cfg := Config{
			Source: reg, Reporter: reg,
			OnLag: func(l time.Duration) {
				if measuring.Load() {
					mu.Lock()
					lags = append(lags, l)
					mu.Unlock()
				}
			},
			OnCheck: func(_ registry.CheckType, s registry.Status, _ time.Duration) {
				if measuring.Load() {
					results[severity(s)].Add(1)
				}
			},
		}
		if tweak != nil {
			tweak(&cfg)
		}
		mon := New(cfg)
		runtime.GC()
		heap0, rss0 := memory()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.ResetTimer()
		go func() { done <- mon.Run(ctx) }()

		// Until the end of the warm-up, watch the new instances turn passing
		// (to within the 50ms of the polling).
		started, allPassing := time.Now(), time.Duration(0)
		for time.Since(started) < warmup {
			if _, n := countPassing(reg); n == instances && allPassing == 0 {
				allPassing = time.Since(started)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_, passingInstances := countPassing(reg)
		cpu0, start := cpuTime(), time.Now()
		measuring.Store(true)
		time.Sleep(window)
		measuring.Store(false)
		cpu, elapsed := cpuTime()-cpu0, time.Since(start)
		heap, rss := memory()
		goroutines := runtime.NumGoroutine()
		outputs := criticalOutputs(reg, 3)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		serverCPU := stopServers()

		mu.Lock()
		slices.Sort(lags)
		q := func(p float64) time.Duration {
			if len(lags) == 0 {
				return 0
			}
			return lags[min(len(lags)-1, int(p*float64(len(lags))))]
		}
		expected := float64(instances) * elapsed.Seconds() / interval.Seconds()
		b.ReportMetric(float64(q(0.50).Microseconds())/1000, "p50-lag-ms")
		b.ReportMetric(float64(q(0.99).Microseconds())/1000, "p99-lag-ms")
		b.ReportMetric(float64(q(1).Microseconds())/1000, "max-lag-ms")
		b.ReportMetric(float64(len(lags))/elapsed.Seconds(), "probes/s")
		b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "cpu-cores")
		b.ReportMetric(float64(cpu.Microseconds())/float64(max(len(lags), 1)), "cpu-us/probe")
		b.ReportMetric(float64(heap-heap0)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(rss-rss0)/(1<<20), "rss-MiB")
		if allPassing == 0 { // not within the warm-up
			allPassing = warmup
		}
		b.ReportMetric(allPassing.Seconds(), "s-to-all-passing")
		b.Logf("%d instances, %s %s checks against %d endpoints: all passing %s after start (at most the warm-up; %d at its end); %d probes in %s (%.1f%% of schedule); "+
			"results passing=%d warning=%d critical=%d; lag p50=%s p90=%s p99=%s max=%s; "+
			"monitor cpu %s (%.2f cores); heap in use +%.0f MiB, RSS +%.0f MiB (%.0f MiB in all), %d goroutines; server process cpu %s (whole run, not counted)",
			instances, interval, kind, len(addrs), allPassing.Round(time.Millisecond), passingInstances, len(lags), elapsed.Round(time.Millisecond), 100*float64(len(lags))/expected,
			results[0].Load(), results[1].Load(), results[2].Load(),
			q(0.5), q(0.9), q(0.99), q(1), cpu.Round(time.Millisecond), cpu.Seconds()/elapsed.Seconds(),
			float64(heap-heap0)/(1<<20), float64(rss-rss0)/(1<<20), float64(rss)/(1<<20), goroutines, serverCPU.Round(time.Millisecond))
		if len(outputs) > 0 {
			b.Logf("outputs of critical instances at the end: %q", outputs)
		}
		mu.Unlock()
	}
}

// criticalOutputs returns up to n distinct outputs of critical instances.
func criticalOutputs(reg *registry.Registry, n int) []string {
	seen := map[string]bool{}
	var out []string
	for _, svc := range reg.Snapshot().Services() {
		for _, in := range svc.Instances() {
			if in.Health.Status == registry.StatusCritical && !seen[in.Health.Output] && len(out) < n {
				seen[in.Health.Output] = true
				out = append(out, in.Health.Output)
			}
		}
	}
	return out
}

// memory returns the heap in use and the resident set size of this
// process, in bytes.
func memory() (heap, rss uint64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap = ms.HeapInuse
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return heap, 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return heap, kb << 10
		}
	}
	return heap, 0
}

// startBenchServers starts the endpoint server process with n endpoints of
// kind (http or grpc) and returns their addresses and a function that
// stops it and returns the CPU it used.
func startBenchServers(b *testing.B, kind string, n int) ([]string, func() time.Duration) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchServersEnv+"="+kind+":"+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	// The server prints its addresses, then an empty line (it may serve
	// fewer endpoints than asked when it runs short of file descriptors).
	var addrs []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "" {
		addrs = append(addrs, sc.Text())
	}
	if len(addrs) == 0 {
		stdin.Close()
		cmd.Wait()
		b.Fatalf("endpoint servers: got no address, want %d", n)
	}
	return addrs, func() time.Duration {
		stdin.Close()
		cmd.Wait()
		if cmd.ProcessState == nil {
			return 0
		}
		return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
}

// cpuTime returns the user and system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func countPassing(reg *registry.Registry) (total, passing int) {
	for _, svc := range reg.Snapshot().Services() {
		c := svc.Counts()
		total += c.Total()
		passing += c.Passing
	}
	return total, passing
}
