package registry_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"disco/registry"
	"disco/store"
)

// benchRoot holds the data dirs the benchmarks create; TestMain removes it.
var benchRoot struct {
	sync.Mutex
	dir string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchRoot.dir != "" {
		os.RemoveAll(benchRoot.dir)
	}
	os.Exit(code)
}

// benchDataDir returns a new data dir that outlives one benchmark function
// (which the testing package may run several times).
func benchDataDir(b *testing.B) string {
	benchRoot.Lock()
	defer benchRoot.Unlock()
	if benchRoot.dir == "" {
		dir, err := os.MkdirTemp("", "disco-registry-bench")
		if err != nil {
			b.Fatal(err)
		}
		benchRoot.dir = dir
	}
	dir, err := os.MkdirTemp(benchRoot.dir, "data")
	if err != nil {
		b.Fatal(err)
	}
	return dir
}

// benchReg returns a registration like a real one: two tags, some meta and
// an HTTP check.
func benchReg(i, port int) registry.Registration {
	addr := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	return registry.Registration{
		Address: addr, Port: port,
		Tags:   []string{"v2", "zone-a"},
		Meta:   map[string]string{"version": "1.4.2"},
		Checks: []registry.Check{{Type: registry.CheckHTTP, URL: "http://" + addr + ":8080/health"}},
	}
}

func benchInstance(b *testing.B, service, id string, i, port int) *registry.Instance {
	in, err := registry.NewInstance(service, id, benchReg(i, port))
	if err != nil {
		b.Fatal(err)
	}
	return in
}

// BenchmarkRegisterConcurrent measures registrations per second with 64
// writers against the bbolt store: with group commit (with and without a
// commit delay), and with one commit (one fsync) per write.
func BenchmarkRegisterConcurrent(b *testing.B) {
	const writers = 64
	for _, tt := range []struct {
		name     string
		maxBatch int
		delay    time.Duration
	}{{"group+delay", 0, 2 * time.Millisecond}, {"group", 0, 0}, {"maxbatch=1", 1, 0}} {
		b.Run(tt.name, func(b *testing.B) {
			s, err := store.Open(benchDataDir(b), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var commits atomic.Int64
			r := registry.New(registry.Config{Store: s, MaxBatch: tt.maxBatch, CommitDelay: tt.delay,
				OnCommit: func(int, time.Duration, error) { commits.Add(1) }})
			ctx := context.Background()
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for range writers {
				wg.Go(func() {
					for {
						i := int(next.Add(1)) - 1
						if i >= b.N {
							return
						}
						in := benchInstance(b, fmt.Sprintf("svc-%d", i%100), fmt.Sprintf("i-%d", i), i, 8080)
						if _, err := r.Register(ctx, in); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "registrations/s")
			b.ReportMetric(float64(b.N)/float64(commits.Load()), "writes/commit")
		})
	}
}

// sized caches the registries BenchmarkRegisterSize writes into, by name:
// loading 100k instances takes longer than the benchmark itself.
var sized struct {
	sync.Mutex
	regs map[string]*registry.Registry
}

// sizedRegistry returns a registry holding n instances, 10 per service,
// whose store is kind: "memory" (an in-memory store) or "bolt".
func sizedRegistry(b *testing.B, kind string, n int) *registry.Registry {
	sized.Lock()
	defer sized.Unlock()
	name := fmt.Sprintf("%s/%d", kind, n)
	if r, ok := sized.regs[name]; ok {
		return r
	}
	var st registry.Store
	var changes []registry.Change
	flush := func() {}
	switch kind {
	case "memory":
		fs := newFakeStore()
		st = fs
		flush = func() {
			for _, c := range changes {
				fs.instances[c.Instance.Key()] = c.Instance
			}
			changes = nil
		}
	case "bolt":
		s, err := store.Open(benchDataDir(b), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		st = s
		flush = func() {
			if err := s.Commit(context.Background(), changes); err != nil {
				b.Fatal(err)
			}
			changes = nil
		}
	}
	for i := range n {
		in := benchInstance(b, fmt.Sprintf("svc-%d", i%(n/10)), fmt.Sprintf("i-%d", i), i, 8080)
		in.Revision = uint64(i + 1)
		changes = append(changes, registry.Change{Op: registry.OpPutInstance, Service: in.Service, Instance: in})
		if len(changes) == 5000 || i == n-1 {
			flush()
		}
	}
	r := registry.New(registry.Config{Store: st})
	if err := r.Load(context.Background()); err != nil {
		b.Fatal(err)
	}
	if sized.regs == nil {
		sized.regs = make(map[string]*registry.Registry)
	}
	sized.regs[name] = r
	return r
}

// BenchmarkRegisterSize measures one registration (replacing an instance,
// with a new port) in a registry already holding 10k or 100k instances in
// 1k or 10k services. The cost is the changed service plus a share of the
// service index, so it should barely grow with the registry: "memory"
// shows the registry's own cost, "bolt" adds the synced commit.
func BenchmarkRegisterSize(b *testing.B) {
	for _, kind := range []string{"memory", "bolt"} {
		for _, n := range []int{10_000, 100_000} {
			b.Run(fmt.Sprintf("%s/size=%dk", kind, n/1000), func(b *testing.B) {
				r := sizedRegistry(b, kind, n)
				ctx := context.Background()
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					k := i * 7919 % n
					in := benchInstance(b, fmt.Sprintf("svc-%d", k%(n/10)), fmt.Sprintf("i-%d", k), k, 8081+i%2)
					if _, err := r.Register(ctx, in); err != nil {
						b.Fatal(err)
					}
					i++
				}
				if _, got := r.Snapshot().Len(); got != n {
					b.Fatalf("registry holds %d instances, want %d", got, n)
				}
			})
		}
	}
}
