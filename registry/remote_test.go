package registry_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"disco/registry"
)

// TestApplyRemote applies changes made elsewhere to a registry holding web/a0
// (no checks), web/a1 (a tcp check, passing) and nothing else.
func TestApplyRemote(t *testing.T) {
	check := tcpCheck("10.0.0.1:80")
	withRev := func(in *registry.Instance, rev uint64) *registry.Instance {
		in.Revision = rev
		return in
	}
	put := func(in *registry.Instance) registry.Change {
		return registry.Change{Op: registry.OpPutInstance, Service: in.Service, Instance: in}
	}
	tests := []struct {
		name    string
		changes func(a1 *registry.Instance) []registry.Change
		skip    func(i int) bool
		applied int
		want    string // render after
	}{
		{"new instance", func(*registry.Instance) []registry.Change {
			return []registry.Change{put(withRev(inst(t, "api", "b1", "10.0.1.1:90", tcpCheck("10.0.1.1:90")), 9))}
		}, nil, 1,
			"api: passing=0 warning=0 critical=1 maintenance=0\n  b1 10.0.1.1:90 critical rev=9\n" +
				"web: passing=2 warning=0 critical=0 maintenance=0\n  a0 10.0.0.9:80 passing rev=1\n  a1 10.0.0.1:80 passing rev=2\n"},
		{"same revision keeps health", func(a1 *registry.Instance) []registry.Change {
			in := withRev(inst(t, "web", "a1", "10.0.0.1:80", check), a1.Revision)
			in.Maintenance = &registry.Maintenance{Reason: "drain"}
			return []registry.Change{put(in)}
		}, nil, 1,
			"web: passing=1 warning=0 critical=0 maintenance=1\n  a0 10.0.0.9:80 passing rev=1\n  a1 10.0.0.1:80 maintenance rev=2 reason=\"drain\"\n"},
		{"new revision starts over", func(a1 *registry.Instance) []registry.Change {
			return []registry.Change{put(withRev(inst(t, "web", "a1", "10.0.0.2:80", tcpCheck("10.0.0.2:80")), 5))}
		}, nil, 1,
			"web: passing=1 warning=0 critical=1 maintenance=0\n  a0 10.0.0.9:80 passing rev=1\n  a1 10.0.0.2:80 critical rev=5\n"},
		{"delete and settings", func(*registry.Instance) []registry.Change {
			return []registry.Change{
				{Op: registry.OpDeleteInstance, Service: "web", ID: "a0"},
				{Op: registry.OpPutService, Service: "db", Settings: registry.Settings{DNSTTL: intp(30)}},
			}
		}, nil, 2,
			"db: passing=0 warning=0 critical=0 maintenance=0 explicit ttl=30\n" +
				"web: passing=1 warning=0 critical=0 maintenance=0\n  a1 10.0.0.1:80 passing rev=2\n"},
		{"skipped changes", func(*registry.Instance) []registry.Change {
			return []registry.Change{
				{Op: registry.OpDeleteInstance, Service: "web", ID: "a0"},
				{Op: registry.OpDeleteInstance, Service: "web", ID: "a1"},
			}
		}, func(i int) bool { return i == 0 }, 1,
			"web: passing=1 warning=0 critical=0 maintenance=0\n  a0 10.0.0.9:80 passing rev=1\n"},
		{"all skipped", func(*registry.Instance) []registry.Change {
			return []registry.Change{{Op: registry.OpDeleteInstance, Service: "web", ID: "a0"}}
		}, func(int) bool { return true }, 0,
			"web: passing=2 warning=0 critical=0 maintenance=0\n  a0 10.0.0.9:80 passing rev=1\n  a1 10.0.0.1:80 passing rev=2\n"},
		{"put without instance", func(*registry.Instance) []registry.Change {
			return []registry.Change{{Op: registry.OpPutInstance, Service: "web"}}
		}, nil, 0,
			"web: passing=2 warning=0 critical=0 maintenance=0\n  a0 10.0.0.9:80 passing rev=1\n  a1 10.0.0.1:80 passing rev=2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			fs := newFakeStore()
			r := registry.New(registry.Config{Store: fs, Now: newClock().now})
			if _, err := r.Register(ctx, inst(t, "web", "a0", "10.0.0.9:80")); err != nil {
				t.Fatal(err)
			}
			a1, err := r.Register(ctx, inst(t, "web", "a1", "10.0.0.1:80", check))
			if err != nil {
				t.Fatal(err)
			}
			r.SetHealth(a1.Key(), a1.Revision, registry.Health{Status: registry.StatusPassing, Output: "ok"})
			prev := r.Snapshot()
			commits := len(fs.commits)

			if got := r.ApplyRemote(tt.changes(a1), tt.skip); got != tt.applied {
				t.Errorf("ApplyRemote = %d, want %d", got, tt.applied)
			}
			s := r.Snapshot()
			if got := render(s); got != tt.want {
				t.Errorf("snapshot\n%s\nwant\n%s", got, tt.want)
			}
			if tt.applied > 0 != closed(prev.Changed()) {
				t.Errorf("previous snapshot's Changed closed: %v, want %v", closed(prev.Changed()), tt.applied > 0)
			}
			if len(fs.commits) != commits {
				t.Error("ApplyRemote wrote to the store")
			}
			// Later writes build on the remote state.
			if _, err := r.Register(ctx, inst(t, "web", "a2", "10.0.0.3:80")); err != nil {
				t.Fatal(err)
			}
			if _, ok := r.Snapshot().Instance("web", "a2"); !ok {
				t.Error("a write after ApplyRemote is missing")
			}
		})
	}
}

// TestApplyRemoteRevisions: revisions allocated after a remote change are
// above those it carried, so that health results cannot be mistaken.
func TestApplyRemoteRevisions(t *testing.T) {
	r := registry.New(registry.Config{Store: newFakeStore(), Now: newClock().now})
	in := inst(t, "web", "a1", "10.0.0.1:80")
	in.Revision = 500
	r.ApplyRemote([]registry.Change{{Op: registry.OpPutInstance, Service: "web", Instance: in}}, nil)
	got, err := r.Register(context.Background(), inst(t, "web", "a2", "10.0.0.2:80"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Revision <= 500 {
		t.Errorf("revision %d, want above 500", got.Revision)
	}
}

// TestApplyRemoteWaitsForCommit: changes arriving while a commit is in
// flight are applied after it, and skip is asked only then (so that a store
// can leave out its own commit coming back).
func TestApplyRemoteWaitsForCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := newFakeStore()
		fs.gate = make(chan struct{})
		r := registry.New(registry.Config{Store: fs, Now: newClock().now})
		go func() {
			if _, err := r.Register(context.Background(), inst(t, "web", "a1", "10.0.0.1:80")); err != nil {
				t.Error(err)
			}
		}()
		synctest.Wait() // the commit is held at the gate

		// An older remote value of the same instance comes in meanwhile.
		old := inst(t, "web", "a1", "10.0.0.2:80")
		old.Revision = 1
		var askedAfter []int
		done := make(chan int)
		go func() {
			done <- r.ApplyRemote([]registry.Change{{Op: registry.OpPutInstance, Service: "web", Instance: old}},
				func(int) bool {
					askedAfter = append(askedAfter, len(fs.commits))
					return len(fs.commits) > 0 // the local commit is newer
				})
		}()
		synctest.Wait()
		if askedAfter != nil {
			t.Fatal("skip was asked while the commit was in flight")
		}
		close(fs.gate)
		if n := <-done; n != 0 {
			t.Errorf("applied %d changes, want 0", n)
		}
		synctest.Wait()
		if fmt.Sprint(askedAfter) != "[1]" {
			t.Errorf("skip asked after commits %v, want [1]", askedAfter)
		}
		if got, _ := r.Snapshot().Instance("web", "a1"); got == nil || got.Address.String() != "10.0.0.1" {
			t.Errorf("instance %+v, want the local write 10.0.0.1", got)
		}
	})
}

// TestApplyRemoteKeepsQueuedWrites: a remote change applied between two
// commits, while a write waits for the second, does not lose the waiting
// write. Whichever of the two goes first after the first commit, the
// registry ends up with both.
func TestApplyRemoteKeepsQueuedWrites(t *testing.T) {
	for range 30 {
		synctest.Test(t, func(t *testing.T) {
			fs := newFakeStore()
			fs.gate = make(chan struct{})
			r := registry.New(registry.Config{Store: fs, Now: newClock().now})
			register := func(id, addr string) {
				if _, err := r.Register(context.Background(), inst(t, "web", id, addr)); err != nil {
					t.Error(err)
				}
			}
			go register("a1", "10.0.0.1:80")
			synctest.Wait() // a1 is committing
			go register("a2", "10.0.0.2:80")
			synctest.Wait() // a2 waits for the commit
			remote := inst(t, "web", "a3", "10.0.0.3:80")
			remote.Revision = 100
			go r.ApplyRemote([]registry.Change{{Op: registry.OpPutInstance, Service: "web", Instance: remote}}, nil)
			synctest.Wait()
			close(fs.gate)
			synctest.Wait()
			want := "web: passing=3 warning=0 critical=0 maintenance=0\n" +
				"  a1 10.0.0.1:80 passing rev=1\n  a2 10.0.0.2:80 passing rev=2\n  a3 10.0.0.3:80 passing rev=100\n"
			if got := render(r.Snapshot()); got != want {
				t.Errorf("snapshot\n%s\nwant\n%s", got, want)
			}
			if got := fmt.Sprint(fs.keys()); got != "[web/a1 web/a2]" {
				t.Errorf("stored %s", got)
			}
		})
	}
}

// TestLoadWithHealth: a store that keeps health starts instances from it.
func TestLoadWithHealth(t *testing.T) {
	fs := newFakeStore()
	in := inst(t, "web", "a1", "10.0.0.1:80", tcpCheck("10.0.0.1:80"))
	in.Revision = 4
	in.Health = registry.Health{Status: registry.StatusPassing, Output: "connected"}
	fs.instances[in.Key()] = in
	r := registry.New(registry.Config{Store: fs, Now: newClock().now})
	if err := r.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ := r.Snapshot().Instance("web", "a1")
	if got.Status() != registry.StatusPassing || got.Health.Output != "connected" {
		t.Errorf("loaded health %+v, want passing: connected", got.Health)
	}
}

// sharedStore stands for a store shared by several servers: it orders every
// commit, the local registry's and the other servers', by a revision, and
// delivers them all, in order, to a watcher. Like the etcd store, it
// remembers the revision of each key the local registry committed, so that
// the watcher leaves out changes the registry already reflects.
type sharedStore struct {
	mu    sync.Mutex
	cond  *sync.Cond
	rev   uint64
	data  map[string]registry.Change
	log   []logEntry
	own   map[string]uint64
	ended bool
}

type logEntry struct {
	rev     uint64
	changes []registry.Change
}

func newSharedStore() *sharedStore {
	s := &sharedStore{data: map[string]registry.Change{}, own: map[string]uint64{}}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func changeKey(c registry.Change) string {
	switch c.Op {
	case registry.OpPutInstance:
		return "i/" + c.Service + "/" + c.Instance.ID
	case registry.OpDeleteInstance:
		return "i/" + c.Service + "/" + c.ID
	}
	return "s/" + c.Service
}

func (s *sharedStore) Load(context.Context) (*registry.State, error) {
	return &registry.State{}, nil
}

// Commit is the local registry's commit. As with a network store, the
// watcher may see the commit before Commit returns.
func (s *sharedStore) Commit(_ context.Context, changes []registry.Change) error {
	rev := s.commit(changes)
	runtime.Gosched()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range changes {
		s.own[changeKey(c)] = rev
	}
	return nil
}

// commit stores changes at the next revision and queues them for the
// watcher.
func (s *sharedStore) commit(changes []registry.Change) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rev++
	for _, c := range changes {
		s.data[changeKey(c)] = c
	}
	s.log = append(s.log, logEntry{s.rev, changes})
	s.cond.Broadcast()
	return s.rev
}

func (s *sharedStore) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = true
	s.cond.Broadcast()
}

// watch delivers every commit in order to r until end was called and the
// log is drained.
func (s *sharedStore) watch(r *registry.Registry) {
	for i := 0; ; i++ {
		s.mu.Lock()
		for i >= len(s.log) && !s.ended {
			s.cond.Wait()
		}
		if i >= len(s.log) {
			s.mu.Unlock()
			return
		}
		e := s.log[i]
		s.mu.Unlock()
		runtime.Gosched() // let the writers run ahead
		r.ApplyRemote(e.changes, func(j int) bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.own[changeKey(e.changes[j])] >= e.rev
		})
	}
}

// render writes the stored instances as the registry's render does.
func (s *sharedStore) instances() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for k, c := range s.data {
		if c.Op == registry.OpPutInstance {
			out[k] = netip.AddrPortFrom(c.Instance.Address, c.Instance.Port).String()
		}
	}
	return out
}

// TestApplyRemoteConverges races local writes through the registry against
// writes of other servers, to a few shared instances and to their own; every commit reaches
// the registry through ApplyRemote as a watcher would deliver it. Once all
// is delivered, the registry holds exactly what the store holds.
func TestApplyRemoteConverges(t *testing.T) {
	for round := range 20 {
		store := newSharedStore()
		r := registry.New(registry.Config{Store: store, Now: time.Now})
		watched := make(chan struct{})
		go func() {
			store.watch(r)
			close(watched)
		}()
		ids := []string{"a1", "a2", "a3"}
		addr := func(rng *rand.Rand) string { return fmt.Sprintf("10.0.%d.%d:80", rng.IntN(3), rng.IntN(250)+1) }
		var wg sync.WaitGroup
		for w := range 3 {
			wg.Go(func() { // local clients
				rng := rand.New(rand.NewPCG(uint64(round), uint64(w)))
				for n := range 40 {
					id := ids[rng.IntN(len(ids))]
					if rng.IntN(2) == 0 {
						id = fmt.Sprintf("l%d-%d", w, n)
					}
					var err error
					if rng.IntN(4) == 0 {
						err = r.Deregister(context.Background(), "web", id)
					} else {
						_, err = r.Register(context.Background(), inst(t, "web", id, addr(rng)))
					}
					if err != nil && !errorsIsNotFound(err) {
						t.Error(err)
					}
				}
			})
		}
		wg.Go(func() { // another server
			rng := rand.New(rand.NewPCG(uint64(round), 99))
			for n := range 120 {
				id := ids[rng.IntN(len(ids))]
				if rng.IntN(2) == 0 {
					id = fmt.Sprintf("r%d", n)
				}
				if rng.IntN(4) == 0 {
					store.commit([]registry.Change{{Op: registry.OpDeleteInstance, Service: "web", ID: id}})
					continue
				}
				in := inst(t, "web", id, addr(rng))
				in.Revision = uint64(10000 + n)
				store.commit([]registry.Change{{Op: registry.OpPutInstance, Service: "web", Instance: in}})
			}
		})
		wg.Wait()
		store.end()
		<-watched

		want := store.instances()
		got := map[string]string{}
		if svc, ok := r.Snapshot().Service("web"); ok {
			for _, in := range svc.Instances() {
				got["i/web/"+in.ID] = netip.AddrPortFrom(in.Address, in.Port).String()
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("round %d: registry holds %v, the store %v", round, got, want)
		}
	}
}

func errorsIsNotFound(err error) bool { return err != nil && errors.Is(err, registry.ErrNotFound) }

// TestNextRevision: Config.NextRevision allocates the revisions of new
// targets, above every revision seen, local or remote.
func TestNextRevision(t *testing.T) {
	const salt = 0x2a
	next := func(last uint64) uint64 { return (last>>8+1)<<8 | salt }
	r := registry.New(registry.Config{Store: newFakeStore(), Now: newClock().now, NextRevision: next})
	ctx := context.Background()
	a1, err := r.Register(ctx, inst(t, "web", "a1", "10.0.0.1:80"))
	if err != nil {
		t.Fatal(err)
	}
	if a1.Revision != 0x12a {
		t.Errorf("first revision %#x, want 0x12a", a1.Revision)
	}
	remote := inst(t, "web", "b1", "10.0.0.2:80")
	remote.Revision = 0x5ff
	r.ApplyRemote([]registry.Change{{Op: registry.OpPutInstance, Service: "web", Instance: remote}}, nil)
	a1, err = r.Register(ctx, inst(t, "web", "a1", "10.0.0.9:80"))
	if err != nil {
		t.Fatal(err)
	}
	if a1.Revision != 0x62a {
		t.Errorf("revision after a remote 0x5ff: %#x, want 0x62a", a1.Revision)
	}
	// A function that does not move forward cannot make revisions repeat.
	r = registry.New(registry.Config{Store: newFakeStore(), NextRevision: func(uint64) uint64 { return 1 }})
	x, _ := r.Register(ctx, inst(t, "web", "a1", "10.0.0.1:80"))
	y, _ := r.Register(ctx, inst(t, "web", "a2", "10.0.0.1:80"))
	if x.Revision == y.Revision {
		t.Errorf("two registrations got revision %d", x.Revision)
	}
}
