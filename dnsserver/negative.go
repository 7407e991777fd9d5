package dnsserver

import (
	"encoding/binary"
	"strings"
	"unsafe"

	"github.com/miekg/dns"
)

// Answers without records about names the registry does not hold —
// NXDOMAIN and NODATA with the zone's SOA in the authority section,
// REFUSED outside the zones — are not cached: a flood
// of random names would otherwise fill the answer cache with one entry per
// name, each used once, and push out the answers worth keeping. The fast
// path asks the answer core and, when the answer is of that shape, writes
// it straight into the output buffer: the query's header bits and question,
// the SOA (its owner a compression pointer to the question's suffix when
// the question is under it) and the OPT record, with the Extended DNS Error
// the full path adds. No dns.Msg is built and nothing is allocated for a
// name that does not exist; the answer has the full path's content (the
// tests compare the two).

// presentation appends to dst the presentation form of the wire-format
// name wire (uncompressed, ending in the root label) and reports whether
// it could do so without escapes: it declines names with octets that
// miekg/dns escapes (dots, spaces, quotes and apostrophes, parentheses,
// semicolons, '@', backslashes, and octets outside printable ASCII).
func presentation(dst, wire []byte) ([]byte, bool) {
	if len(wire) == 1 {
		return append(dst, '.'), true
	}
	for i := 0; i < len(wire); {
		l := int(wire[i])
		if l == 0 {
			return dst, true
		}
		if l > 63 || i+1+l > len(wire) {
			return dst, false
		}
		for _, c := range wire[i+1 : i+1+l] {
			switch {
			case c <= ' ' || c > '~':
				return dst, false
			case c == '.' || c == '\'' || c == '(' || c == ')' || c == ';' || c == '@' || c == '"' || c == '\\':
				return dst, false
			}
		}
		dst = append(dst, wire[i+1:i+1+l]...)
		dst = append(dst, '.')
		i += 1 + l
	}
	return dst, false
}

// appendName appends name, a fully qualified name in presentation form
// without escapes, to out in wire form, lower-cased when lower. It
// reports false for a name it cannot write that way.
func appendName(out []byte, name string, lower bool) ([]byte, bool) {
	if name == "." {
		return append(out, 0), true
	}
	if !strings.HasSuffix(name, ".") || len(name) > maxNameLen-1 || strings.IndexByte(name, '\\') >= 0 {
		return out, false
	}
	for name != "" {
		i := strings.IndexByte(name, '.')
		if i <= 0 || i > 63 {
			return out, false
		}
		out = append(out, byte(i))
		start := len(out)
		out = append(out, name[:i]...)
		if lower {
			lowerInPlace(out[start:])
		}
		name = name[i+1:]
	}
	return append(out, 0), true
}

// suffixAt returns the offset in the wire-format name qname where its
// labels equal suffix (both wire form, qname lower-cased), or -1.
func suffixAt(qname, suffix []byte) int {
	for i := 0; i < len(qname); {
		if len(qname)-i == len(suffix) && string(qname[i:]) == string(suffix) {
			return i
		}
		if qname[i] == 0 {
			break
		}
		i += 1 + int(qname[i])
	}
	return -1
}

// keepAnswer reports whether the answer cache keeps an answer with rcode,
// answers records in its answer section, computed from dep: every answer
// with records, and NODATA at a name the registry holds (AAAA at a service
// whose instances have IPv4 addresses): there are only so many of those,
// asked again and again. An answer without records about a name that
// does not exist, or that only a static zone or a wildcard holds, may come
// from a random name and is not kept.
func keepAnswer(rcode, answers int, dep dependency) bool {
	return answers != 0 || rcode == dns.RcodeSuccess && (dep.svc != nil || dep.hasAddr)
}

// answerNegative answers a fast-path query, when its answer has no
// records but at most a zone's SOA in the authority section, by appending
// it to out (which it returns). With cached, it leaves the answers the
// cache keeps (see keepAnswer) to the caller. ok is false when it leaves
// the query to the caller: an answer of another shape, a question name
// with octets that need escapes, an answer over the query's size limit.
// key is the query's cache key (its name lower-cased, its size limit last,
// see appendKey); *name is working memory for the name, kept from call to
// call.
func (h *Handler) answerNegative(pkt []byte, m *wireMsg, key []byte, st *zoneState, out []byte, name *[]byte, cached bool) (res []byte, rcode int, ok bool) {
	base := len(out)
	qlen := int(m.qnameEnd) - headerLen
	text, ok := presentation((*name)[:0], key[:qlen])
	*name = text
	if !ok {
		return out, 0, false
	}
	// The text lives in *name until the next query: the answer core
	// keeps nothing of it in a negative answer, which is all that is
	// used here.
	canon := unsafe.String(unsafe.SliceData(text), len(text))
	defer func() {
		if recover() != nil {
			res, rcode, ok = out[:base], 0, false // the full path answers SERVFAIL and logs it
		}
	}()
	r := h.cfg.answer(query{name: canon, canon: canon, qtype: m.qtype}, st.snap, st.zs)
	if len(r.answer) != 0 || len(r.extra) != 0 || len(r.ns) > 1 || r.rcode > 0xf {
		return out, 0, false
	}
	if cached && keepAnswer(r.rcode, 0, r.dep) {
		return out, 0, false
	}
	var soa *dns.SOA
	if len(r.ns) == 1 {
		if soa, ok = r.ns[0].(*dns.SOA); !ok {
			return out, 0, false
		}
	}
	start := len(out)
	out = append(out, pkt[:m.questionEnd()]...)
	msg := out[start:]
	msg[2] = 0x80 | pkt[2]&0x79 // QR; opcode and RD kept
	if r.aa {
		msg[2] |= 0x04
	}
	msg[3] = pkt[3]&0x10 | byte(r.rcode) // CD kept
	clear(msg[4:headerLen])
	msg[5] = 1
	if soa != nil {
		serial := soa.Serial
		if equalFold(soa.Hdr.Name, h.cfg.Domain) {
			serial = st.serial
		} else if z := h.cfg.reverseZoneOf(canon); z != nil && equalFold(soa.Hdr.Name, z.origin) {
			serial = st.serial
		}
		msg[9] = 1
		if out, ok = appendSOA(out, start, key[:qlen], soa, serial); !ok {
			return out[:start], 0, false
		}
	}
	if m.edns() {
		out[start+11] = 1
		out = appendOPT(out, m.do(), r.ede)
	}
	if len(out)-start > int(binary.BigEndian.Uint16(key[len(key)-2:])) {
		return out[:start], 0, false
	}
	return out, r.rcode, true
}

// appendSOA appends soa with serial to out, where a message holding a
// header and one question, whose name lower-cased is qname, starts at
// start. The owner is a
// pointer to the question's suffix when the question is at or under the
// SOA's zone, and the SOA's names a pointer to the owner when they are
// under it, as miekg/dns compresses them.
func appendSOA(out []byte, start int, qname []byte, soa *dns.SOA, serial uint32) ([]byte, bool) {
	var buf [maxNameLen]byte
	owner, ok := appendName(buf[:0], soa.Hdr.Name, true)
	if !ok {
		return out, false
	}
	ownerAt := headerLen + suffixAt(qname, owner) // from the message's start
	if ownerAt >= headerLen {
		out = binary.BigEndian.AppendUint16(out, 0xc000|uint16(ownerAt))
	} else {
		ownerAt = len(out) - start
		out = append(out, owner...)
	}
	out = binary.BigEndian.AppendUint16(out, dns.TypeSOA)
	out = binary.BigEndian.AppendUint16(out, dns.ClassINET)
	out = binary.BigEndian.AppendUint32(out, soa.Hdr.Ttl)
	rdlen := len(out)
	out = append(out, 0, 0)
	for _, n := range [2]string{soa.Ns, soa.Mbox} {
		if out, ok = appendUnder(out, n, soa.Hdr.Name, ownerAt); !ok {
			return out, false
		}
	}
	out = binary.BigEndian.AppendUint32(out, serial)
	out = binary.BigEndian.AppendUint32(out, soa.Refresh)
	out = binary.BigEndian.AppendUint32(out, soa.Retry)
	out = binary.BigEndian.AppendUint32(out, soa.Expire)
	out = binary.BigEndian.AppendUint32(out, soa.Minttl)
	binary.BigEndian.PutUint16(out[rdlen:], uint16(len(out)-rdlen-2))
	return out, true
}

// appendUnder appends name to out in wire form: a pointer to ptr, where
// zone is written, when name is zone; its labels before zone and that
// pointer when name is under zone; the whole name otherwise.
func appendUnder(out []byte, name, zone string, ptr int) ([]byte, bool) {
	if equalFold(name, zone) {
		return binary.BigEndian.AppendUint16(out, 0xc000|uint16(ptr)), true
	}
	if zone != "." && len(name) > len(zone) && name[len(name)-len(zone)-1] == '.' && equalFold(name[len(name)-len(zone):], zone) {
		var ok bool
		if out, ok = appendName(out, name[:len(name)-len(zone)], false); !ok {
			return out, false
		}
		out = out[:len(out)-1] // the root label, replaced by the pointer
		return binary.BigEndian.AppendUint16(out, 0xc000|uint16(ptr)), true
	}
	return appendName(out, name, false)
}

// appendOPT appends the OPT record of an answer: disco's payload size,
// the query's DO bit, and an Extended DNS Error (RFC 8914, info code Other)
// with the text ede, if not empty.
func appendOPT(out []byte, do bool, ede string) []byte {
	out = append(out, 0) // the root
	out = binary.BigEndian.AppendUint16(out, dns.TypeOPT)
	out = binary.BigEndian.AppendUint16(out, UDPSize)
	var ttl uint32
	if do {
		ttl = 0x8000
	}
	out = binary.BigEndian.AppendUint32(out, ttl)
	if ede == "" {
		return append(out, 0, 0)
	}
	out = binary.BigEndian.AppendUint16(out, uint16(6+len(ede)))
	out = binary.BigEndian.AppendUint16(out, dns.EDNS0EDE)
	out = binary.BigEndian.AppendUint16(out, uint16(2+len(ede)))
	out = binary.BigEndian.AppendUint16(out, dns.ExtendedErrorCodeOther)
	return append(out, ede...)
}
