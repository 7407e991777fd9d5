package dnsserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Response rate limiting (RRL), as BIND and Knot do it: a spoofed flood
// of UDP queries must not turn disco into an amplifier aimed at the
// spoofed address. Every UDP response to a client prefix (IPv4 /24, IPv6
// /56 by default) takes a token from that prefix's bucket; a prefix out of
// tokens gets no answer, except that every Slip-th limited query gets a
// truncated one (TC=1, no records, never larger than the query), so a real
// client behind a limited prefix retries over TCP, which is not limited.

// Defaults of RRLConfig.
const (
	DefaultRRLSlip          = 2
	DefaultRRLIPv4PrefixLen = 24
	DefaultRRLIPv6PrefixLen = 56
	DefaultRRLTableSize     = 1 << 16
)

// RRLConfig configures response rate limiting of UDP answers. The zero
// value turns it off.
type RRLConfig struct {
	// Rate is how many UDP responses per second each client prefix gets;
	// 0 turns rate limiting off.
	Rate int
	// Burst is how many responses a prefix may get at once after a quiet
	// spell; 0 means Rate (one second's worth).
	Burst int
	// Slip sends every Slip-th limited response truncated (TC=1, no
	// records) and drops the others; 0 drops them all, 1 truncates them
	// all. disco serve defaults it to DefaultRRLSlip.
	Slip int
	// IPv4PrefixLen and IPv6PrefixLen are the lengths of the prefixes
	// that share a bucket; 0 means 24 and 56.
	IPv4PrefixLen int
	IPv6PrefixLen int
	// TableSize is how many prefixes are tracked at once (rounded up to a
	// power of two); 0 means 65536. Memory is fixed: 24 bytes a prefix.
	TableSize int
}

// Validate reports every problem with c.
func (c RRLConfig) Validate() error {
	var errs []error
	if c.Rate < 0 || c.Rate > 1_000_000 {
		errs = append(errs, fmt.Errorf("rrl rate %d: want 0 (off) to 1000000 responses a second", c.Rate))
	}
	if c.Burst < 0 || c.Burst > 1_000_000 {
		errs = append(errs, fmt.Errorf("rrl burst %d: want 0 (the rate) to 1000000", c.Burst))
	}
	if c.Slip < 0 || c.Slip > 100 {
		errs = append(errs, fmt.Errorf("rrl slip %d: want 0 (drop all) to 100", c.Slip))
	}
	if c.IPv4PrefixLen < 0 || c.IPv4PrefixLen > 32 {
		errs = append(errs, fmt.Errorf("rrl IPv4 prefix length %d: want 1-32", c.IPv4PrefixLen))
	}
	if c.IPv6PrefixLen < 0 || c.IPv6PrefixLen > 128 {
		errs = append(errs, fmt.Errorf("rrl IPv6 prefix length %d: want 1-128", c.IPv6PrefixLen))
	}
	if c.TableSize < 0 || c.TableSize > 1<<24 {
		errs = append(errs, fmt.Errorf("rrl table size %d: want 0 (default) to %d", c.TableSize, 1<<24))
	}
	return errors.Join(errs...)
}

// rrlVerdict is what becomes of one response.
type rrlVerdict uint8

const (
	rrlAnswer rrlVerdict = iota
	rrlDrop
	rrlSlip
)

// rrlEntry is one prefix's bucket, kept as a GCRA schedule: tat is the
// time (ns since the limiter's epoch) at which the bucket is full again.
type rrlEntry struct {
	key     uint64 // hash of the prefix; 0: empty
	tat     int64
	limited uint32 // limited responses since the last answer, for slip
}

// rrlStripes is the number of locks guarding the table.
const rrlStripes = 256

// rrl is a fixed-size, allocation-free table of token buckets keyed by a
// seeded hash of the client prefix. Each key may sit in one of two
// adjacent slots; a new key takes an empty slot, else the one whose bucket
// is fullest (idle longest). Evicting a limited prefix gives it a fresh
// burst: with 64k slots that takes 64k other active prefixes, so it is
// bounded. It is safe for concurrent use.
type rrl struct {
	interval  int64 // ns per response at the steady rate
	tolerance int64 // how far tat may run ahead of now: (burst-1) intervals
	slip      uint32
	v4bits    int
	v6bits    int
	seed      uint64
	epoch     time.Time
	mask      uint64
	table     []rrlEntry
	locks     [rrlStripes]struct {
		sync.Mutex
		_ [56]byte // one cache line each
	}
}

// newRRL returns a limiter for c (valid, Rate > 0) whose clock starts at
// epoch: the times given to allow must not be earlier.
func newRRL(c RRLConfig, epoch time.Time) *rrl {
	burst := c.Burst
	if burst == 0 {
		burst = c.Rate
	}
	size := c.TableSize
	if size == 0 {
		size = DefaultRRLTableSize
	}
	n := 2
	for n < size {
		n <<= 1
	}
	r := &rrl{
		interval: int64(time.Second) / int64(c.Rate),
		slip:     uint32(c.Slip),
		v4bits:   c.IPv4PrefixLen,
		v6bits:   c.IPv6PrefixLen,
		seed:     rand.Uint64(),
		epoch:    epoch,
		mask:     uint64(n - 1),
		table:    make([]rrlEntry, n),
	}
	r.tolerance = int64(burst-1) * r.interval
	if r.v4bits == 0 {
		r.v4bits = DefaultRRLIPv4PrefixLen
	}
	if r.v6bits == 0 {
		r.v6bits = DefaultRRLIPv6PrefixLen
	}
	return r
}

// mix is the splitmix64 finalizer.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// prefixMask returns the top bits of a 64-bit mask, of which the first
// bits (0-64) are set.
func prefixMask(bits int) uint64 {
	if bits <= 0 {
		return 0
	}
	return ^uint64(0) << (64 - min(bits, 64))
}

// key returns the table key of a's prefix, or 0 for an invalid address.
func (r *rrl) key(a netip.Addr) uint64 {
	a = a.Unmap()
	var k uint64
	switch {
	case a.Is4():
		b := a.As4()
		v := uint64(binary.BigEndian.Uint32(b[:])) << 32
		k = mix(mix(r.seed^4) ^ v&prefixMask(r.v4bits))
	case a.Is6():
		b := a.As16()
		hi := binary.BigEndian.Uint64(b[:8]) & prefixMask(r.v6bits)
		lo := binary.BigEndian.Uint64(b[8:]) & prefixMask(r.v6bits-64)
		k = mix(mix(mix(r.seed^6)^hi) ^ lo)
	default:
		return 0
	}
	if k == 0 {
		k = 1
	}
	return k
}

// allow decides the fate of one response to the prefix with key k at
// time now.
func (r *rrl) allow(k uint64, now time.Time) rrlVerdict {
	t := int64(now.Sub(r.epoch))
	i := k & r.mask &^ 1
	mu := &r.locks[(i>>1)%rrlStripes]
	mu.Lock()
	e := &r.table[i]
	if e.key != k {
		e2 := &r.table[i+1]
		switch {
		case e2.key == k:
			e = e2
		case e.key != 0 && (e2.key == 0 || e2.tat < e.tat):
			e = e2
			*e = rrlEntry{key: k}
		default:
			*e = rrlEntry{key: k}
		}
	}
	e.tat = max(e.tat, t)
	if e.tat-t <= r.tolerance {
		e.tat += r.interval
		e.limited = 0
		mu.Unlock()
		return rrlAnswer
	}
	e.limited++
	n := e.limited
	mu.Unlock()
	if r.slip > 0 && n%r.slip == 0 {
		return rrlSlip
	}
	return rrlDrop
}

// rateLimit applies RRL to the UDP query q at now.
func (s *Server) rateLimit(q *Query, now time.Time) RRLAction {
	k := s.rrl.key(q.Remote.Addr())
	if k == 0 {
		return RRLNone
	}
	switch s.rrl.allow(k, now) {
	case rrlSlip:
		return RRLSlip
	case rrlDrop:
		return RRLDrop
	}
	return RRLNone
}

// slipResponse appends to out the truncated answer to the query pkt: its
// header with QR and TC set, its question and, when the query has an OPT
// of version 0, an OPT of our own; no records. It is never larger than the
// query. It returns nil for a packet that gets no answer at all (see
// readMessage).
func slipResponse(pkt, out []byte) []byte {
	m, fault := readMessage(pkt)
	if fault == msgNoHeader || fault == msgNoQuestion || m.response() {
		return nil
	}
	h := len(out)
	out = appendBareAnswer(out, pkt, &m, dns.RcodeSuccess, true)
	if fault == msgOK && m.edns() && m.ednsVersion() == 0 {
		out = append(out, 0, 0, 41, UDPSize>>8, UDPSize&0xff, 0, 0, byte(m.ednsTTL>>8)&0x80, 0, 0, 0)
		out[h+11] = 1
	}
	return out
}
