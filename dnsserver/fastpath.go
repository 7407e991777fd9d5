package dnsserver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
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
// the type, and the EDNS shape (DO bit and size limit: the UDP limit, or
// 65535 over TCP). It reports false
// for a query the fast path does not answer: anything but a standard
// query (QR=0, opcode QUERY, TC=0) for one question of class IN,
// optionally with one OPT of version 0, or a question for a zone
// transfer, ANY or a meta type.
func appendKey(pkt []byte, m *wireMsg, key []byte, tcp bool) (_ []byte, ok bool) {
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
	if tcp {
		limit = dns.MaxMsgSize
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

// AnswerWire answers the message q.Wire (see Answerer): a malformed
// message as the wire reader decides, a query the answer cache covers from
// it, anything else by the full path.
func (h *Handler) AnswerWire(q *Query) Reply {
	m, fault := readMessage(q.Wire)
	r := h.answerWire(q, &m, fault)
	r.Qtype = m.qtype
	if r.Wire != nil {
		r.Answered = true
		r.Size = len(r.Wire)
		r.Truncated = len(r.Wire) > 2 && r.Wire[2]&0x02 != 0
	}
	return r
}

// answerWire answers the message q.Wire, read by readMessage as m with
// fault.
func (h *Handler) answerWire(q *Query, m *wireMsg, fault msgFault) Reply {
	pkt := q.Wire
	if fault != msgOK || m.response() {
		out := formErr(pkt, m, fault, q.Out[:0])
		return Reply{Wire: out, Rcode: dns.RcodeFormatError, Close: fault != msgOK}
	}
	if m.opcode() == dns.OpcodeUpdate {
		return h.updateLater(q, m)
	}
	key, ok := appendKey(pkt, m, q.key[:0], q.Transport == TransportTCP)
	q.key = key
	if !ok {
		return h.slowPath(q, m)
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
		if out, rcode, ok := h.answerNegative(pkt, m, key, st, q.Out[:0], &q.name, true); ok {
			return Reply{Wire: out, Rcode: rcode}
		}
		c = h.build(key, m, st, zgen)
		if c == nil {
			return h.slowPath(q, m)
		}
	} else {
		h.stats.cacheHits.Add(1)
	}
	i := 0
	if len(c.variants) > 1 {
		i = rand.IntN(len(c.variants))
	}
	out := append(q.Out[:0], c.variants[i]...)
	if c.serialAt != nil {
		for _, off := range c.serialAt[i] {
			binary.BigEndian.PutUint32(out[off:], st.serial)
		}
	}
	out[0], out[1] = pkt[0], pkt[1]                            // ID
	out[2] = out[2]&^0x01 | pkt[2]&0x01                        // RD copied
	out[3] = out[3]&^0x10 | pkt[3]&0x10                        // CD copied
	copy(out[headerLen:m.qnameEnd], pkt[headerLen:m.qnameEnd]) // the question as sent
	return Reply{Wire: out, Rcode: c.rcode}
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
	limit := int(binary.BigEndian.Uint16(key[len(key)-2:])) // as appendKey put it
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

// slowPath answers a well-formed query the answer cache does not cover
// with the full path. A simple query becomes a dns.Msg without a second
// parse; a message with more to it (a TSIG, the records of an IXFR) is
// unpacked by miekg/dns in full.
func (h *Handler) slowPath(q *Query, m *wireMsg) Reply {
	pkt := q.Wire
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
		return Reply{Wire: formErr(pkt, m, msgMalformed, q.Out[:0]), Rcode: dns.RcodeFormatError}
	}
	tcp := q.Transport == TransportTCP
	if tcp && isTransfer(req) {
		// A transfer streams: the transport serves it on its own.
		return Reply{Later: &Request{Wire: bytes.Clone(pkt), Msg: req, TCP: true, Remote: q.Remote}}
	}
	if needsServe(req) {
		// Signed, or a zone transfer over UDP: the path that checks TSIG.
		return h.serveNow(q, req)
	}
	resp := h.Respond(req, !tcp)
	if resp == nil {
		return Reply{}
	}
	out, err := resp.PackBuffer(q.Out[:cap(q.Out)])
	if err != nil {
		h.log.Debug("pack response", "err", err)
		return Reply{}
	}
	return Reply{Wire: out, Rcode: resp.Rcode}
}

func qtypeOf(m *dns.Msg) uint16 {
	if len(m.Question) == 0 {
		return 0
	}
	return m.Question[0].Qtype
}

// packetWriter keeps the one message of a response.
type packetWriter struct {
	buf []byte
	out []byte
}

func (p *packetWriter) WriteMessage(wire []byte, _ time.Time) error {
	if p.out != nil {
		return errors.New("this response is one message")
	}
	p.out = append(p.buf, wire...)
	return nil
}
