package registry

import (
	"context"
)

// Batch is a set of instance registrations and deregistrations that are
// written together.
type Batch struct {
	// Put registers or replaces instances (each as NewInstance returns
	// it), as Register does.
	Put []*Instance
	// Delete deregisters instances; a key that is not registered is
	// skipped.
	Delete []Key
}

// Apply writes a batch atomically: every change of it is stored durably
// and published in one snapshot, or nothing is. plan is called once, under
// the registry's write lock, with the head snapshot: the state the batch
// will be applied to, including writes accepted before it that are not
// yet durable. plan checks its preconditions against that state and
// returns the batch, or an error that aborts the write (and is returned
// as is). plan must not call the registry. Apply returns the snapshot
// that holds the batch (the current one when the batch changes nothing).
func (r *Registry) Apply(ctx context.Context, plan func(head *Snapshot) (Batch, error)) (*Snapshot, error) {
	return r.write(ctx, func(head *Snapshot) ([]Change, error) {
		b, err := plan(head)
		if err != nil {
			return nil, err
		}
		seen := make(map[Key]bool, len(b.Put)+len(b.Delete))
		changes := make([]Change, 0, len(b.Put)+len(b.Delete))
		for _, k := range b.Delete {
			if seen[k] {
				return nil, Invalid("instance %s is written twice in one batch", k)
			}
			seen[k] = true
			if _, ok := head.Instance(k.Service, k.ID); ok {
				changes = append(changes, Change{Op: OpDeleteInstance, Service: k.Service, ID: k.ID})
			}
		}
		for _, in := range b.Put {
			if in == nil || !ValidName(in.Service) || !ValidName(in.ID) || !in.Address.IsValid() || in.Port == 0 {
				return nil, Invalid("batch holds an instance that NewInstance did not make")
			}
			if seen[in.Key()] {
				return nil, Invalid("instance %s is written twice in one batch", in.Key())
			}
			seen[in.Key()] = true
		}
		for _, in := range b.Put {
			in = in.clone()
			in.Health = Health{}
			r.carryOver(head, in)
			changes = append(changes, Change{Op: OpPutInstance, Service: in.Service, Instance: in})
		}
		return changes, nil
	})
}

// carryOver prepares in for replacing the instance head holds under its
// key, if any: it keeps the registration time and maintenance, and the
// revision (and so the health) when the address, port and checks are
// unchanged; otherwise it allocates a new revision. Called with r.mu held.
func (r *Registry) carryOver(head *Snapshot, in *Instance) {
	in.Registered = r.now().UTC()
	in.Revision = 0
	if old, ok := head.Instance(in.Service, in.ID); ok {
		in.Registered = old.Registered
		in.Maintenance = old.Maintenance
		if sameTargets(old, in) {
			in.Revision = old.Revision
		}
	}
	if in.Revision == 0 {
		next := r.revision + 1
		if r.nextRev != nil {
			next = max(next, r.nextRev(r.revision))
		}
		r.revision = next
		in.Revision = next
	}
}
