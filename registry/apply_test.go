package registry_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"disco/registry"
)

// errPrecondition is what the plans below fail with.
var errPrecondition = errors.New("precondition failed")

// TestApply runs batches against a registry with a store: each either
// lands whole, in one commit and one new version, or changes nothing.
func TestApply(t *testing.T) {
	type step struct {
		name string
		plan func(head *registry.Snapshot) (registry.Batch, error)
		err  string // "" for success
		want string // render of the snapshot after the step
	}
	put := func(ins ...*registry.Instance) func(*registry.Snapshot) (registry.Batch, error) {
		return func(*registry.Snapshot) (registry.Batch, error) { return registry.Batch{Put: ins}, nil }
	}
	web1, web2 := inst(t, "web", "w1", "10.0.0.1:80"), inst(t, "web", "w2", "10.0.0.2:80")
	steps := []step{
		{name: "two services at once", plan: put(web1, web2, inst(t, "db", "d1", "10.0.0.3:5432")),
			want: "db: passing=1 warning=0 critical=0 maintenance=0\n  d1 10.0.0.3:5432 passing rev=3\n" +
				"web: passing=2 warning=0 critical=0 maintenance=0\n  w1 10.0.0.1:80 passing rev=1\n  w2 10.0.0.2:80 passing rev=2\n"},
		{name: "a failed precondition changes nothing",
			plan: func(head *registry.Snapshot) (registry.Batch, error) {
				if _, ok := head.Instance("web", "w1"); ok {
					return registry.Batch{}, fmt.Errorf("w1 exists: %w", errPrecondition)
				}
				return registry.Batch{Delete: []registry.Key{{Service: "db", ID: "d1"}}}, nil
			},
			err: "w1 exists: precondition failed",
			want: "db: passing=1 warning=0 critical=0 maintenance=0\n  d1 10.0.0.3:5432 passing rev=3\n" +
				"web: passing=2 warning=0 critical=0 maintenance=0\n  w1 10.0.0.1:80 passing rev=1\n  w2 10.0.0.2:80 passing rev=2\n"},
		{name: "the same key twice changes nothing",
			plan: func(*registry.Snapshot) (registry.Batch, error) {
				return registry.Batch{Put: []*registry.Instance{inst(t, "api", "a1", "10.0.0.9:80")},
					Delete: []registry.Key{{Service: "api", ID: "a1"}}}, nil
			},
			err: "invalid: instance api/a1 is written twice in one batch",
			want: "db: passing=1 warning=0 critical=0 maintenance=0\n  d1 10.0.0.3:5432 passing rev=3\n" +
				"web: passing=2 warning=0 critical=0 maintenance=0\n  w1 10.0.0.1:80 passing rev=1\n  w2 10.0.0.2:80 passing rev=2\n"},
		{name: "an instance not from NewInstance changes nothing",
			plan: put(inst(t, "api", "a1", "10.0.0.9:80"), &registry.Instance{Service: "api", ID: "Bad"}),
			err:  "invalid: batch holds an instance that NewInstance did not make",
			want: "db: passing=1 warning=0 critical=0 maintenance=0\n  d1 10.0.0.3:5432 passing rev=3\n" +
				"web: passing=2 warning=0 critical=0 maintenance=0\n  w1 10.0.0.1:80 passing rev=1\n  w2 10.0.0.2:80 passing rev=2\n"},
		{name: "replace, move and delete in one batch, absent keys skipped",
			plan: func(*registry.Snapshot) (registry.Batch, error) {
				return registry.Batch{
					Put:    []*registry.Instance{inst(t, "web", "w1", "10.0.0.1:80"), inst(t, "web", "w2", "10.0.0.7:80")},
					Delete: []registry.Key{{Service: "db", ID: "d1"}, {Service: "db", ID: "gone"}},
				}, nil
			},
			want: "web: passing=2 warning=0 critical=0 maintenance=0\n  w1 10.0.0.1:80 passing rev=1\n  w2 10.0.0.7:80 passing rev=4\n"},
	}
	fs := newFakeStore()
	r := registry.New(registry.Config{Store: fs, Now: newClock().now})
	ctx := context.Background()
	for _, st := range steps {
		prev := r.Snapshot()
		commits := len(fs.commits)
		snap, err := r.Apply(ctx, st.plan)
		if got := fmt.Sprint(err); (err != nil || st.err != "") && got != st.err {
			t.Fatalf("%s: error %q, want %q", st.name, got, st.err)
		}
		if got := render(r.Snapshot()); got != st.want {
			t.Fatalf("%s: snapshot\n%s\nwant\n%s", st.name, got, st.want)
		}
		if st.err != "" {
			if r.Snapshot() != prev || len(fs.commits) != commits {
				t.Fatalf("%s: a failed batch published or committed something", st.name)
			}
			continue
		}
		if snap != r.Snapshot() || snap.Version() != prev.Version()+1 || len(fs.commits) != commits+1 {
			t.Fatalf("%s: want one commit and one new version, got %d commits, version %d after %d",
				st.name, len(fs.commits)-commits, snap.Version(), prev.Version())
		}
	}
	if got, want := fs.keys(), []string{"web/w1", "web/w2"}; !slices.Equal(got, want) {
		t.Errorf("stored %v, want %v", got, want)
	}
}

// TestApplyStoreFailure: a batch the store cannot commit changes nothing
// and fails with ErrUnavailable.
func TestApplyStoreFailure(t *testing.T) {
	fs := newFakeStore()
	r := registry.New(registry.Config{Store: fs, Now: newClock().now})
	ctx := context.Background()
	if _, err := r.Register(ctx, inst(t, "web", "w1", "10.0.0.1:80")); err != nil {
		t.Fatal(err)
	}
	before := render(r.Snapshot())
	fs.setFail(true)
	_, err := r.Apply(ctx, func(*registry.Snapshot) (registry.Batch, error) {
		return registry.Batch{Put: []*registry.Instance{inst(t, "web", "w2", "10.0.0.2:80")},
			Delete: []registry.Key{{Service: "web", ID: "w1"}}}, nil
	})
	if !errors.Is(err, registry.ErrUnavailable) {
		t.Fatalf("error %v, want ErrUnavailable", err)
	}
	if got := render(r.Snapshot()); got != before {
		t.Fatalf("snapshot after a failed commit\n%s\nwant\n%s", got, before)
	}
	if got := fs.keys(); !slices.Equal(got, []string{"web/w1"}) {
		t.Fatalf("stored %v after a failed commit", got)
	}
}

// TestApplyKeepsMaintenance: an instance replaced by a batch keeps its
// drain and registration time, like Register.
func TestApplyKeepsMaintenance(t *testing.T) {
	c := newClock()
	r := registry.New(registry.Config{Store: newFakeStore(), Now: c.now})
	ctx := context.Background()
	first, err := r.Register(ctx, inst(t, "web", "w1", "10.0.0.1:80"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.SetMaintenance(ctx, "web", "w1", true, "swap"); err != nil {
		t.Fatal(err)
	}
	c.advance(2 * time.Minute)
	snap, err := r.Apply(ctx, func(*registry.Snapshot) (registry.Batch, error) {
		return registry.Batch{Put: []*registry.Instance{inst(t, "web", "w1", "10.0.0.1:81")}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	in, _ := snap.Instance("web", "w1")
	if in.Maintenance == nil || in.Maintenance.Reason != "swap" || !in.Registered.Equal(first.Registered) || in.Port != 81 {
		t.Fatalf("replaced instance: maintenance %+v, registered %v (first %v), port %d", in.Maintenance, in.Registered, first.Registered, in.Port)
	}
}

// TestApplyPlansAgainstHead: concurrent batches that each insist on an
// absent key never both land; exactly one of them does.
func TestApplyPlansAgainstHead(t *testing.T) {
	fs := newFakeStore()
	r := registry.New(registry.Config{Store: fs, Now: newClock().now})
	const writers = 16
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.Apply(context.Background(), func(head *registry.Snapshot) (registry.Batch, error) {
				if _, ok := head.Instance("lock", "holder"); ok {
					return registry.Batch{}, errPrecondition
				}
				return registry.Batch{Put: []*registry.Instance{inst(t, "lock", "holder", fmt.Sprintf("10.0.0.%d:80", i+1))}}, nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	won := 0
	for err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, errPrecondition):
			t.Errorf("unexpected error %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d writers won, want exactly 1", won)
	}
}
