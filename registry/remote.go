package registry

// ApplyRemote applies changes that are already durable in the Store but were
// not made through this registry: another server sharing the store made
// them. It publishes them at once.
//
// It first waits for a commit of this registry that is in flight to end.
// Then, holding the lock that keeps the next commit from starting, it asks
// skip (when not nil) about each change by its index and leaves out those it
// returns true for: a shared store uses it to leave out changes the
// registry already reflects, such as its own commits coming back to it, or
// older changes it has since overwritten. The other changes are applied, in
// order, to the published snapshot; writes accepted but not yet committed
// are planned again on top of the result, because the store will order them
// after. An instance keeps its health when its revision is unchanged. It
// returns how many changes were applied.
func (r *Registry) ApplyRemote(changes []Change, skip func(i int) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.committing {
		r.cond.Wait()
	}
	now := r.now()
	b := newBuilder(r.current.Load(), now)
	n := 0
	for i, c := range changes {
		if skip != nil && skip(i) {
			continue
		}
		if c.Op == OpPutInstance && c.Instance == nil {
			continue
		}
		b.apply(c)
		if c.Op == OpPutInstance {
			// Revisions allocated here must not reuse one seen elsewhere.
			r.revision = max(r.revision, c.Instance.Revision)
		}
		n++
	}
	if n == 0 {
		return 0
	}
	next := b.build()
	r.head = next
	if len(r.queue) > 0 {
		hb := newBuilder(next, now)
		for _, p := range r.queue {
			for _, c := range p.changes {
				hb.apply(c)
			}
		}
		r.head = hb.build()
	}
	r.publish(next)
	return n
}
