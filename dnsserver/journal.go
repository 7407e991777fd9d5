package dnsserver

import (
	"sync"

	"github.com/miekg/dns"
)

// The journal keeps the recent differences of the discovery zone, one per
// serial, so that IXFR (RFC 1995) can send a secondary only what changed
// since its serial. It is bounded both by the number of versions and by the
// bytes of records kept; the oldest differences go first. A secondary whose
// serial is older than the journal gets the whole zone, which is what
// RFC 1995 section 4 asks for. The journal lives in memory: after a
// restart, secondaries take one whole zone.

// Default bounds of the journal.
const (
	DefaultJournalVersions = 1000
	DefaultJournalBytes    = 16 << 20
)

// journal is the list of differences. Its methods are safe for concurrent
// use; the records it holds are never modified.
type journal struct {
	maxVersions int
	maxBytes    int

	mu      sync.Mutex
	entries []delta
	bytes   int
}

// delta is the difference between two consecutive serials.
type delta struct {
	from, to uint32
	del, add []dns.RR
	bytes    int
}

// rrCost estimates the memory a journal record takes: its wire length and
// the overhead of the Go value.
func rrCost(rr dns.RR) int { return dns.Len(rr) + 64 }

// add records the difference from serial from to serial to. A difference
// larger than the whole journal empties it: IXFR from older serials then
// gets the whole zone.
func (j *journal) add(from, to uint32, del, add []dns.RR) {
	d := delta{from: from, to: to, del: del, add: add}
	for _, rr := range del {
		d.bytes += rrCost(rr)
	}
	for _, rr := range add {
		d.bytes += rrCost(rr)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if d.bytes > j.maxBytes {
		j.entries, j.bytes = nil, 0
		return
	}
	j.entries = append(j.entries, d)
	j.bytes += d.bytes
	drop := 0
	for len(j.entries)-drop > j.maxVersions || j.bytes > j.maxBytes {
		j.bytes -= j.entries[drop].bytes
		drop++
	}
	if drop > 0 {
		j.entries = append([]delta(nil), j.entries[drop:]...)
	}
}

// since returns the differences from serial from to the newest one, oldest
// first; ok is false when from is not the start of one of them.
func (j *journal) since(from uint32) (deltas []delta, ok bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for i, d := range j.entries {
		if d.from == from {
			return append([]delta(nil), j.entries[i:]...), true
		}
	}
	return nil, false
}

// between returns the differences that lead from serial from to serial to,
// oldest first; ok is false when the journal does not hold the whole way.
func (j *journal) between(from, to uint32) (deltas []delta, ok bool) {
	all, ok := j.since(from)
	if !ok {
		return nil, false
	}
	for i, d := range all {
		if d.to == to {
			return all[:i+1], true
		}
	}
	return nil, false
}

// len returns the number of versions and the bytes kept.
func (j *journal) len() (versions, bytes int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.entries), j.bytes
}

// condense merges consecutive differences into one: the records deleted
// from the first version and the records added by the last, leaving out
// those added and deleted again in between (RFC 1995 section 5 allows a
// server to send the condensed form).
func condense(deltas []delta) (del, add []dns.RR) {
	if len(deltas) == 1 {
		return deltas[0].del, deltas[0].add
	}
	type state struct {
		rr      dns.RR
		deleted bool // present in the first version and deleted since
		added   bool // absent from the first version and added since
	}
	var order []string
	recs := make(map[string]*state)
	get := func(rr dns.RR) *state {
		k := rrKey(rr)
		s, ok := recs[k]
		if !ok {
			s = &state{rr: rr}
			recs[k] = s
			order = append(order, k)
		}
		return s
	}
	for _, d := range deltas {
		for _, rr := range d.del {
			s := get(rr)
			if s.added {
				s.added = false
			} else {
				s.deleted = true
			}
		}
		for _, rr := range d.add {
			s := get(rr)
			if s.deleted {
				s.deleted = false
			} else {
				s.added = true
			}
			s.rr = rr
		}
	}
	for _, k := range order {
		switch s := recs[k]; {
		case s.deleted:
			del = append(del, s.rr)
		case s.added:
			add = append(add, s.rr)
		}
	}
	return del, add
}
