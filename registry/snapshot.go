package registry

import (
	"cmp"
	"hash/fnv"
	"slices"
	"time"
)

// shards splits the service index so that a write copies one shard's map,
// not the whole index: a write costs O(changed service + services/shards).
const shards = 256

// shard is one part of the service index. Snapshots share the shards no
// write touched, which also makes finding what changed between two
// snapshots cheap.
type shard struct {
	m map[string]*Service
}

func (sh *shard) get(name string) (*Service, bool) {
	if sh == nil {
		return nil, false
	}
	svc, ok := sh.m[name]
	return svc, ok
}

func (sh *shard) len() int {
	if sh == nil {
		return 0
	}
	return len(sh.m)
}

// Snapshot is one consistent, immutable version of the registry. Readers get
// it with Registry.Snapshot and may keep it as long as they like; nothing
// reachable from it ever changes.
type Snapshot struct {
	version   uint64
	updated   time.Time
	index     [shards]*shard
	services  int
	instances int
	// touched names the services that differ from the previous version.
	touched []string
	changed chan struct{}
}

func emptySnapshot(now time.Time) *Snapshot {
	return &Snapshot{updated: now, changed: make(chan struct{})}
}

// Version increases by one with every published change.
func (s *Snapshot) Version() uint64 { return s.version }

// Updated is when this version was published.
func (s *Snapshot) Updated() time.Time { return s.updated }

// Changed is closed when a newer snapshot is published.
func (s *Snapshot) Changed() <-chan struct{} { return s.changed }

// Touched returns the names of the services that changed between the
// previous version and this one. The slice is shared.
func (s *Snapshot) Touched() []string { return s.touched }

// ChangedSince returns the names of the services that were added, removed
// or changed between old and s, in no particular order. It looks only at
// the parts of the index that differ, so its cost follows the size of the
// change, not of the registry.
func (s *Snapshot) ChangedSince(old *Snapshot) []string {
	var names []string
	for i := range s.index {
		a, b := old.index[i], s.index[i]
		if a == b {
			continue
		}
		if b != nil {
			for name, svc := range b.m {
				if prev, ok := a.get(name); !ok || prev != svc {
					names = append(names, name)
				}
			}
		}
		if a != nil {
			for name := range a.m {
				if _, ok := b.get(name); !ok {
					names = append(names, name)
				}
			}
		}
	}
	return names
}

// Len returns the number of services and of instances.
func (s *Snapshot) Len() (services, instances int) { return s.services, s.instances }

// Service returns the service with the canonical name.
func (s *Snapshot) Service(name string) (*Service, bool) {
	svc, ok := s.index[shardOf(name)].get(name)
	return svc, ok
}

// Instance returns one instance.
func (s *Snapshot) Instance(service, id string) (*Instance, bool) {
	svc, ok := s.Service(service)
	if !ok {
		return nil, false
	}
	return svc.Instance(id)
}

// Services returns every service sorted by name.
func (s *Snapshot) Services() []*Service {
	out := make([]*Service, 0, s.services)
	for _, sh := range s.index {
		if sh == nil {
			continue
		}
		for _, svc := range sh.m {
			out = append(out, svc)
		}
	}
	slices.SortFunc(out, func(a, b *Service) int { return cmp.Compare(a.name, b.name) })
	return out
}

// shardOf hashes a name (FNV-1a) to its shard.
func shardOf(name string) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % shards)
}

// Op is the kind of a Change.
type Op uint8

// The kinds of durable change.
const (
	// OpPutInstance registers or replaces Change.Instance.
	OpPutInstance Op = iota + 1
	// OpDeleteInstance removes instance Change.ID of Change.Service.
	OpDeleteInstance
	// OpPutService sets the settings of Change.Service.
	OpPutService
)

func (o Op) String() string {
	switch o {
	case OpPutInstance:
		return "put-instance"
	case OpDeleteInstance:
		return "delete-instance"
	case OpPutService:
		return "put-service"
	}
	return "unknown"
}

// Change is one durable change to the registry, as the Store records it.
// Changes carry whole records, so applying the same sequence always gives the
// same state.
type Change struct {
	Op       Op
	Service  string
	ID       string    // OpDeleteInstance
	Instance *Instance // OpPutInstance
	Settings Settings  // OpPutService
}

// builder makes the next snapshot from a base, copying each touched shard
// and service once however many changes touch it.
type builder struct {
	base    *Snapshot
	next    *Snapshot
	now     time.Time
	shards  [shards]bool
	touched map[string]*Service // private copies of the changed services
}

func newBuilder(base *Snapshot, now time.Time) *builder {
	next := *base
	next.touched = nil
	return &builder{base: base, next: &next, now: now, touched: make(map[string]*Service)}
}

// service returns a private copy of the named service, or nil.
func (b *builder) service(name string, create bool) *Service {
	if svc, ok := b.touched[name]; ok {
		return svc
	}
	var svc *Service
	if old, ok := b.next.index[shardOf(name)].get(name); ok {
		svc = old.clone()
	} else if create {
		svc = &Service{name: name}
	} else {
		return nil
	}
	b.touched[name] = svc
	return svc
}

func (b *builder) apply(c Change) {
	switch c.Op {
	case OpPutInstance:
		svc := b.service(c.Service, true)
		in := c.Instance.clone()
		if old, ok := svc.Instance(in.ID); ok && old.Revision == in.Revision {
			in.Health = old.Health
		} else {
			in.Health = initialHealth(in, b.now)
		}
		svc.put(in)
	case OpDeleteInstance:
		if svc := b.service(c.Service, false); svc != nil {
			svc.remove(c.ID)
		}
	case OpPutService:
		svc := b.service(c.Service, true)
		svc.settings = c.Settings
		svc.explicit = true
	}
}

// setHealth records h for instance k if it is still at revision rev. It
// reports whether anything changed.
func (b *builder) setHealth(k Key, rev uint64, h Health) bool {
	cur, ok := b.touched[k.Service]
	if !ok {
		cur, ok = b.next.index[shardOf(k.Service)].get(k.Service)
	}
	if !ok {
		return false
	}
	in, ok := cur.Instance(k.ID)
	if !ok || in.Revision != rev || (in.Health.Status == h.Status && in.Health.Output == h.Output) {
		return false
	}
	svc := b.service(k.Service, false)
	c := *in
	c.Health = h
	svc.put(&c)
	return true
}

// build finishes the touched services and returns the next snapshot (not yet
// published: version and channel are set by the registry).
func (b *builder) build() *Snapshot {
	n := b.next
	for name, svc := range b.touched {
		sh := shardOf(name)
		if !b.shards[sh] {
			m := &shard{m: make(map[string]*Service, n.index[sh].len()+1)}
			if old := n.index[sh]; old != nil {
				for k, v := range old.m {
					m.m[k] = v
				}
			}
			n.index[sh] = m
			b.shards[sh] = true
		}
		old, existed := n.index[sh].m[name]
		if existed {
			n.services--
			n.instances -= len(old.all)
		}
		if len(svc.all) == 0 && !svc.explicit {
			delete(n.index[sh].m, name)
		} else {
			svc.finish()
			n.index[sh].m[name] = svc
			n.services++
			n.instances += len(svc.all)
		}
		n.touched = append(n.touched, name)
	}
	slices.Sort(n.touched)
	n.updated = b.now
	return n
}
