package registry_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"disco/registry"
)

// slowStore is a fakeStore whose commits take a fixed time.
type slowStore struct {
	*fakeStore
	took time.Duration
}

func (s *slowStore) Commit(ctx context.Context, changes []registry.Change) error {
	time.Sleep(s.took)
	return s.fakeStore.Commit(ctx, changes)
}

// TestCommitDelay drives the registry with writers on a fixed schedule
// against a store whose commit takes 1ms, and counts commits and write
// latencies, with and without Config.CommitDelay.
func TestCommitDelay(t *testing.T) {
	const commitTime = time.Millisecond
	tests := []struct {
		name    string
		delay   time.Duration
		writers int           // each writes in a loop...
		every   time.Duration // ...this long after its previous write returned
		writes  int           // per writer
		// want
		maxCommits int
		minCommits int
		maxLatency time.Duration
	}{
		// A lone writer never waits: each write is one commit of 1ms.
		{name: "lone writer", delay: 2 * time.Millisecond, writers: 1, writes: 50,
			minCommits: 50, maxCommits: 50, maxLatency: commitTime},
		{name: "lone writer, pauses", delay: 2 * time.Millisecond, writers: 1, every: 300 * time.Microsecond, writes: 50,
			minCommits: 50, maxCommits: 50, maxLatency: commitTime},
		// Staggered writers without a delay: most commits carry one write
		// while the next writer queues behind it.
		{name: "staggered, no delay", delay: 0, writers: 4, every: 3 * time.Millisecond, writes: 50,
			minCommits: 180, maxCommits: 200, maxLatency: 2 * commitTime},
		// With the delay the same writers share commits, and no write waits
		// more than a commit in progress, the delay (capped by the commit
		// time) and its own commit.
		{name: "staggered, delay", delay: 2 * time.Millisecond, writers: 4, every: 3 * time.Millisecond, writes: 50,
			minCommits: 50, maxCommits: 140, maxLatency: 3 * commitTime},
		// Writers that each write again as soon as their write returns: the
		// first write back would start a commit of its own, the rest queue
		// behind it.
		{name: "4 closed loop, no delay", delay: 0, writers: 4, writes: 20,
			minCommits: 32, maxCommits: 42, maxLatency: 2 * commitTime},
		// With the delay a commit waits for them all.
		{name: "4 closed loop, delay", delay: 2 * time.Millisecond, writers: 4, writes: 20,
			minCommits: 20, maxCommits: 25, maxLatency: 3 * commitTime},
		// Once commits carry many writes without waiting, they do not wait:
		// the sync is shared widely already, and waiting would only add
		// latency.
		{name: "16 closed loop, no delay", delay: 0, writers: 16, writes: 20,
			minCommits: 38, maxCommits: 42, maxLatency: 2 * commitTime},
		{name: "16 closed loop, delay", delay: 2 * time.Millisecond, writers: 16, writes: 20,
			minCommits: 36, maxCommits: 42, maxLatency: 3 * commitTime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				fs := &slowStore{fakeStore: newFakeStore(), took: commitTime}
				var log commitLog
				r := registry.New(registry.Config{Store: fs, OnCommit: log.onCommit, CommitDelay: tt.delay})
				var mu sync.Mutex
				var worst time.Duration
				var wg sync.WaitGroup
				for w := range tt.writers {
					wg.Go(func() {
						// Stagger the writers across the interval.
						time.Sleep(time.Duration(w) * tt.every / time.Duration(tt.writers))
						for i := range tt.writes {
							start := time.Now()
							id := fmt.Sprintf("w%d-%d", w, i)
							if _, err := r.Register(ctx, inst(t, "web", id, "10.0.0.1:80")); err != nil {
								t.Error(err)
								return
							}
							took := time.Since(start)
							mu.Lock()
							worst = max(worst, took)
							mu.Unlock()
							time.Sleep(tt.every)
						}
					})
				}
				wg.Wait()
				sizes, _ := log.get()
				total := tt.writers * tt.writes
				if sum(sizes) != total || len(fs.keys()) != total {
					t.Fatalf("%d changes committed, %d stored, want %d", sum(sizes), len(fs.keys()), total)
				}
				if len(sizes) < tt.minCommits || len(sizes) > tt.maxCommits {
					t.Errorf("%d commits for %d writes, want %d to %d", len(sizes), total, tt.minCommits, tt.maxCommits)
				}
				if worst > tt.maxLatency {
					t.Errorf("slowest write took %v, want at most %v", worst, tt.maxLatency)
				}
				t.Logf("%d writes in %d commits, slowest %v", total, len(sizes), worst)
			})
		})
	}
}

// TestCommitDelayQuietSpell checks that a write arriving after a quiet
// spell commits at once, even though the writes before it overlapped.
func TestCommitDelayQuietSpell(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		fs := &slowStore{fakeStore: newFakeStore(), took: time.Millisecond}
		var log commitLog
		r := registry.New(registry.Config{Store: fs, OnCommit: log.onCommit, CommitDelay: 2 * time.Millisecond})
		var wg sync.WaitGroup
		for i := range 3 { // overlapping writes: the next commit would wait
			wg.Go(func() {
				if _, err := r.Register(ctx, inst(t, "web", fmt.Sprintf("a%d", i), "10.0.0.1:80")); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		time.Sleep(time.Second)
		start := time.Now()
		if _, err := r.Register(ctx, inst(t, "web", "late", "10.0.0.1:80")); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != time.Millisecond {
			t.Errorf("a write after a quiet second took %v, want one commit (1ms)", took)
		}
		if sizes, _ := log.get(); sum(sizes) != 4 {
			t.Errorf("commits %v, want 4 changes in all", sizes)
		}
	})
}
