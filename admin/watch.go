package admin

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"disco/registry"
)

// Blocking queries (Consul's contract): GET /v1/services and GET
// /v1/services/{service} answer with X-Disco-Index; given ?index=N they
// wait until their index differs from N (it passed N, or went back because
// the server restarted), at most ?wait= (default and cap MaxWait, less a
// random sixteenth so that waiters spread out), then answer as usual.
//
// A waiter costs its request's goroutine and nothing per change: the
// waiters of one service share one channel that the registry closes when a
// snapshot changing that service is published, and the waiters of the list
// wait on the snapshot's Changed channel.

// IndexHeader carries the index of an answer that can block.
const IndexHeader = "X-Disco-Index"

// MaxWait is the longest a blocking query waits, and its default wait.
const MaxWait = 5 * time.Minute

// blocking is what a request asks of a blocking query.
type blocking struct {
	on    bool // an index was given
	index uint64
	wait  time.Duration
}

// parseBlocking reads ?index= and ?wait=. A wait over MaxWait is cut to it.
func parseBlocking(r *http.Request) (blocking, error) {
	q := r.URL.Query()
	var b blocking
	if v := q.Get("index"); v != "" || q.Has("index") {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return b, errorf(http.StatusBadRequest, "index %q is not a number: give the %s of an earlier answer", v, IndexHeader)
		}
		b.on, b.index = true, n
	}
	b.wait = MaxWait
	if v := q.Get("wait"); v != "" {
		d, err := parseWait(v)
		if err != nil {
			return b, err
		}
		if d > 0 {
			b.wait = min(d, MaxWait)
		}
	}
	return b, nil
}

// parseWait reads a wait: a Go duration ("30s", "5m") or whole seconds.
func parseWait(v string) (time.Duration, error) {
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, errorf(http.StatusBadRequest, "wait %q is not a duration: give one such as 30s or 5m (at most %s)", v, MaxWait)
	}
	return d, nil
}

// jittered takes up to a sixteenth off d, so that waiters that came
// together do not all time out together.
func jittered(d time.Duration) time.Duration {
	if d < 16 {
		return d
	}
	return d - rand.N(d/16)
}

// await returns the snapshot to answer b from: at once without an index,
// otherwise the first whose index (as index computes it) differs from
// b.index, or the current one when the wait ends. watch returns a channel
// closed when index may have moved after snap, and a function to call when
// done with it. It returns nil when the request or the server ends first.
func (s *Server) await(ctx context.Context, w http.ResponseWriter, b blocking,
	index func(*registry.Snapshot) uint64, watch func(*registry.Snapshot) (<-chan struct{}, func())) *registry.Snapshot {
	snap := s.reg.Snapshot()
	if !b.on || index(snap) != b.index {
		return snap
	}
	wait := jittered(b.wait)
	// The answer may come long after the server's write timeout.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + writeTimeout))
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for index(snap) == b.index {
		changed, stop := watch(snap)
		select {
		case <-changed:
		case <-timer.C:
			stop()
			return s.reg.Snapshot()
		case <-ctx.Done():
			stop()
			return nil
		case <-s.quit.Done():
			stop()
			return s.reg.Snapshot()
		}
		stop()
		snap = s.reg.Snapshot()
	}
	return snap
}

// watchAll wakes on any change: the list's index is the snapshot version.
func watchAll(snap *registry.Snapshot) (<-chan struct{}, func()) { return snap.Changed(), func() {} }

func setIndex(w http.ResponseWriter, index uint64) {
	w.Header().Set(IndexHeader, strconv.FormatUint(index, 10))
}

// listServices answers GET /v1/services; its index is the registry
// version, which moves with every change of any service.
func (s *Server) listServices(w http.ResponseWriter, r *http.Request) error {
	b, err := parseBlocking(r)
	if err != nil {
		return err
	}
	snap := s.await(r.Context(), w, b, (*registry.Snapshot).Version, watchAll)
	if snap == nil {
		return r.Context().Err()
	}
	setIndex(w, snap.Version())
	writeJSON(w, http.StatusOK, s.serviceList(snap))
	return nil
}

// getService answers GET /v1/services/{service}; its index is the
// service's, which moves only when the service changes.
func (s *Server) getService(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r, "service", "service name")
	if err != nil {
		return err
	}
	b, err := parseBlocking(r)
	if err != nil {
		return err
	}
	index := func(snap *registry.Snapshot) uint64 { return snap.ServiceIndex(name) }
	watch := func(snap *registry.Snapshot) (<-chan struct{}, func()) { return s.reg.WatchService(snap, name) }
	snap := s.await(r.Context(), w, b, index, watch)
	if snap == nil {
		return r.Context().Err()
	}
	setIndex(w, index(snap))
	svc, ok := snap.Service(name)
	if !ok {
		return registry.NotFound("service %q is not registered", name)
	}
	writeJSON(w, http.StatusOK, s.serviceView(svc))
	return nil
}
