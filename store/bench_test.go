package store_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"disco/registry"
	"disco/store"
)

// benchDirs holds data dirs shared by the benchmarks, by instance count;
// TestMain removes them.
var benchDirs struct {
	sync.Mutex
	root string
	dirs map[int]string
}

func TestMain(m *testing.M) {
	if dir := os.Getenv("DISCO_STORE_BENCH_LOAD"); dir != "" {
		os.Exit(loadAndReportMemory(dir))
	}
	code := m.Run()
	if benchDirs.root != "" {
		os.RemoveAll(benchDirs.root)
	}
	os.Exit(code)
}

// benchInstance is a typical registration: two tags, two meta keys and an
// HTTP check.
func benchInstance(tb testing.TB, service, id string, i int) *registry.Instance {
	addr := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	in, err := registry.NewInstance(service, id, registry.Registration{
		Address: addr, Port: 8080,
		Tags:   []string{"v2", "zone-a"},
		Meta:   map[string]string{"version": "1.4.2", "owner": "payments"},
		Checks: []registry.Check{{Type: registry.CheckHTTP, URL: "http://" + addr + ":8080/health"}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	in.Revision = uint64(i + 1)
	in.Registered = t0
	return in
}

// benchDir returns a data dir holding n instances in n/100 services.
func benchDir(tb testing.TB, n int) string {
	benchDirs.Lock()
	defer benchDirs.Unlock()
	if dir, ok := benchDirs.dirs[n]; ok {
		return dir
	}
	if benchDirs.root == "" {
		root, err := os.MkdirTemp("", "disco-store-bench")
		if err != nil {
			tb.Fatal(err)
		}
		benchDirs.root, benchDirs.dirs = root, make(map[int]string)
	}
	dir := fmt.Sprintf("%s/%d", benchDirs.root, n)
	b := open(tb, dir)
	var batch []registry.Change
	for i := range n {
		batch = append(batch, put(benchInstance(tb, fmt.Sprintf("svc-%d", i%(n/100)), fmt.Sprintf("i-%d", i), i)))
		if len(batch) == 5000 || i == n-1 {
			if err := b.Commit(context.Background(), batch); err != nil {
				tb.Fatal(err)
			}
			batch = nil
		}
	}
	if err := b.Close(); err != nil {
		tb.Fatal(err)
	}
	benchDirs.dirs[n] = dir
	return dir
}

// startUp is what the server does with its data dir at start: open the
// store, load it, and load the registry from it.
func startUp(ctx context.Context, dir string) (*store.Bolt, *registry.Registry, error) {
	b, err := store.Open(dir, store.Options{})
	if err != nil {
		return nil, nil, err
	}
	r := registry.New(registry.Config{Store: b})
	if err := r.Load(ctx); err != nil {
		b.Close()
		return nil, nil, err
	}
	return b, r, nil
}

// BenchmarkLoad100k measures start-up with 100,000 registered instances
// (Open, Load and registry.Load), the live heap the loaded registry holds
// per instance, and the resident size of a process that did only that.
func BenchmarkLoad100k(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	dir := benchDir(b, n)
	b.ReportAllocs()
	var open, load, cpu time.Duration
	var heap uint64
	for b.Loop() {
		b.StopTimer()
		before := liveHeap()
		b.StartTimer()
		cpu0, t := cpuTime(), time.Now()
		s, err := store.Open(dir, store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		r := registry.New(registry.Config{Store: s})
		if err := r.Load(ctx); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		cpu += cpuTime() - cpu0
		open, load = open+t1.Sub(t), load+t2.Sub(t1)
		b.StopTimer()
		if _, got := r.Snapshot().Len(); got != n {
			b.Fatalf("loaded %d instances, want %d", got, n)
		}
		heap = liveHeap() - before
		runtime.KeepAlive(r)
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(open.Milliseconds())/float64(b.N), "open-ms/op")
	b.ReportMetric(float64(load.Milliseconds())/float64(b.N), "load-ms/op")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(heap)/n, "heap-B/instance")

	// Resident size in a fresh process, so the benchmark's own garbage does
	// not count.
	b.StopTimer()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "DISCO_STORE_BENCH_LOAD="+dir)
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("child: %v: %s", err, out)
	}
	var rss, hwm, freed float64
	if _, err := fmt.Sscanf(string(out), "%g %g %g", &rss, &hwm, &freed); err != nil {
		b.Fatalf("child printed %q", out)
	}
	b.ReportMetric(rss/1024, "rss-MB")
	b.ReportMetric(hwm/1024, "peak-rss-MB")
	b.ReportMetric(freed/1024, "rss-after-FreeOSMemory-MB")
	if fi, err := os.Stat(filepath.Join(dir, store.FileName)); err == nil {
		b.ReportMetric(float64(fi.Size())/(1<<20), "file-MB")
	}
}

// loadAndReportMemory starts up from dir and prints the process's resident
// and peak resident size in KiB, for BenchmarkLoad100k.
func loadAndReportMemory(dir string) int {
	s, r, err := startUp(context.Background(), dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	runtime.GC()
	rss, hwm, err := residentKiB()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	debug.FreeOSMemory()
	freed, _, err := residentKiB()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(rss, hwm, freed)
	runtime.KeepAlive(r)
	s.Close()
	return 0
}

// residentKiB returns the process's resident and peak resident size.
func residentKiB() (rss, hwm int, err error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(strings.NewReader(string(status)))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	return rss, hwm, nil
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkCommit measures one Commit of a single registration into a data
// file already holding 10k or 100k instances: the cost is a synced bbolt
// transaction that rewrites one leaf-to-root path, whatever the size.
func BenchmarkCommit(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("size=%dk", n/1000), func(b *testing.B) {
			s := open(b, benchDir(b, n))
			defer s.Close()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				in := benchInstance(b, fmt.Sprintf("svc-%d", i%(n/100)), fmt.Sprintf("i-%d", i%n), i)
				if err := s.Commit(context.Background(), []registry.Change{put(in)}); err != nil {
					b.Fatal(err)
				}
				i += 7919
			}
		})
	}
}
