package registry_test

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"
	"sync"

	"disco/registry"
)

// errDiskFull is what fakeStore.Commit fails with when told to.
var errDiskFull = errors.New("disk full")

// fakeStore is an in-memory registry.Store that can fail, or hold commits,
// on demand. The real store (disco/store) is tested against the registry in
// commit_test.go.
type fakeStore struct {
	mu        sync.Mutex
	services  map[string]registry.Settings
	instances map[registry.Key]*registry.Instance
	commits   []int // changes per successful commit
	// fail makes the next commits fail.
	fail bool
	// gate, when set, holds every commit until it is closed.
	gate chan struct{}
}

func newFakeStore() *fakeStore {
	return &fakeStore{services: map[string]registry.Settings{}, instances: map[registry.Key]*registry.Instance{}}
}

func (f *fakeStore) Load(context.Context) (*registry.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := &registry.State{Services: maps.Clone(f.services)}
	for _, k := range slices.SortedFunc(maps.Keys(f.instances), compareKeys) {
		st.Instances = append(st.Instances, f.instances[k])
	}
	return st, nil
}

func (f *fakeStore) Commit(_ context.Context, changes []registry.Change) error {
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errDiskFull
	}
	for _, c := range changes {
		switch c.Op {
		case registry.OpPutInstance:
			in := *c.Instance
			f.instances[in.Key()] = &in
		case registry.OpDeleteInstance:
			delete(f.instances, registry.Key{Service: c.Service, ID: c.ID})
		case registry.OpPutService:
			f.services[c.Service] = c.Settings
		}
	}
	f.commits = append(f.commits, len(changes))
	return nil
}

func (f *fakeStore) setFail(fail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = fail
}

// keys returns the stored instances' keys, sorted.
func (f *fakeStore) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.instances {
		out = append(out, k.String())
	}
	slices.Sort(out)
	return out
}

func compareKeys(a, b registry.Key) int {
	return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.ID, b.ID))
}
