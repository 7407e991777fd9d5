package dnsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"time"
	"unsafe"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/miekg/dns"

	"disco/registry"
)

// The UDP fast path answers the common query — one question, class IN,
// optionally one OPT record — from responses kept pre-packed in wire
// format, keyed by the raw question. A hit costs a cache lookup, a check
// that the registry service it was built from is still current, a copy and
// three patches (ID, RD/CD flags, the question's case). Everything else
// takes the full miekg/dns path.

// maxVariants is how many differently ordered copies of an answer are kept;
// each hit picks one at random, so load spreads over the instances.
const maxVariants = 6

// DefaultCacheSize is the default number of cached answers.
const DefaultCacheSize = 50000

// wireQuery is what the fast path reads from a query packet.
type wireQuery struct {
	qnameEnd int // offset just past the question name
	qtype    uint16
	edns     bool
	do       bool
	size     uint16 // the client's EDNS payload size
}

// parseWireQuery checks that pkt is a plain query the fast path can answer
// and appends its cache key to key: the lower-cased question name in wire
// form, the type, and the EDNS shape (DO bit and size limit).
func parseWireQuery(pkt, key []byte) (q wireQuery, _ []byte, ok bool) {
	if len(pkt) < 12+1+4 {
		return q, key, false
	}
	// QR=0, opcode QUERY, no TC; one question, no answer or authority
	// records, at most one additional (the OPT).
	if pkt[2]&0xfa != 0 || binary.BigEndian.Uint16(pkt[4:]) != 1 ||
		pkt[6]|pkt[7]|pkt[8]|pkt[9] != 0 || pkt[10] != 0 || pkt[11] > 1 {
		return q, key, false
	}
	off := 12
	for {
		if off >= len(pkt) {
			return q, key, false
		}
		l := int(pkt[off])
		if l == 0 {
			key = append(key, 0)
			off++
			break
		}
		if l > 63 || off+1+l > len(pkt) || off+1+l-12 > 254 {
			return q, key, false // compression pointer, bad label or too long
		}
		key = append(key, byte(l))
		for _, c := range pkt[off+1 : off+1+l] {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			key = append(key, c)
		}
		off += 1 + l
	}
	if off+4 > len(pkt) || binary.BigEndian.Uint16(pkt[off+2:]) != dns.ClassINET {
		return q, key, false
	}
	q.qnameEnd = off
	q.qtype = binary.BigEndian.Uint16(pkt[off:])
	switch q.qtype {
	case dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeANY:
		return q, key, false
	}
	off += 4
	if pkt[11] == 1 {
		// The OPT: root owner, type 41, class = payload size, TTL =
		// extended rcode, version, flags; options are ignored.
		if off+11 > len(pkt) || pkt[off] != 0 || binary.BigEndian.Uint16(pkt[off+1:]) != dns.TypeOPT ||
			pkt[off+6] != 0 { // version 0 only
			return q, key, false
		}
		q.edns = true
		q.size = binary.BigEndian.Uint16(pkt[off+3:])
		q.do = pkt[off+7]&0x80 != 0
		rdlen := int(binary.BigEndian.Uint16(pkt[off+9:]))
		off += 11 + rdlen
	}
	if off != len(pkt) {
		return q, key, false // trailing bytes, or options overrun
	}
	limit := uint16(minUDPSize)
	shape := byte(0)
	if q.edns {
		limit = min(max(q.size, minUDPSize), UDPSize)
		shape = 1
		if q.do {
			shape |= 2
		}
	}
	key = binary.BigEndian.AppendUint16(key, q.qtype)
	key = append(key, shape)
	key = binary.BigEndian.AppendUint16(key, limit)
	return q, key, true
}

// cached is a pre-packed answer and what it was computed from.
type cached struct {
	zgen      uint64 // the zones' generation
	service   string
	svc       *registry.Service
	all       bool   // depends on the whole registry at version
	version   uint64 // the registry version, with all
	variants  [][]byte
	rcode     int
	truncated bool
	// addr and hasAddr: see dependency.
	addr    netip.Addr
	hasAddr bool
	// serialAt holds, per variant, the offsets of the discovery zone's
	// SOA serials in it, rewritten with the current serial on every hit:
	// a new serial does not make negative answers stale.
	serialAt [][]int
}

// valid reports whether the answer still holds for snap and the zones of
// generation zgen.
func (c *cached) valid(snap *registry.Snapshot, zgen uint64) bool {
	if c.zgen != zgen {
		return false
	}
	if c.all && snap.Version() != c.version {
		return false
	}
	if c.addr.IsValid() && snap.HasAddress(c.addr) != c.hasAddr {
		return false
	}
	if c.service == "" {
		return true
	}
	svc, _ := snap.Service(c.service)
	return svc == c.svc
}

// answerCache holds pre-packed answers.
type answerCache struct {
	lru *lru.Cache[string, *cached]
}

func newAnswerCache(size int) *answerCache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	c, err := lru.New[string, *cached](size)
	if err != nil {
		panic(err) // only for a non-positive size, excluded above
	}
	return &answerCache{lru: c}
}

// get looks key up without copying it.
func (a *answerCache) get(key []byte) (*cached, bool) {
	return a.lru.Get(unsafe.String(unsafe.SliceData(key), len(key)))
}

// scratch is per-goroutine working memory of the UDP path.
type scratch struct {
	key []byte
	out []byte
	// conn is the socket the packets came in on, where answers computed
	// later (UPDATE) are sent; nil answers them in place.
	conn *net.UDPConn
	// from is the client of the packet being answered (zero when the
	// loop does not decode it); transfer rules match it.
	from netip.AddrPort
}

func newScratch() *scratch {
	return &scratch{key: make([]byte, 0, 300), out: make([]byte, 0, dns.MaxMsgSize)}
}

// serveUDP answers one UDP query packet from the client at from. It
// returns the response packet (in s's memory, valid until the next call)
// or nil to stay silent. from is only read by the query log: callers may
// pass the zero value when h.qlog is nil.
func (h *Handler) serveUDP(pkt []byte, from netip.AddrPort, s *scratch) []byte {
	s.from = from
	if isUpdate(pkt) {
		return h.serveUpdateUDP(pkt, from, s.conn)
	}
	if h.qlog != nil {
		return h.serveUDPLogged(pkt, from, s)
	}
	out, _, _ := h.answerUDP(pkt, s)
	return out
}

// answerUDP answers one UDP query packet like serveUDP and also returns
// the query type and response code counted.
func (h *Handler) answerUDP(pkt []byte, s *scratch) (out []byte, qtype uint16, rcode int) {
	q, key, ok := parseWireQuery(pkt, s.key[:0])
	s.key = key
	if !ok {
		return h.slowUDP(pkt, s)
	}
	st := h.zone.current()
	snap, zs := st.snap, st.zs
	var zgen uint64
	if zs != nil {
		zgen = zs.Generation()
	}
	c, hit := h.cache.get(key)
	if !hit || !c.valid(snap, zgen) {
		h.stats.cacheMisses.Add(1)
		c = h.build(key, q, st, zgen)
		if c == nil {
			return h.slowUDP(pkt, s)
		}
	} else {
		h.stats.cacheHits.Add(1)
	}
	i := 0
	if len(c.variants) > 1 {
		i = rand.IntN(len(c.variants))
	}
	out = append(s.out[:0], c.variants[i]...)
	if c.serialAt != nil {
		for _, off := range c.serialAt[i] {
			binary.BigEndian.PutUint32(out[off:], st.serial)
		}
	}
	out[0], out[1] = pkt[0], pkt[1]              // ID
	out[2] = out[2]&^0x01 | pkt[2]&0x01          // RD copied
	out[3] = out[3]&^0x10 | pkt[3]&0x10          // CD copied
	copy(out[12:q.qnameEnd], pkt[12:q.qnameEnd]) // the question as sent
	h.stats.count(transportUDP, q.qtype, c.rcode)
	if c.truncated {
		h.stats.truncated.Add(1)
	}
	return out, q.qtype, c.rcode
}

// build computes and caches the answer for a fast-path key.
func (h *Handler) build(key []byte, q wireQuery, st *zoneState, zgen uint64) *cached {
	name, _, err := dns.UnpackDomainName(key, 0)
	if err != nil {
		return nil
	}
	req := new(dns.Msg)
	req.Question = []dns.Question{{Name: name, Qtype: q.qtype, Qclass: dns.ClassINET}}
	if q.edns {
		req.SetEdns0(q.size, q.do)
	}
	m, dep := h.reply(req, st)
	if m == nil || m.Rcode == dns.RcodeServerFailure {
		return nil
	}
	limit := sizeLimit(req, true)
	answers := m.Answer
	n := min(len(answers), maxVariants)
	c := &cached{zgen: zgen, service: strings.Clone(dep.service), svc: dep.svc, all: dep.all, version: dep.version, rcode: m.Rcode, variants: make([][]byte, 0, max(n, 1)),
		addr: dep.addr, hasAddr: dep.hasAddr}
	stamped := hasZoneSOA(m, h.cfg.Domain)
	rotated := make([]dns.RR, len(answers))
	start := 0
	if len(answers) > 0 {
		start = rand.IntN(len(answers))
	}
	for i := range max(n, 1) {
		v := *m
		v.Extra = append([]dns.RR(nil), m.Extra...)
		for j := range answers {
			rotated[j] = answers[(start+i+j)%len(answers)]
		}
		v.Answer = append([]dns.RR(nil), rotated...)
		fit(&v, limit)
		wire, err := v.Pack()
		if err != nil {
			h.log.Error("pack answer", "qname", name, "err", err)
			return nil
		}
		c.variants = append(c.variants, wire)
		c.truncated = c.truncated || v.Truncated
		if stamped {
			c.serialAt = append(c.serialAt, soaSerialOffsets(wire, h.cfg.Domain))
		}
	}
	h.cache.lru.Add(string(key), c)
	return c
}

// slowUDP answers a packet the fast path does not handle with the full
// miekg/dns path.
func (h *Handler) slowUDP(pkt []byte, s *scratch) (out []byte, qtype uint16, rcode int) {
	req := new(dns.Msg)
	if err := req.Unpack(pkt); err != nil {
		out := formErr(pkt, s)
		if out == nil {
			h.stats.dropped.Add(1)
		} else {
			h.stats.count(transportUDP, 0, dns.RcodeFormatError)
		}
		return out, 0, dns.RcodeFormatError
	}
	if needsServe(req) {
		// Signed, or a zone transfer: the path that checks TSIG.
		w := &packetWriter{buf: s.out[:0]}
		res := h.serve(context.Background(), Request{Wire: pkt, Msg: req, Remote: s.from}, w)
		if !res.answered || w.out == nil {
			h.stats.dropped.Add(1)
			return nil, 0, 0
		}
		h.stats.count(transportUDP, qtypeOf(req), res.rcode)
		if res.truncated {
			h.stats.truncated.Add(1)
		}
		return w.out, qtypeOf(req), res.rcode
	}
	resp := h.Respond(req, true)
	if resp == nil {
		h.stats.dropped.Add(1)
		return nil, 0, 0
	}
	out, err := resp.PackBuffer(s.out[:cap(s.out)])
	if err != nil {
		h.log.Debug("pack response", "err", err)
		return nil, 0, 0
	}
	h.stats.count(transportUDP, qtypeOf(req), resp.Rcode)
	if resp.Truncated {
		h.stats.truncated.Add(1)
	}
	return out, qtypeOf(req), resp.Rcode
}

// formErr answers a packet that does not parse: FORMERR with the header's
// ID when there is a header of a query, silence otherwise.
func formErr(pkt []byte, s *scratch) []byte {
	if len(pkt) < 12 || pkt[2]&0x80 != 0 {
		return nil
	}
	out := append(s.out[:0], pkt[:12]...)
	out[2] = 0x80 | pkt[2]&0x79 // QR, opcode and RD kept
	out[3] = dns.RcodeFormatError
	clear(out[4:12])
	return out
}

func qtypeOf(m *dns.Msg) uint16 {
	if len(m.Question) == 0 {
		return 0
	}
	return m.Question[0].Qtype
}

// packetWriter keeps the one message of a UDP response.
type packetWriter struct {
	buf []byte
	out []byte
}

func (p *packetWriter) WriteMessage(wire []byte, _ time.Time) error {
	if p.out != nil {
		return errors.New("a UDP response is one message")
	}
	p.out = append(p.buf, wire...)
	return nil
}
