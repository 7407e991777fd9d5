package health

import (
	"container/heap"
	"hash/fnv"
	"strconv"
	"time"

	"disco/registry"
)

// maxFirstDelay bounds how long after an instance appears its first probe
// runs: the first probe comes within min(interval, maxFirstDelay).
const maxFirstDelay = time.Second

// phase returns the fixed offset within the interval at which check n of
// instance k is probed, the same on every server and after every restart:
// probes of one check are due whenever the Unix clock modulo the interval
// equals its phase, so that many checks with one interval are spread evenly
// over it (the scrape offset of Prometheus, from a hash of the target).
func phase(k registry.Key, n int, interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(k.Service + "/" + k.ID + "/" + strconv.Itoa(n)))
	return time.Duration(h.Sum64() % uint64(interval))
}

// slotAfter returns the first time strictly after t whose Unix time modulo
// interval is ph.
func slotAfter(t time.Time, interval, ph time.Duration) time.Time {
	iv := int64(interval)
	off := (t.UnixNano() - int64(ph)) % iv
	if off < 0 {
		off += iv
	}
	return t.Add(time.Duration(iv - off))
}

// firstProbe returns when the first probe of a check that appeared at t
// runs: at its regular slot if that comes within min(interval,
// maxFirstDelay), otherwise after a delay below that bound derived from its
// phase. Either way it is deterministic and spreads many new checks over
// the bound.
func firstProbe(t time.Time, interval, ph time.Duration) time.Time {
	bound := min(interval, maxFirstDelay)
	if next := slotAfter(t.Add(-1), interval, ph); next.Sub(t) < bound {
		return next
	}
	return t.Add(ph % bound)
}

// nextProbe returns when the probe after the one due at due runs, as seen
// at now: the check's next slot, or the first slot after now when the
// schedule fell behind (missed slots are skipped, not made up).
func nextProbe(due, now time.Time, interval, ph time.Duration) time.Time {
	next := slotAfter(due, interval, ph)
	if !next.After(now) {
		next = slotAfter(now, interval, ph)
	}
	return next
}

// eventKind says what happens when an event is due.
type eventKind uint8

const (
	// probeEvent runs a probe of an http or tcp check.
	probeEvent eventKind = iota + 1
	// expireEvent ends the grace of a ttl check's last heartbeat.
	expireEvent
	// reapEvent deregisters an instance whose check stayed critical for its
	// deregister_after.
	reapEvent
)

// event is a scheduled action on a check. Each check owns its events, so
// each is in the queue at most once.
type event struct {
	at   time.Time
	kind eventKind
	c    *check
	idx  int // position in the queue, -1 when not queued
}

// queue is a min-heap of events by time.
type queue []*event

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q queue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].idx, q[j].idx = i, j
}

func (q *queue) Push(x any) {
	e := x.(*event)
	e.idx = len(*q)
	*q = append(*q, e)
}

func (q *queue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	e.idx = -1
	return e
}

// schedule queues e at time at, or moves it there. It reports whether e is
// now the earliest event.
func (q *queue) schedule(e *event, at time.Time) bool {
	e.at = at
	if e.idx >= 0 {
		heap.Fix(q, e.idx)
	} else {
		heap.Push(q, e)
	}
	return e.idx == 0
}

// cancel takes e out of the queue if it is queued.
func (q *queue) cancel(e *event) {
	if e.idx >= 0 {
		heap.Remove(q, e.idx)
	}
}

// pop removes and returns the earliest event.
func (q *queue) pop() *event { return heap.Pop(q).(*event) }
