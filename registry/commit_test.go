package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"disco/registry"
	"disco/store"
)

// gatedStore holds every commit of the store it wraps until gate is closed.
type gatedStore struct {
	registry.Store
	gate chan struct{}
}

func (g *gatedStore) Commit(ctx context.Context, changes []registry.Change) error {
	<-g.gate
	return g.Store.Commit(ctx, changes)
}

// commitLog records Config.OnCommit calls.
type commitLog struct {
	mu    sync.Mutex
	sizes []int
	errs  int
}

func (l *commitLog) onCommit(n int, _ time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sizes = append(l.sizes, n)
	if err != nil {
		l.errs++
	}
}

func (l *commitLog) get() ([]int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.sizes), l.errs
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// reopen closes the store in dir, opens it again and loads a registry from it.
func reopen(t *testing.T, b *store.Bolt, dir string) *registry.Registry {
	t.Helper()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	r := registry.New(registry.Config{Store: b})
	if err := r.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

// durable renders an instance's durable fields.
func durable(t *testing.T, in *registry.Instance) string {
	t.Helper()
	j, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	return string(j)
}

// TestGroupCommitBolt holds the first commit until all 64 writers wait, so
// the other 63 writes must share the second commit; every acknowledged write
// is in the data file after reopening.
func TestGroupCommitBolt(t *testing.T) {
	const writers = 64
	dir := t.TempDir()
	b, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var acked [writers]*registry.Instance
	synctest.Test(t, func(t *testing.T) {
		var log commitLog
		gs := &gatedStore{Store: b, gate: make(chan struct{})}
		r := registry.New(registry.Config{Store: gs, OnCommit: log.onCommit})
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				in, err := r.Register(context.Background(), inst(t, fmt.Sprintf("svc%d", i%5), fmt.Sprintf("w%d", i), fmt.Sprintf("10.0.0.%d:80", i+1)))
				if err != nil {
					t.Error(err)
					return
				}
				acked[i] = in
			})
		}
		synctest.Wait()
		close(gs.gate)
		wg.Wait()
		sizes, errs := log.get()
		if !slices.Equal(sizes, []int{1, writers - 1}) || errs != 0 {
			t.Errorf("commits of %v changes (%d failed), want [1 %d]", sizes, errs, writers-1)
		}
	})

	r := reopen(t, b, dir)
	if _, n := r.Snapshot().Len(); n != writers {
		t.Errorf("%d instances after reopening, want %d", n, writers)
	}
	for _, in := range acked {
		if in == nil {
			continue
		}
		got, ok := r.Snapshot().Instance(in.Service, in.ID)
		if !ok {
			t.Errorf("acknowledged %s is missing after reopening", in.Key())
			continue
		}
		if g, w := durable(t, got), durable(t, in); g != w {
			t.Errorf("after reopening\n got %s\nwant %s", g, w)
		}
	}
}

// TestConcurrentWritersBolt runs 64 writers at once against a real store:
// each registers, re-registers, drains and deregisters its own instances.
// Every acknowledged write must be in the data file after reopening, and the
// writes must have shared commits.
func TestConcurrentWritersBolt(t *testing.T) {
	const writers = 64
	dir := t.TempDir()
	b, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var log commitLog
	r := registry.New(registry.Config{Store: b, OnCommit: log.onCommit})
	ctx := context.Background()
	var wg sync.WaitGroup
	var writes [writers]int
	for w := range writers {
		wg.Go(func() {
			svc := fmt.Sprintf("svc%d", w%8)
			for j := range 3 {
				id := fmt.Sprintf("w%d-%d", w, j)
				steps := []func() error{
					func() error { _, err := r.Register(ctx, inst(t, svc, id, "10.0.1.1:80")); return err },
					func() error { _, err := r.Register(ctx, inst(t, svc, id, "10.0.1.2:81")); return err },
				}
				switch j {
				case 1:
					steps = append(steps, func() error { _, err := r.SetMaintenance(ctx, svc, id, true, "drained"); return err })
				case 2:
					steps = append(steps, func() error { return r.Deregister(ctx, svc, id) })
				}
				for _, step := range steps {
					if err := step(); err != nil {
						t.Error(err)
						return
					}
					writes[w]++
				}
			}
		})
	}
	wg.Wait()
	sizes, errs := log.get()
	total := sum(writes[:])
	if errs != 0 || sum(sizes) != total || len(sizes) > total {
		t.Errorf("%d commits (%d failed) of %d changes for %d writes", len(sizes), errs, sum(sizes), total)
	}
	t.Logf("%d writes in %d commits", total, len(sizes))

	want := render(r.Snapshot())
	if got := render(reopen(t, b, dir).Snapshot()); got != want {
		t.Errorf("after reopening\n%s\nwant\n%s", got, want)
	}
}

// TestCommitFailure fails one write's commit: the write reports
// ErrUnavailable, nothing is published, and the next write succeeds without
// it.
func TestCommitFailure(t *testing.T) {
	tests := []struct {
		name string
		do   func(ctx context.Context, r *registry.Registry) error
		err  string
	}{
		{"register", func(ctx context.Context, r *registry.Registry) error {
			_, err := r.Register(ctx, inst(t, "web", "a2", "10.0.0.2:80"))
			return err
		}, "register web/a2: store unavailable: disk full"},
		{"re-register", func(ctx context.Context, r *registry.Registry) error {
			_, err := r.Register(ctx, inst(t, "web", "a1", "10.0.0.9:80"))
			return err
		}, "register web/a1: store unavailable: disk full"},
		{"deregister", func(ctx context.Context, r *registry.Registry) error {
			return r.Deregister(ctx, "web", "a1")
		}, "deregister web/a1: store unavailable: disk full"},
		{"maintenance", func(ctx context.Context, r *registry.Registry) error {
			_, err := r.SetMaintenance(ctx, "web", "a1", true, "x")
			return err
		}, "set maintenance of web/a1: store unavailable: disk full"},
		{"settings", func(ctx context.Context, r *registry.Registry) error {
			_, err := r.SetSettings(ctx, "web", registry.Settings{DNSTTL: intp(5)})
			return err
		}, "set settings of web: store unavailable: disk full"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			fs := newFakeStore()
			r := registry.New(registry.Config{Store: fs})
			if _, err := r.Register(ctx, inst(t, "web", "a1", "10.0.0.1:80")); err != nil {
				t.Fatal(err)
			}
			prev := r.Snapshot()
			before := render(prev)

			fs.setFail(true)
			err := tt.do(ctx, r)
			if err == nil || err.Error() != tt.err || !errors.Is(err, registry.ErrUnavailable) || !errors.Is(err, errDiskFull) {
				t.Fatalf("error %v, want %q wrapping ErrUnavailable", err, tt.err)
			}
			if r.Snapshot() != prev || closed(prev.Changed()) {
				t.Fatal("a failed write published a snapshot")
			}

			fs.setFail(false)
			b1, err := r.Register(ctx, inst(t, "api", "b1", "10.0.0.3:80"))
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("api: passing=1 warning=0 critical=0 maintenance=0\n  b1 10.0.0.3:80 passing rev=%d\n", b1.Revision) + before
			if got := render(r.Snapshot()); got != want {
				t.Errorf("the next write published\n%s\nwant\n%s", got, want)
			}
			if got := fs.keys(); !slices.Equal(got, []string{"api/b1", "web/a1"}) {
				t.Errorf("store holds %v", got)
			}
		})
	}
}

// TestCommitFailureFailsQueuedWrites fails a commit while more writes wait
// behind it: they were planned on top of it, so they fail too, and the
// registry goes back to the durable state, keeping health reported
// meanwhile.
func TestCommitFailureFailsQueuedWrites(t *testing.T) {
	for _, maxBatch := range []int{0, 1, 4} {
		t.Run(fmt.Sprintf("MaxBatch=%d", maxBatch), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				fs := newFakeStore()
				var log commitLog
				r := registry.New(registry.Config{Store: fs, OnCommit: log.onCommit, MaxBatch: maxBatch})
				old, err := r.Register(ctx, inst(t, "web", "a0", "10.0.0.1:80", tcpCheck("10.0.0.1:80")))
				if err != nil {
					t.Fatal(err)
				}

				fs.gate = make(chan struct{})
				var wg sync.WaitGroup
				errs := make([]error, 9)
				for i := range errs {
					wg.Go(func() {
						_, errs[i] = r.Register(ctx, inst(t, "web", fmt.Sprintf("a%d", i+1), "10.0.0.2:80"))
					})
				}
				synctest.Wait()
				// Health reported while the writes wait is published at once.
				if !r.SetHealth(old.Key(), old.Revision, registry.Health{Status: registry.StatusPassing, Output: "ok"}) {
					t.Fatal("SetHealth reported no change")
				}
				healthy := r.Snapshot()
				fs.setFail(true)
				close(fs.gate)
				wg.Wait()

				for i, err := range errs {
					if !errors.Is(err, registry.ErrUnavailable) {
						t.Errorf("write %d: %v, want ErrUnavailable", i+1, err)
					}
				}
				// The first writer's commit held the gate alone, then failed.
				if sizes, failed := log.get(); !slices.Equal(sizes, []int{1, 1}) || failed != 1 {
					t.Errorf("commits of %v changes, %d failed; want [1 1], 1 failed", sizes, failed)
				}
				want := "web: passing=1 warning=0 critical=0 maintenance=0\n  a0 10.0.0.1:80 passing rev=1\n"
				if r.Snapshot() != healthy || render(healthy) != want {
					t.Errorf("after the failure\n%s\nwant\n%s", render(r.Snapshot()), want)
				}

				fs.setFail(false)
				if _, err := r.Register(ctx, inst(t, "web", "b1", "10.0.0.3:80")); err != nil {
					t.Fatal(err)
				}
				want = "web: passing=2 warning=0 critical=0 maintenance=0\n  a0 10.0.0.1:80 passing rev=1\n  b1 10.0.0.3:80 passing rev=11\n"
				if got := render(r.Snapshot()); got != want {
					t.Errorf("the next write published\n%s\nwant\n%s", got, want)
				}
				if got := fs.keys(); !slices.Equal(got, []string{"web/a0", "web/b1"}) {
					t.Errorf("store holds %v", got)
				}
			})
		})
	}
}

// TestMaxBatch holds the first commit until 64 writers wait, then counts the
// changes in each commit.
func TestMaxBatch(t *testing.T) {
	const writers = 64
	tests := []struct {
		maxBatch int
		want     []int
	}{
		{0, []int{1, 63}},
		{1, slices.Repeat([]int{1}, writers)},
		{8, []int{1, 8, 8, 8, 8, 8, 8, 8, 7}},
		{63, []int{1, 63}},
		{100, []int{1, 63}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("MaxBatch=%d", tt.maxBatch), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				fs := newFakeStore()
				fs.gate = make(chan struct{})
				var log commitLog
				r := registry.New(registry.Config{Store: fs, OnCommit: log.onCommit, MaxBatch: tt.maxBatch})
				var wg sync.WaitGroup
				for i := range writers {
					wg.Go(func() {
						id := fmt.Sprintf("a%d", i)
						in, err := r.Register(ctx, inst(t, "web", id, "10.0.0.1:80"))
						if err != nil {
							t.Error(err)
							return
						}
						if in.ID != id {
							t.Errorf("registered %s, got %s back", id, in.ID)
						}
						// The write is published when Register returns.
						if _, ok := r.Snapshot().Instance("web", id); !ok {
							t.Errorf("%s is not in the snapshot after Register returned", id)
						}
					})
				}
				synctest.Wait()
				close(fs.gate)
				wg.Wait()
				if sizes, _ := log.get(); !slices.Equal(sizes, tt.want) {
					t.Errorf("commits of %v changes, want %v", sizes, tt.want)
				}
				if _, n := r.Snapshot().Len(); n != writers || len(fs.keys()) != writers {
					t.Errorf("%d instances published, %d stored, want %d", n, len(fs.keys()), writers)
				}
				if v := r.Snapshot().Version(); v != uint64(len(tt.want)) {
					t.Errorf("version %d after %d commits", v, len(tt.want))
				}
			})
		})
	}
}
