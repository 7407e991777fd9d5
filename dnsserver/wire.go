package dnsserver

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

// One strict reading of a DNS message serves every path: the UDP fast path
// takes its cache key from it, the full path its question and EDNS shape,
// rate limiting its slip answer, the query log and the metrics the name
// and type. It reads a message the way Knot DNS does, so disco reacts to
// malformed messages as Knot does:
//
//   - shorter than a header: no answer;
//   - a standard query (opcode QUERY) with QDCOUNT over 1: FORMERR without
//     a question, as RFC 9619 requires (Knot 3.2 gives no answer);
//   - a question that cannot be read (a bad label, a compression pointer,
//     a name over 255 octets, a missing type or class, QDCOUNT over 1 with
//     another opcode): no answer, since an answer could not echo the
//     question clients match answers by;
//   - a readable question followed by anything malformed: FORMERR with the
//     question and no OPT (RFC 1035 section 4.1.1). That covers counts that
//     promise missing records, trailing bytes, records whose fields run past
//     their RDLENGTH or the message, an OPT outside the additional section,
//     a second OPT, an OPT not owned by the root, an EDNS option running
//     past the OPT (RFC 6891 section 6.1), and a TSIG anywhere but last
//     (RFC 8945 section 5.2). A message without a question gets FORMERR
//     for these once one of its records could be read, and no answer when
//     nothing could.
//
// Well-formed answer and authority records in a query are ignored, as are
// EDNS options. A TSIG record last in the additional section is only
// located: verifying it is the job of the TSIG code.

// headerLen is the length of the DNS message header.
const headerLen = 12

// maxNameLen is the longest domain name in wire form (RFC 1035 section
// 2.3.4).
const maxNameLen = 255

// msgFault is what readMessage found wrong with a message; it decides the
// reaction (see above).
type msgFault uint8

const (
	// msgOK: the message is well formed.
	msgOK msgFault = iota
	// msgNoHeader: shorter than the header (or longer than any DNS
	// message). No answer.
	msgNoHeader
	// msgQuestions: a standard query with more than one question.
	// FORMERR without a question.
	msgQuestions
	// msgNoQuestion: the question cannot be read, or nothing can be read
	// of a message without a question. No answer.
	msgNoQuestion
	// msgMalformed: the question, or a record of a message without one,
	// was read, and something after it is malformed. FORMERR with the
	// question, if any.
	msgMalformed
)

var faultNames = [...]string{"ok", "no header", "questions", "no question", "malformed"}

func (f msgFault) String() string { return faultNames[f] }

// wireMsg is what readMessage learns of a message: the header, the
// question and the EDNS OPT, with offsets into the message it read (a DNS
// message is at most 65535 octets). It is a small plain value: reading
// allocates nothing.
type wireMsg struct {
	id    uint16
	flags uint16 // the second header word: QR, opcode, AA, TC, RD, RA, Z, AD, CD, RCODE
	qd    uint16
	an    uint16
	ns    uint16
	ar    uint16
	// qnameEnd is the offset just past the question name (which starts
	// at headerLen); 0 when there is no question.
	qnameEnd uint16
	qtype    uint16
	qclass   uint16
	// opt is the offset of the OPT record, 0 without one; ednsSize and
	// ednsTTL are its CLASS (the payload size) and TTL (extended rcode,
	// version, flags).
	opt      uint16
	optLen   uint16 // its RDLENGTH: the options
	ednsSize uint16
	ednsTTL  uint32
	// tsig is the offset of the TSIG record, last in the message; 0
	// without one.
	tsig uint16
}

// Header flag bits in wireMsg.flags.
const (
	flagQR = 1 << 15
	flagAA = 1 << 10
	flagTC = 1 << 9
	flagRD = 1 << 8
	flagRA = 1 << 7
	flagZ  = 1 << 6
	flagAD = 1 << 5
	flagCD = 1 << 4
)

func (m *wireMsg) response() bool { return m.flags&flagQR != 0 }
func (m *wireMsg) opcode() int    { return int(m.flags>>11) & 0xf }
func (m *wireMsg) question() bool { return m.qnameEnd != 0 }

// questionEnd is the offset just past the question (only with one).
func (m *wireMsg) questionEnd() int { return int(m.qnameEnd) + 4 }

func (m *wireMsg) edns() bool         { return m.opt != 0 }
func (m *wireMsg) ednsVersion() uint8 { return uint8(m.ednsTTL >> 16) }
func (m *wireMsg) do() bool           { return m.ednsTTL&0x8000 != 0 }

// plain reports whether the message holds nothing but the header, the
// question and an OPT record.
func (m *wireMsg) plain() bool {
	edns := 0
	if m.edns() {
		edns = 1
	}
	return m.an == 0 && m.ns == 0 && int(m.ar) == edns
}

// readMessage reads pkt strictly (see above). The wireMsg is filled in as
// far as reading got, so a FORMERR can echo the question.
func readMessage(pkt []byte) (m wireMsg, _ msgFault) {
	if len(pkt) < headerLen || len(pkt) > dns.MaxMsgSize {
		return m, msgNoHeader // no DNS message is longer
	}
	_ = pkt[headerLen-1]
	m.id = binary.BigEndian.Uint16(pkt)
	m.flags = binary.BigEndian.Uint16(pkt[2:])
	m.qd = binary.BigEndian.Uint16(pkt[4:])
	m.an = binary.BigEndian.Uint16(pkt[6:])
	m.ns = binary.BigEndian.Uint16(pkt[8:])
	m.ar = binary.BigEndian.Uint16(pkt[10:])
	off := headerLen
	switch m.qd {
	case 0:
	case 1:
		end, ok := readQname(pkt)
		if !ok || end+4 > len(pkt) {
			return m, msgNoQuestion
		}
		m.qnameEnd = uint16(end)
		m.qtype = binary.BigEndian.Uint16(pkt[end:])
		m.qclass = binary.BigEndian.Uint16(pkt[end+2:])
		off = end + 4
	default:
		if m.opcode() == dns.OpcodeQuery {
			return m, msgQuestions
		}
		return m, msgNoQuestion
	}
	// A fault past the header gets FORMERR once something was read: the
	// question, or the fixed part of a record (a record whose contents
	// are wrong was read that far).
	bad := msgNoQuestion
	if m.qd == 1 {
		bad = msgMalformed
	}
	for range int(m.an) + int(m.ns) {
		rr, ok := readRR(pkt, off)
		if !ok {
			return m, bad
		}
		bad = msgMalformed
		if rr.typ == dns.TypeOPT || rr.typ == dns.TypeTSIG || !validRdata(pkt, rr) {
			return m, bad
		}
		off = rr.end
	}
	for i := range int(m.ar) {
		rr, ok := readRR(pkt, off)
		if !ok {
			return m, bad
		}
		bad = msgMalformed
		switch rr.typ {
		case dns.TypeOPT:
			// RFC 6891 section 6.1.1: one OPT at most; its owner is the
			// root; its options fill its RDATA exactly.
			if m.opt != 0 || pkt[off] != 0 || !validOptions(pkt[rr.rdata:rr.end]) {
				return m, bad
			}
			m.opt = uint16(off)
			m.optLen = uint16(rr.end - rr.rdata)
			m.ednsSize = rr.class
			m.ednsTTL = rr.ttl
		case dns.TypeTSIG:
			if i != int(m.ar)-1 || !validTSIG(pkt, rr) {
				return m, bad
			}
			m.tsig = uint16(off)
		default:
			if !validRdata(pkt, rr) {
				return m, bad
			}
		}
		off = rr.end
	}
	if off != len(pkt) {
		return m, bad // trailing bytes
	}
	return m, msgOK
}

// readQname checks the question name, which starts just past the header:
// labels of at most 63 octets, at most 255 octets in all, and no
// compression, as Knot DNS reads it: there is nothing before the name to
// point at but the header and the name itself. It returns the offset just
// past the name.
func readQname(pkt []byte) (end int, ok bool) {
	for pos := headerLen; pos < len(pkt); {
		l := int(pkt[pos])
		if l == 0 {
			return pos + 1, pos+1-headerLen <= maxNameLen
		}
		if l > 63 {
			return 0, false // a pointer, or an extended or reserved label type
		}
		pos += 1 + l
	}
	return 0, false
}

// readName checks the domain name at off in pkt: labels of at most 63
// octets, no label types but plain labels and (with pointers) compression
// pointers, which must point backwards, so there are no loops; at most 255
// octets in all. It returns the offset just past the name where it
// starts (past its first pointer, if any) and its uncompressed length.
func readName(pkt []byte, off int, pointers bool) (end, length int, ok bool) {
	end = -1
	for pos := off; ; {
		if pos >= len(pkt) {
			return 0, 0, false
		}
		l := int(pkt[pos])
		switch l & 0xc0 {
		case 0x00:
			length += l + 1
			if length > maxNameLen {
				return 0, 0, false
			}
			if l == 0 {
				if end < 0 {
					end = pos + 1
				}
				return end, length, true
			}
			pos += 1 + l
		case 0xc0:
			if !pointers || pos+1 >= len(pkt) {
				return 0, 0, false
			}
			ptr := (l&0x3f)<<8 | int(pkt[pos+1])
			if ptr >= pos {
				return 0, 0, false // forward, or to itself
			}
			if end < 0 {
				end = pos + 2
			}
			pos = ptr
		default:
			return 0, 0, false // extended (0x40) or reserved (0x80) label types
		}
	}
}

// wireRR locates one resource record in a message.
type wireRR struct {
	typ   uint16
	class uint16
	ttl   uint32
	rdata int // offset of the RDATA
	end   int // offset just past the record
}

// readRR reads the record at off: owner name, fixed fields and RDATA
// within the message.
func readRR(pkt []byte, off int) (rr wireRR, ok bool) {
	end := off + 1 // the root, as an OPT's owner
	if off >= len(pkt) || pkt[off] != 0 {
		end, _, ok = readName(pkt, off, true)
		if !ok {
			return rr, false
		}
	}
	if end+10 > len(pkt) {
		return rr, false
	}
	rr.typ = binary.BigEndian.Uint16(pkt[end:])
	rr.class = binary.BigEndian.Uint16(pkt[end+2:])
	rr.ttl = binary.BigEndian.Uint32(pkt[end+4:])
	rr.rdata = end + 10
	rr.end = rr.rdata + int(binary.BigEndian.Uint16(pkt[end+8:]))
	if rr.end > len(pkt) {
		return rr, false
	}
	return rr, true
}

// validOptions reports whether rdata is a sequence of whole EDNS options.
func validOptions(rdata []byte) bool {
	for len(rdata) > 0 {
		if len(rdata) < 4 {
			return false
		}
		n := 4 + int(binary.BigEndian.Uint16(rdata[2:]))
		if n > len(rdata) {
			return false
		}
		rdata = rdata[n:]
	}
	return true
}

// validTSIG reports whether the RDATA of a TSIG record has its fields
// (RFC 8945 section 4.2): algorithm name, time signed (48 bits), fudge, MAC
// size and MAC, original ID, error, other length and other data, filling
// the RDATA exactly.
func validTSIG(pkt []byte, rr wireRR) bool {
	off, _, ok := readName(pkt[:rr.end], rr.rdata, true)
	if !ok || off+10 > rr.end {
		return false
	}
	off += 10 + int(binary.BigEndian.Uint16(pkt[off+8:])) // time, fudge, MAC size; MAC
	if off+6 > rr.end {
		return false
	}
	off += 6 + int(binary.BigEndian.Uint16(pkt[off+4:])) // original ID, error, other length; other data
	return off == rr.end
}

// rdataFields lists the RDATA of the types whose names may be compressed
// (RFC 3597 section 4): 'n' a domain name, '2' and '4' fixed fields of that
// many octets.
var rdataFields = map[uint16]string{
	dns.TypeNS: "n", dns.TypeMD: "n", dns.TypeMF: "n", dns.TypeCNAME: "n",
	dns.TypeSOA: "nn44444", dns.TypeMB: "n", dns.TypeMG: "n", dns.TypeMR: "n",
	dns.TypePTR: "n", dns.TypeMINFO: "nn", dns.TypeMX: "2n",
}

// validRdata reports whether the RDATA of a record other than OPT and TSIG
// is well formed for its type. Empty RDATA is allowed in classes NONE and
// ANY (RFC 2136 section 2.5) and for types of opaque RDATA.
func validRdata(pkt []byte, rr wireRR) bool {
	if rr.rdata == rr.end && (rr.class == dns.ClassNONE || rr.class == dns.ClassANY) {
		return true
	}
	if fields, ok := rdataFields[rr.typ]; ok {
		off := rr.rdata
		for _, f := range fields {
			switch f {
			case 'n':
				end, _, ok := readName(pkt[:rr.end], off, true)
				if !ok {
					return false
				}
				off = end
			case '2':
				off += 2
			case '4':
				off += 4
			}
			if off > rr.end {
				return false
			}
		}
		return off == rr.end
	}
	if _, known := dns.TypeToRR[rr.typ]; !known {
		return true // RFC 3597: opaque
	}
	switch rr.typ {
	case dns.TypeNULL, dns.TypeAPL:
		return true // any RDATA, empty included
	}
	if rr.rdata == rr.end {
		return false
	}
	// The other known types, by miekg/dns's reading of them. Real queries
	// carry no such records, so the allocation does not matter.
	h := dns.RR_Header{Rrtype: rr.typ, Class: rr.class, Ttl: rr.ttl, Rdlength: uint16(rr.end - rr.rdata)}
	_, _, err := dns.UnpackRRWithHeader(h, pkt[:rr.end], rr.rdata)
	return err == nil
}

// formErr appends to out the answer to a message readMessage found fault
// with, and returns it; nil means no answer. A message that is a response
// never gets one. A malformed message with a readable question gets
// FORMERR with its question, a standard query with several questions
// FORMERR without; neither carries an OPT.
func formErr(pkt []byte, m *wireMsg, fault msgFault, out []byte) []byte {
	if fault != msgMalformed && fault != msgQuestions || m.response() {
		return nil
	}
	return appendBareAnswer(out, pkt, m, dns.RcodeFormatError, false)
}

// appendBareAnswer appends to out an answer to the query pkt (read by
// readMessage as m) that has no records: the query's ID, opcode, RD and
// CD bits and question, with QR set, rcode and, if tc, TC.
func appendBareAnswer(out, pkt []byte, m *wireMsg, rcode int, tc bool) []byte {
	h := len(out)
	end := headerLen
	if m.question() {
		end = m.questionEnd()
	}
	out = append(out, pkt[:end]...)
	out[h+2] = 0x80 | pkt[2]&0x79 // QR; opcode and RD kept; AA, TC clear
	if tc {
		out[h+2] |= 0x02
	}
	out[h+3] = pkt[3]&0x10 | byte(rcode&0xf) // CD kept; RA, Z, AD clear
	clear(out[h+4 : h+headerLen])
	if m.question() {
		out[h+5] = 1
	}
	return out
}

// simple reports whether what readMessage reads of the query (header,
// question, EDNS) is all its answer needs: it has no TSIG and no records
// but the OPT, or its other records are ignored (opcode QUERY, except an
// IXFR, whose authority section holds the client's SOA).
func (m *wireMsg) simple() bool {
	return m.tsig == 0 && (m.opcode() == dns.OpcodeQuery && m.qtype != dns.TypeIXFR || m.plain())
}

// request returns the query pkt (read by readMessage as m) as the full
// path's dns.Msg: the header, the question and the OPT without its
// options, which the answer does not use. Other records are left out: use
// it only for simple queries (m.simple). It fails only if miekg/dns does
// not read the question name as readMessage did.
func (m *wireMsg) request(pkt []byte) (*dns.Msg, error) {
	req := new(dns.Msg)
	req.Id = m.id
	req.Response = m.flags&flagQR != 0
	req.Opcode = m.opcode()
	req.Authoritative = m.flags&flagAA != 0
	req.Truncated = m.flags&flagTC != 0
	req.RecursionDesired = m.flags&flagRD != 0
	req.RecursionAvailable = m.flags&flagRA != 0
	req.Zero = m.flags&flagZ != 0
	req.AuthenticatedData = m.flags&flagAD != 0
	req.CheckingDisabled = m.flags&flagCD != 0
	req.Rcode = int(m.flags & 0xf)
	if m.question() {
		name, _, err := dns.UnpackDomainName(pkt[:m.qnameEnd], headerLen)
		if err != nil {
			return nil, err
		}
		req.Question = []dns.Question{{Name: name, Qtype: m.qtype, Qclass: m.qclass}}
	}
	if m.edns() {
		req.Extra = []dns.RR{&dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: m.ednsSize, Ttl: m.ednsTTL}}}
	}
	return req, nil
}

// appendPlain appends to out the plain form of the simple query pkt (read
// by readMessage as m): its header, its question and its OPT without
// options, and nothing else.
func (m *wireMsg) appendPlain(pkt, out []byte) []byte {
	h := len(out)
	out = append(out, pkt[:headerLen]...)
	clear(out[h+6 : h+headerLen])
	if m.question() {
		out = append(out, pkt[headerLen:m.questionEnd()]...)
	}
	if m.edns() {
		out[h+11] = 1
		out = append(out, pkt[m.opt:m.opt+9]...) // root, type, class, TTL
		out = append(out, 0, 0)                  // RDLENGTH
	}
	return out
}

// qname returns the question name as sent, in presentation format, or ""
// without a question. It allocates: it is for logs.
func (m *wireMsg) qname(pkt []byte) string {
	if !m.question() {
		return ""
	}
	name, _, err := dns.UnpackDomainName(pkt[:m.qnameEnd], headerLen)
	if err != nil {
		return ""
	}
	return name
}
