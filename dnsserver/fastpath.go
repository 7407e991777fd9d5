package dnsserver

import (
	"bytes"
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

// lowerInPlace maps A to Z in b to a to z, eight octets at a time.
func lowerInPlace(b []byte) {
	const ones = 0x0101010101010101
	for len(b) >= 8 {
		w := binary.LittleEndian.Uint64(b)
		// Bit 7 of each octet of upper: set if the octet is in A to Z
		// (octets at 0x80 and above are left out); no carries cross
		// octets.
		low := w & (0x7f * ones)
		upper := (low + (0x80-'A')*ones) ^ (low + (0x80-'Z'-1)*ones)
		upper &^= w
		upper &= 0x80 * ones
		binary.LittleEndian.PutUint64(b, w|upper>>2)
		b = b[8:]
	}
	for i, c := range b {
		if c-'A' < 26 {
			b[i] = c + 'a' - 'A'
		}
	}
}

// appendKey appends to key the fast-path cache key of the query pkt
// (read by readMessage as m): the lower-cased question name in wire form,
// the type, and the EDNS shape (DO bit and size limit). It reports false
// for a query the fast path does not answer: anything but a standard
// query (QR=0, opcode QUERY, TC=0) for one question of class IN,
// optionally with one OPT of version 0, or a question for a zone
// transfer, ANY or a meta type.
func appendKey(pkt []byte, m *wireMsg, key []byte) (_ []byte, ok bool) {
	if m.flags&0xfa00 != 0 || !m.question() || !m.plain() || m.qclass != dns.ClassINET ||
		m.edns() && m.ednsVersion() != 0 {
		return key, false
	}
	switch m.qtype {
	case 0, dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeANY:
		return key, false
	}
	start := len(key)
	key = append(key, pkt[headerLen:m.qnameEnd]...)
	lowerInPlace(key[start:]) // length octets (at most 63) are left alone
	limit := uint16(minUDPSize)
	shape := byte(0)
	if m.edns() {
		limit = min(max(m.ednsSize, minUDPSize), UDPSize)
		shape = 1
		if m.do() {
			shape |= 2
		}
	}
	key = binary.BigEndian.AppendUint16(key, m.qtype)
	key = append(key, shape)
	key = binary.BigEndian.AppendUint16(key, limit)
	return key, true
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
	key  []byte
	out  []byte
	name []byte // the question name in presentation form (answerNegative)
	// conn is the socket the packets came in on, where answers computed
	// later (UPDATE) are sent; nil answers them in place.
	conn *net.UDPConn
	// from is the client of the packet being answered (zero when the
	// loop does not decode it); transfer rules match it.
	from netip.AddrPort
}

func newScratch() *scratch {
	return &scratch{key: make([]byte, 0, 300), out: make([]byte, 0, dns.MaxMsgSize), name: make([]byte, 0, maxNameLen)}
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
	m, fault := readMessage(pkt)
	out, _ := h.answerUDP(pkt, &m, fault, s)
	return out
}

// answerUDP answers one UDP query packet, read by readMessage as m with
// fault, like serveUDP, and also returns the response code counted.
func (h *Handler) answerUDP(pkt []byte, m *wireMsg, fault msgFault, s *scratch) (out []byte, rcode int) {
	if fault != msgOK || m.response() {
		out = formErr(pkt, m, fault, s.out[:0])
		if out == nil {
			h.stats.dropped.Add(1)
			return nil, 0
		}
		h.stats.count(transportUDP, m.qtype, dns.RcodeFormatError)
		return out, dns.RcodeFormatError
	}
	key, ok := appendKey(pkt, m, s.key[:0])
	s.key = key
	if !ok {
		return h.slowUDP(pkt, m, s)
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
		if out, rcode, ok := h.answerNegative(pkt, m, key, st, s.out[:0], &s.name, true); ok {
			h.stats.count(transportUDP, m.qtype, rcode)
			return out, rcode
		}
		c = h.build(key, m, st, zgen)
		if c == nil {
			return h.slowUDP(pkt, m, s)
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
	out[0], out[1] = pkt[0], pkt[1]                            // ID
	out[2] = out[2]&^0x01 | pkt[2]&0x01                        // RD copied
	out[3] = out[3]&^0x10 | pkt[3]&0x10                        // CD copied
	copy(out[headerLen:m.qnameEnd], pkt[headerLen:m.qnameEnd]) // the question as sent
	h.stats.count(transportUDP, m.qtype, c.rcode)
	if c.truncated {
		h.stats.truncated.Add(1)
	}
	return out, c.rcode
}

// build computes and caches the answer for a fast-path key of the query
// m.
func (h *Handler) build(key []byte, m *wireMsg, st *zoneState, zgen uint64) *cached {
	name, _, err := dns.UnpackDomainName(key, 0)
	if err != nil {
		return nil
	}
	req := new(dns.Msg)
	req.Question = []dns.Question{{Name: name, Qtype: m.qtype, Qclass: dns.ClassINET}}
	if m.edns() {
		req.SetEdns0(m.ednsSize, m.do())
	}
	resp, dep := h.reply(req, st)
	if resp == nil || resp.Rcode == dns.RcodeServerFailure {
		return nil
	}
	limit := sizeLimit(req, true)
	answers := resp.Answer
	n := min(longestRRset(answers), maxVariants)
	c := &cached{zgen: zgen, service: strings.Clone(dep.service), svc: dep.svc, all: dep.all, version: dep.version, rcode: resp.Rcode, variants: make([][]byte, 0, max(n, 1)),
		addr: dep.addr, hasAddr: dep.hasAddr}
	stamped := hasZoneSOA(resp, h.cfg.Domain)
	start := rand.IntN(maxVariants * 10)
	buf := h.packBufs.Get().(*[]byte)
	defer h.packBufs.Put(buf)
	for i := range max(n, 1) {
		v := *resp
		v.Extra = append([]dns.RR(nil), resp.Extra...)
		v.Answer = rotateRRsets(answers, start+i)
		fit(&v, limit)
		packed, err := v.PackBuffer(*buf)
		if err != nil {
			h.log.Error("pack answer", "qname", name, "err", err)
			return nil
		}
		wire := bytes.Clone(packed) // kept at its size, not Pack's estimate
		c.variants = append(c.variants, wire)
		c.truncated = c.truncated || v.Truncated
		if stamped {
			c.serialAt = append(c.serialAt, soaSerialOffsets(wire, h.cfg.Domain))
		}
	}
	if keepAnswer(resp.Rcode, len(resp.Answer), dep) {
		h.cache.lru.Add(string(key), c)
	}
	return c
}

// slowUDP answers a well-formed query the fast path does not handle with
// the full path. A simple query becomes a dns.Msg without a second parse;
// a message with more to it (a TSIG, the records of an UPDATE) is unpacked
// by miekg/dns in full.
func (h *Handler) slowUDP(pkt []byte, m *wireMsg, s *scratch) (out []byte, rcode int) {
	var req *dns.Msg
	var err error
	if m.simple() {
		req, err = m.request(pkt)
	} else {
		req = new(dns.Msg)
		err = req.Unpack(pkt)
	}
	if err != nil {
		h.log.Debug("unpack query", "err", err)
		out = formErr(pkt, m, msgMalformed, s.out[:0])
		if out == nil {
			h.stats.dropped.Add(1)
			return nil, 0
		}
		h.stats.count(transportUDP, m.qtype, dns.RcodeFormatError)
		return out, dns.RcodeFormatError
	}
	if needsServe(req) {
		// Signed, or a zone transfer: the path that checks TSIG.
		w := &packetWriter{buf: s.out[:0]}
		res := h.serve(context.Background(), Request{Wire: pkt, Msg: req, Remote: s.from}, w)
		if !res.answered || w.out == nil {
			h.stats.dropped.Add(1)
			return nil, 0
		}
		h.stats.count(transportUDP, m.qtype, res.rcode)
		if res.truncated {
			h.stats.truncated.Add(1)
		}
		return w.out, res.rcode
	}
	resp := h.Respond(req, true)
	if resp == nil {
		h.stats.dropped.Add(1)
		return nil, 0
	}
	out, err = resp.PackBuffer(s.out[:cap(s.out)])
	if err != nil {
		h.log.Debug("pack response", "err", err)
		return nil, 0
	}
	h.stats.count(transportUDP, m.qtype, resp.Rcode)
	if resp.Truncated {
		h.stats.truncated.Add(1)
	}
	return out, resp.Rcode
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
