package registry

import "sync"

// serviceWatch wakes the readers waiting for a service to change: one
// channel per watched service, shared by all its waiters and closed when
// a snapshot that changes the service is published. A change wakes only
// the waiters of the services it touched.
type serviceWatch struct {
	mu sync.Mutex
	m  map[string]*waiters
}

type waiters struct {
	ch chan struct{}
	n  int
}

var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// notify wakes the waiters of the named services. Called by publish after
// the snapshot is stored.
func (w *serviceWatch) notify(names []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.m) == 0 {
		return
	}
	for _, name := range names {
		if ws := w.m[name]; ws != nil {
			close(ws.ch)
			delete(w.m, name)
		}
	}
}

// WatchService returns a channel that is closed once a snapshot newer than
// snap changes the named service (appears, changes or disappears). When
// snap is no longer current, the channel is closed already: look again.
// Call stop when done waiting, so that a service nobody waits for costs
// nothing. Thousands of waiters of one service share one channel.
func (r *Registry) WatchService(snap *Snapshot, name string) (changed <-chan struct{}, stop func()) {
	w := &r.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	if r.current.Load() != snap {
		return closedChan, func() {}
	}
	ws := w.m[name]
	if ws == nil {
		if w.m == nil {
			w.m = make(map[string]*waiters)
		}
		ws = &waiters{ch: make(chan struct{})}
		w.m[name] = ws
	}
	ws.n++
	return ws.ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		ws.n--
		if ws.n == 0 && w.m[name] == ws {
			delete(w.m, name)
		}
	}
}
