package dnsserver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The differential test: a corpus of malformed and odd messages goes to
// disco and to Knot DNS (knotd, started by the test on the same data),
// over UDP and over TCP, and both must react alike: the same response
// code, header flags, question count and EDNS presence, or both silent;
// over TCP, also whether the connection survives. Where disco differs on
// purpose, the case lists disco's reaction and the RFC that decides it.
// One difference holds for every answer and is checked apart: disco
// copies the query's CD bit into the answer, as RFC 4035 section 3.1.6
// asks and BIND does; Knot clears it.

// corpusID is the ID of every corpus message; the sentinel that follows
// each has sentinelID.
const corpusID = 0x4242

// exception is a deliberate difference from Knot: disco's reaction to a
// case, and why.
type exception struct {
	rcode  int  // silence: none
	closes bool // over TCP
	reason string
}

// corpusCase is one message of the corpus.
type corpusCase struct {
	name string
	pkt  []byte
	// data: a well-formed question whose answer and authority records
	// must also be the same (the two servers hold the same data).
	data   bool
	except *exception
}

// Corpus building blocks.
var (
	cWeb = wireName("web", "service", "disco", "internal")
	cQ   = append(slices.Clone(cWeb), 0, 1, 0, 1) // web.service.D A IN
	cOPT = []byte{0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0}
	// cA is an A record owned by the question name (a pointer to it).
	cA = []byte{0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, 1}
)

// cat concatenates byte slices into a new one.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// cHdr is a header with ID corpusID, the flags and the counts.
func cHdr(flags, qd, an, ns, ar uint16) []byte { return rawQuery(corpusID, flags, qd, an, ns, ar) }

// question is a question for name with type and class.
func question(name []byte, qtype, qclass uint16) []byte {
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(slices.Clone(name), qtype), qclass)
}

// optWith is an OPT with version ver, flags and the options given as
// (code, data) pairs.
func optWith(ver byte, flags uint16, opts ...any) []byte {
	var rdata []byte
	for i := 0; i < len(opts); i += 2 {
		d := opts[i+1].([]byte)
		rdata = binary.BigEndian.AppendUint16(rdata, uint16(opts[i].(int)))
		rdata = binary.BigEndian.AppendUint16(rdata, uint16(len(d)))
		rdata = append(rdata, d...)
	}
	o := []byte{0, 0, 41, 0x04, 0xd0, 0, ver}
	o = binary.BigEndian.AppendUint16(o, flags)
	o = binary.BigEndian.AppendUint16(o, uint16(len(rdata)))
	return append(o, rdata...)
}

// tsigRR is a TSIG record of key "k." with an HMAC-SHA256 sized MAC and
// other data; mod may change its RDATA.
func tsigRR(mod func(rdata []byte) []byte) []byte {
	rdata := cat(wireName("hmac-sha256"), []byte{0, 0, 0, 0, 0, 0, 1, 44, 0, 32}, make([]byte, 32), []byte{0x42, 0x42, 0, 0, 0, 0})
	if mod != nil {
		rdata = mod(rdata)
	}
	rr := cat(wireName("k"), []byte{0, 250, 0, 255, 0, 0, 0, 0})
	rr = binary.BigEndian.AppendUint16(rr, uint16(len(rdata)))
	return append(rr, rdata...)
}

// Header flags of corpus queries.
const (
	fRD    = 0x0100
	fQR    = 0x8000
	opcode = 11 // shift of the opcode
)

func knotCorpus() []corpusCase {
	const D = "disco.internal"
	long63 := repeat('a', 63)
	name255 := wireName(long63, long63, long63, repeat('a', 61))
	name321 := wireName(long63, long63, long63, long63, long63)
	q := cQ
	metaType := &exception{rcode: dns.RcodeFormatError, reason: "a meta type names no data to ask for (RFC 6895 section 3.1): FORMERR, as BIND answers; Knot answers NODATA"}
	notify := &exception{rcode: dns.RcodeNotImplemented, reason: "disco is never a secondary and implements no NOTIFY (RFC 1996): NOTIMP (RFC 1035 section 4.1.1); Knot answers NOTAUTH, refused by its ACL"}
	questions := &exception{rcode: dns.RcodeFormatError, closes: true, reason: "a standard query with more than one question MUST get FORMERR (RFC 9619); Knot 3.2 gives no answer"}
	tsigRead := &exception{rcode: dns.RcodeFormatError, closes: true, reason: "the TSIG record was read, so its fault gets FORMERR as any record's does (RFC 8945 section 5.2 asks FORMERR for a TSIG out of place); Knot strips a TSIG from the message before checking it and then counts nothing read"}
	optOwner := &exception{rcode: dns.RcodeFormatError, closes: true, reason: "the OPT's owner MUST be the root (RFC 6891 section 6.1.2): FORMERR, as BIND answers; Knot takes it as the OPT"}
	return []corpusCase{
		// Well-formed queries: the data must match.
		{name: "A", pkt: cat(cHdr(fRD, 1, 0, 0, 0), q), data: true},
		{name: "A, no RD", pkt: cat(cHdr(0, 1, 0, 0, 0), q), data: true},
		{name: "A with EDNS", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, cOPT), data: true},
		{name: "A with EDNS and DO", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, optWith(0, 0x8000)), data: true},
		{name: "A with a cookie", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, optWith(0, 0, 10, []byte("abcdefgh"))), data: true},
		{name: "upper case", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(wireName("WEB", "Service", "disco", "INTERNAL"), 1, 1)), data: true},
		{name: "AAAA, no data", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(cWeb, dns.TypeAAAA, 1)), data: true},
		{name: "NXDOMAIN", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(wireName("nope", "service", "disco", "internal"), 1, 1)), data: true},
		{name: "apex SOA", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(wireName("disco", "internal"), dns.TypeSOA, 1)), data: true},
		{name: "apex NS", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(wireName("disco", "internal"), dns.TypeNS, 1)), data: true},
		{name: "apex A, no data", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(wireName("disco", "internal"), 1, 1)), data: true},
		{name: "ns1 A", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(wireName("ns1", "disco", "internal"), 1, 1)), data: true},
		{name: "empty non-terminal", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(wireName("service", "disco", "internal"), 1, 1)), data: true},
		{name: "outside the zones", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(wireName("example", "org"), 1, 1)), data: true},
		{name: "the root", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question([]byte{0}, 1, 1)), data: true},
		{name: "name of 255 octets", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(name255, 1, 1)), data: true},
		{name: "a NUL in a label", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(wireName("w\x00b", "service", "disco", "internal"), 1, 1)), data: true},
		{name: "a dot in a label", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(wireName("a.b", "service", "disco", "internal"), 1, 1)), data: true},
		{name: "class ANY", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(cWeb, 1, dns.ClassANY)), data: true},
		{name: "class ANY, NXDOMAIN", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(wireName("nope", "disco", "internal"), 1, dns.ClassANY)), data: true},
		{name: "large answer without EDNS: TC over UDP", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(wireName("big", "service", "disco", "internal"), 1, 1))},
		{name: "large answer with EDNS", pkt: cat(cHdr(fRD, 1, 0, 0, 1), question(wireName("big", "service", "disco", "internal"), 1, 1), cOPT), data: true},
		{name: "type ANY (answers differ: RFC 8482)", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(cWeb, dns.TypeANY, 1))},
		{name: "type MAILA", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(cWeb, dns.TypeMAILA, 1)), data: true},
		{name: "type RRSIG", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(cWeb, dns.TypeRRSIG, 1)), data: true},
		{name: "private type", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(cWeb, 65280, 1)), data: true},
		{name: "ID 0", pkt: cat(rawQuery(0, fRD, 1, 0, 0, 0), q), data: true},

		// Header bits a query does not use are ignored; RD and CD are copied.
		{name: "TC in a query", pkt: cat(cHdr(fRD|0x0200, 1, 0, 0, 0), q)},
		{name: "AA in a query", pkt: cat(cHdr(fRD|0x0400, 1, 0, 0, 0), q)},
		{name: "RA in a query", pkt: cat(cHdr(fRD|0x0080, 1, 0, 0, 0), q)},
		{name: "Z in a query", pkt: cat(cHdr(fRD|0x0040, 1, 0, 0, 0), q)},
		{name: "AD and CD in a query", pkt: cat(cHdr(fRD|0x0030, 1, 0, 0, 0), q)},
		{name: "an rcode in a query", pkt: cat(cHdr(fRD|0x0003, 1, 0, 0, 0), q)},

		// Records a query does not use are ignored when well formed.
		{name: "answer record in a query", pkt: cat(cHdr(fRD, 1, 1, 0, 0), q, cA), data: true},
		{name: "authority record in a query", pkt: cat(cHdr(fRD, 1, 0, 1, 0), q, cA), data: true},
		{name: "additional A record in a query", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, cA), data: true},
		{name: "OPT followed by an A record", pkt: cat(cHdr(fRD, 1, 0, 0, 2), q, cOPT, cA), data: true},
		{name: "record of an unknown type", pkt: cat(cHdr(fRD, 1, 1, 0, 0), q, []byte{0xc0, 12, 0xff, 1, 0, 1, 0, 0, 0, 5, 0, 3, 'a', 'b', 'c'})},
		{name: "class NONE record without RDATA", pkt: cat(cHdr(fRD, 1, 1, 0, 0), q, []byte{0xc0, 12, 0, 1, 0, 254, 0, 0, 0, 0, 0, 0})},
		{name: "class ANY record without RDATA", pkt: cat(cHdr(fRD, 1, 0, 1, 0), q, []byte{0xc0, 12, 0, 1, 0, 255, 0, 0, 0, 0, 0, 0})},
		{name: "record owner pointing into the header", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, []byte{0xc0, 4, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, 1})},

		// EDNS: options are not read; their contents do not matter.
		{name: "EDNS size 0", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, []byte{0, 0, 41, 0, 0, 0, 0, 0, 0, 0, 0})},
		{name: "EDNS extended rcode in a query", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, []byte{0, 0, 41, 4, 0xd0, 5, 0, 0, 0, 0, 0})},
		{name: "EDNS Z flags", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, optWith(0, 0x7fff))},
		{name: "EDNS unknown option", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, optWith(0, 0, 65001, []byte("xyz")))},
		{name: "EDNS empty option", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, optWith(0, 0, 65001, []byte{}))},
		{name: "EDNS padding", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, optWith(0, 0, 12, make([]byte, 20)))},
		{name: "EDNS padding, large query", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, optWith(0, 0, 12, make([]byte, 1000)))},
		{name: "EDNS cookie of 5 octets", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, optWith(0, 0, 10, []byte("abcde")))},
		{name: "EDNS two cookies", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, optWith(0, 0, 10, []byte("abcdefgh"), 10, []byte("abcdefgh")))},
		{name: "EDNS client subnet of family 3", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, optWith(0, 0, 8, []byte{0, 3, 24, 0, 10, 0, 0}))},
		{name: "EDNS client subnet /33 of IPv4", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, optWith(0, 0, 8, []byte{0, 1, 33, 0, 10, 0, 0, 0, 0}))},
		{name: "EDNS client subnet cut", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, optWith(0, 0, 8, []byte{0, 1}))},
		{name: "EDNS keepalive of 1 octet", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, optWith(0, 0, 11, []byte{1}))},
		{name: "EDNS expire of 1 octet", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, optWith(0, 0, 9, []byte{1}))},
		{name: "EDNS version 1", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, optWith(1, 0))},
		{name: "EDNS version 1, no question", pkt: cat(cHdr(fRD, 0, 0, 0, 1), optWith(1, 0))},
		{name: "EDNS version 1, unknown class", pkt: cat(cHdr(fRD, 1, 0, 0, 1), question(cWeb, 1, 0x1234), optWith(1, 0))},
		{name: "EDNS version 1, opcode 15", pkt: cat(cHdr(fRD|15<<opcode, 1, 0, 0, 1), q, optWith(1, 0))},
		{name: "EDNS version 1, type 0", pkt: cat(cHdr(fRD, 1, 0, 0, 1), question(cWeb, 0, 1), optWith(1, 0))},

		// Well formed, but not a question disco answers.
		{name: "no question", pkt: cHdr(fRD, 0, 0, 0, 0)},
		{name: "no question, EDNS", pkt: cat(cHdr(fRD, 0, 0, 0, 1), cOPT)},
		{name: "unknown class", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(cWeb, 1, 0x1234))},
		{name: "class NONE", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(cWeb, 1, dns.ClassNONE))},
		{name: "class 0", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(cWeb, 1, 0))},
		{name: "CHAOS version.bind", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(wireName("version", "bind"), dns.TypeTXT, dns.ClassCHAOS))},
		{name: "CHAOS id.server", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(wireName("id", "server"), dns.TypeTXT, dns.ClassCHAOS))},
		{name: "type 0", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(cWeb, 0, 1))},
		{name: "type 0, NXDOMAIN name", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(wireName("nope", "disco", "internal"), 0, 1))},
		{name: "type 0, outside the zones", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(wireName("example", "org"), 0, 1))},
		{name: "type 0, CHAOS", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(cWeb, 0, dns.ClassCHAOS))},
		{name: "type 0, unknown class", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(cWeb, 0, 0x1234))},
		{name: "type OPT", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(cWeb, dns.TypeOPT, 1)), except: metaType},
		{name: "type TSIG", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(cWeb, dns.TypeTSIG, 1)), except: metaType},
		{name: "type TKEY", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(cWeb, dns.TypeTKEY, 1)), except: metaType},
		{name: "type OPT, CHAOS", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(cWeb, dns.TypeOPT, dns.ClassCHAOS))},
		{name: "opcode IQUERY", pkt: cat(cHdr(fRD|1<<opcode, 1, 0, 0, 0), q)},
		{name: "opcode STATUS", pkt: cat(cHdr(fRD|2<<opcode, 1, 0, 0, 0), q)},
		{name: "opcode 3", pkt: cat(cHdr(fRD|3<<opcode, 1, 0, 0, 0), q)},
		{name: "opcode 6", pkt: cat(cHdr(fRD|6<<opcode, 1, 0, 0, 0), q)},
		{name: "opcode 15", pkt: cat(cHdr(fRD|15<<opcode, 1, 0, 0, 0), q)},
		{name: "opcode 15, no question", pkt: cHdr(fRD|15<<opcode, 0, 0, 0, 0)},
		{name: "opcode STATUS, no question", pkt: cHdr(fRD|2<<opcode, 0, 0, 0, 0)},
		{name: "opcode 15, unknown class", pkt: cat(cHdr(fRD|15<<opcode, 1, 0, 0, 0), question(cWeb, 1, 0x1234))},
		{name: "opcode STATUS, CHAOS", pkt: cat(cHdr(fRD|2<<opcode, 1, 0, 0, 0), question(cWeb, 1, dns.ClassCHAOS))},
		{name: "NOTIFY", pkt: cat(cHdr(fRD|4<<opcode, 1, 0, 0, 0), question(wireName("disco", "internal"), dns.TypeSOA, 1)), except: notify},
		{name: "NOTIFY, no question", pkt: cHdr(4<<opcode, 0, 0, 0, 0), except: notify},

		// Responses get no answer.
		{name: "QR=1", pkt: cat(cHdr(fQR|fRD, 1, 0, 0, 0), q)},
		{name: "QR=1, opcode 15", pkt: cat(cHdr(fQR|fRD|15<<opcode, 1, 0, 0, 0), q)},
		{name: "QR=1, no question", pkt: cHdr(fQR, 0, 0, 0, 0)},

		// A question that cannot be read gets no answer, and ends a TCP
		// connection.
		{name: "header only", pkt: cHdr(fRD, 1, 0, 0, 0)},
		{name: "question cut in the name", pkt: cat(cHdr(fRD, 1, 0, 0, 0), q[:9])},
		{name: "question without its type", pkt: cat(cHdr(fRD, 1, 0, 0, 0), cWeb)},
		{name: "question without its class", pkt: cat(cHdr(fRD, 1, 0, 0, 0), cWeb, []byte{0, 1})},
		{name: "question with half a class", pkt: cat(cHdr(fRD, 1, 0, 0, 0), cWeb, []byte{0, 1, 0})},
		{name: "two questions", pkt: cat(cHdr(fRD, 2, 0, 0, 0), q, q), except: questions},
		{name: "two questions promised, one sent", pkt: cat(cHdr(fRD, 2, 0, 0, 0), q), except: questions},
		{name: "two questions, the first unreadable", pkt: cat(cHdr(fRD, 2, 0, 0, 0), []byte{0xc0, 12, 0, 1, 0, 1}, q), except: questions},
		{name: "label of 64 octets", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(wireName(repeat('a', 64), "disco", "internal"), 1, 1))},
		{name: "name of 321 octets", pkt: cat(cHdr(fRD, 1, 0, 0, 0), question(name321, 1, 1))},
		{name: "label type 0x40", pkt: cat(cHdr(fRD, 1, 0, 0, 0), []byte{0x41, 'a', 'b', 'c', 0, 0, 1, 0, 1})},
		{name: "label type 0x80", pkt: cat(cHdr(fRD, 1, 0, 0, 0), []byte{0x81, 'a', 'b', 'c', 0, 0, 1, 0, 1})},
		{name: "compression loop", pkt: cat(cHdr(fRD, 1, 0, 0, 0), []byte{0xc0, 12, 0, 1, 0, 1})},
		{name: "compression pointer forward", pkt: cat(cHdr(fRD, 1, 0, 0, 0), []byte{0xc0, 14, 0xc0, 12, 0, 1, 0, 1})},
		{name: "compression pointer into the header", pkt: cat(cHdr(fRD, 1, 0, 0, 0), []byte{0xc0, 2, 0, 1, 0, 1})},
		{name: "compression pointer after a label", pkt: cat(cHdr(fRD, 1, 0, 0, 0), []byte{3, 'w', 'e', 'b', 0xc0, 12, 0, 1, 0, 1})},
		{name: "QR=1, header only", pkt: cHdr(fQR, 1, 0, 0, 0)},
		{name: "opcode 15, two questions", pkt: cat(cHdr(fRD|15<<opcode, 2, 0, 0, 0), q, q)},
		{name: "no question, trailing bytes", pkt: cat(cHdr(fRD, 0, 0, 0, 0), []byte{1, 2})},
		{name: "no question, additional record missing", pkt: cHdr(fRD, 0, 0, 0, 1)},
		{name: "no question, OPT RDLENGTH past the end", pkt: cat(cHdr(fRD, 0, 0, 0, 1), cOPT[:9], []byte{0, 4})},

		// Without a question, a record that was read turns the message's
		// faults into FORMERR. (Knot's choice between that and silence
		// also depends on how many more records the header promises, an
		// accident of its parser not followed here.)
		{name: "no question, OPT then trailing bytes", pkt: cat(cHdr(fRD, 0, 0, 0, 1), cOPT, []byte{1})},
		{name: "no question, EDNS option past the OPT's end", pkt: cat(cHdr(fRD, 0, 0, 0, 1), cOPT[:9], []byte{0, 8, 0, 10, 0, 8, 'a', 'b', 'c', 'd'})},
		{name: "no question, two OPT records", pkt: cat(cHdr(fRD, 0, 0, 0, 2), cOPT, cOPT)},
		{name: "no question, OPT in the answer section", pkt: cat(cHdr(fRD, 0, 1, 0, 0), cOPT)},
		{name: "no question, A record of 3 octets", pkt: cat(cHdr(fRD, 0, 1, 0, 0), []byte{0, 0, 1, 0, 1, 0, 0, 0, 5, 0, 3, 10, 0, 0})},
		{name: "no question, second answer record missing", pkt: cat(cHdr(fRD, 0, 2, 0, 0), cA[2:], []byte{})},
		{name: "no question, opcode 15, OPT then trailing bytes", pkt: cat(cHdr(fRD|15<<opcode, 0, 0, 0, 1), cOPT, []byte{1})},
		{name: "no question, TSIG then OPT", pkt: cat(cHdr(fRD, 0, 0, 0, 2), tsigRR(nil), cOPT), except: tsigRead},
		{name: "no question, TSIG RDATA cut", pkt: cat(cHdr(fRD, 0, 0, 0, 1), tsigRR(func(r []byte) []byte { return r[:len(r)-3] })), except: tsigRead},

		// A readable question and something malformed after it: FORMERR
		// with the question, then the TCP connection ends.
		{name: "additional record promised, missing", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q)},
		{name: "answer record promised, missing", pkt: cat(cHdr(fRD, 1, 1, 0, 0), q)},
		{name: "authority record promised, missing", pkt: cat(cHdr(fRD, 1, 0, 1, 0), q)},
		{name: "two answer records promised, one sent", pkt: cat(cHdr(fRD, 1, 2, 0, 0), q, cA)},
		{name: "answer record promised, missing, with an OPT", pkt: cat(cHdr(fRD, 1, 1, 0, 1), q, cOPT)},
		{name: "two OPT records", pkt: cat(cHdr(fRD, 1, 0, 0, 2), q, cOPT, cOPT)},
		{name: "OPT in the answer section", pkt: cat(cHdr(fRD, 1, 1, 0, 0), q, cOPT)},
		{name: "OPT in the authority section", pkt: cat(cHdr(fRD, 1, 0, 1, 0), q, cOPT)},
		{name: "OPT cut short", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, cOPT[:7])},
		{name: "OPT RDLENGTH past the end", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, cOPT[:9], []byte{0, 4})},
		{name: "EDNS option past the OPT's end", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, cOPT[:9], []byte{0, 8, 0, 10, 0, 8, 'a', 'b', 'c', 'd'})},
		{name: "EDNS option header cut", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, cOPT[:9], []byte{0, 3, 0, 10, 0})},
		{name: "OPT RDLENGTH 1", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, cOPT[:9], []byte{0, 1, 0})},
		{name: "EDNS version 1, option past the end", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, []byte{0, 0, 41, 4, 0xd0, 0, 1, 0, 0, 0, 6, 0, 10, 0, 8, 'a', 'b'})},
		{name: "trailing bytes", pkt: cat(cHdr(fRD, 1, 0, 0, 0), q, []byte{1, 2, 3})},
		{name: "one trailing zero", pkt: cat(cHdr(fRD, 1, 0, 0, 0), q, []byte{0})},
		{name: "trailing bytes after the OPT", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, cOPT, []byte{1, 2})},
		{name: "1000 zero bytes after the question", pkt: cat(cHdr(fRD, 1, 0, 0, 0), q, make([]byte, 1000))},
		{name: "TSIG not last", pkt: cat(cHdr(fRD, 1, 0, 0, 2), q, tsigRR(nil), cOPT)},
		{name: "two TSIG records", pkt: cat(cHdr(fRD, 1, 0, 0, 2), q, tsigRR(nil), tsigRR(nil))},
		{name: "TSIG in the answer section", pkt: cat(cHdr(fRD, 1, 1, 0, 0), q, tsigRR(nil))},
		{name: "TSIG without RDATA", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, tsigRR(func([]byte) []byte { return nil }))},
		{name: "TSIG MAC past its RDATA", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, tsigRR(func(r []byte) []byte { return r[:len(r)-10] }))},
		{name: "TSIG other data past its RDATA", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, tsigRR(func(r []byte) []byte { r[len(r)-1] = 9; return r }))},
		{name: "record RDLENGTH past the end", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, []byte{0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 8, 10, 0, 0, 1})},
		{name: "record owner in a compression loop", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, []byte{0xc0, 33, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, 1})},
		{name: "record owner pointing forward", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, []byte{0xc0, 42, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, 1, 0})},
		{name: "record owner label of 64 octets", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, wireName(repeat('a', 64)), cA[2:])},
		{name: "record owner of 256 octets through a pointer", pkt: cat(cHdr(fRD, 1, 0, 0, 2), q, name255, cA[2:], []byte{1, 'b', 0xc0, 12 + byte(len(q)), 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, 1})},
		{name: "A record of 3 octets", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, []byte{0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 3, 10, 0, 0})},
		{name: "A record without RDATA", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, []byte{0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 0})},
		{name: "NS record pointing forward", pkt: cat(cHdr(fRD, 1, 0, 1, 0), q, []byte{0xc0, 12, 0, 2, 0, 1, 0, 0, 0, 5, 0, 2, 0xc0, 0x40})},
		{name: "NS record with a cut name", pkt: cat(cHdr(fRD, 1, 0, 1, 0), q, []byte{0xc0, 12, 0, 2, 0, 1, 0, 0, 0, 5, 0, 2, 5, 'a'})},
		{name: "opcode 15, trailing bytes", pkt: cat(cHdr(fRD|15<<opcode, 1, 0, 0, 0), q, []byte{1})},
		{name: "opcode 15, two OPT records", pkt: cat(cHdr(fRD|15<<opcode, 1, 0, 0, 2), q, cOPT, cOPT)},
		{name: "opcode 15, additional record missing", pkt: cat(cHdr(fRD|15<<opcode, 1, 0, 0, 1), q)},
		{name: "QR=1, trailing bytes", pkt: cat(cHdr(fQR|fRD, 1, 0, 0, 0), q, []byte{1})},
		{name: "OPT not owned by the root", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, []byte{1, 'x'}, cOPT), except: optOwner},
		{name: "opcode 15, OPT not owned by the root", pkt: cat(cHdr(fRD|15<<opcode, 1, 0, 0, 1), q, []byte{1, 'x'}, cOPT), except: optOwner},
		{name: "OPT owned by a pointer to the root", pkt: cat(cHdr(fRD, 1, 0, 0, 1), q, []byte{0xc0, byte(12 + len(cWeb) - 1)}, cOPT[1:]), except: optOwner},
		{name: D + " SOA with EDNS, DO and CD", pkt: cat(cHdr(fRD|0x0010, 1, 0, 0, 1), question(wireName("disco", "internal"), dns.TypeSOA, 1), optWith(0, 0x8000)), data: true},
	}
}

// reaction is how a server met one message.
type reaction struct {
	silent bool
	// closed: over TCP, the connection was closed after the message.
	closed bool
	rcode  int // with the OPT's extended bits
	opcode int
	flags  string // QR AA TC RD RA AD, as "qr aa rd"
	cd     bool
	qd     int
	edns   string // "" without an OPT, else "opt" or "opt do"
	data   []string
}

func (r reaction) String() string {
	if r.silent {
		if r.closed {
			return "silent, closed"
		}
		return "silent"
	}
	s := fmt.Sprintf("%s opcode %d flags [%s] cd %v qd %d %s", rcodeName(r.rcode), r.opcode, r.flags, r.cd, r.qd, r.edns)
	if r.closed {
		s += ", closed"
	}
	return s
}

// same compares the reactions, with data when asked.
func (r reaction) same(o reaction, data bool) bool {
	if r.silent != o.silent || r.closed != o.closed {
		return false
	}
	if r.silent {
		return true
	}
	return r.rcode == o.rcode && r.opcode == o.opcode && r.flags == o.flags && r.qd == o.qd && r.edns == o.edns &&
		(!data || slices.Equal(r.data, o.data))
}

// readReaction decodes an answer.
func readReaction(t *testing.T, out []byte) reaction {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(out); err != nil {
		t.Fatalf("answer %x does not parse: %v", out, err)
	}
	if m.Id != binary.BigEndian.Uint16(out) {
		t.Fatalf("answer ID mismatch")
	}
	var flags []string
	for _, f := range []struct {
		on   bool
		name string
	}{{m.Response, "qr"}, {m.Authoritative, "aa"}, {m.Truncated, "tc"}, {m.RecursionDesired, "rd"},
		{m.RecursionAvailable, "ra"}, {m.AuthenticatedData, "ad"}} {
		if f.on {
			flags = append(flags, f.name)
		}
	}
	r := reaction{rcode: m.Rcode, opcode: m.Opcode, flags: strings.Join(flags, " "), cd: m.CheckingDisabled, qd: len(m.Question)}
	if opt := m.IsEdns0(); opt != nil {
		r.edns = "opt"
		if opt.Do() {
			r.edns += " do"
		}
	}
	r.data = append(rrStrings(m.Answer), rrStrings(m.Ns)...)
	return r
}

// askUDP sends pkt and then the sentinel from one socket, and returns the
// reaction to pkt: both servers answer one socket's datagrams in order.
func askUDP(t *testing.T, addr string, pkt, sentinel []byte) reaction {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, p := range [][]byte{pkt, sentinel} {
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, dns.MaxMsgSize)
	c.SetReadDeadline(time.Now().Add(waitLimit))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no answer from %s: %v", addr, err)
	}
	if binary.BigEndian.Uint16(buf) == sentinelID {
		return reaction{silent: true}
	}
	r := readReaction(t, buf[:n])
	if n, err = c.Read(buf); err != nil || binary.BigEndian.Uint16(buf[:n]) != sentinelID {
		t.Fatalf("%s: no answer to the sentinel after the message (%v)", addr, err)
	}
	return r
}

// askTCP sends pkt and then the sentinel on a new connection, in one
// write, and returns the reaction to pkt, with whether the connection was
// closed instead of answering the sentinel.
func askTCP(t *testing.T, addr string, pkt, sentinel []byte) reaction {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var msgs []byte
	for _, p := range [][]byte{pkt, sentinel} {
		msgs = binary.BigEndian.AppendUint16(msgs, uint16(len(p)))
		msgs = append(msgs, p...)
	}
	if _, err := c.Write(msgs); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(waitLimit))
	read := func() ([]byte, bool) {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("%s: connection neither answered nor closed", addr)
			}
			return nil, false // closed (or reset)
		}
		out := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, out); err != nil {
			return nil, false
		}
		return out, true
	}
	out, ok := read()
	if !ok {
		return reaction{silent: true, closed: true}
	}
	var r reaction
	if binary.BigEndian.Uint16(out) == sentinelID {
		return reaction{silent: true}
	}
	r = readReaction(t, out)
	if out, ok := read(); !ok {
		r.closed = true
	} else if binary.BigEndian.Uint16(out) != sentinelID {
		t.Fatalf("%s: second answer is not the sentinel's", addr)
	}
	return r
}

// knotZone is the zone file of instances for Knot: what disco serves for
// them with testConfig.
func knotZone(instances []fixtureInstance) string {
	var b strings.Builder
	b.WriteString("$ORIGIN disco.internal.\n$TTL 5\n")
	b.WriteString("@ SOA ns1.disco.internal. hostmaster.disco.internal. 1767225600 3600 600 86400 5\n")
	b.WriteString("@ NS ns1\nns1 A 127.0.0.1\n")
	for _, in := range instances {
		fmt.Fprintf(&b, "%s.service A %s\n", in.service, in.addr)
	}
	return b.String()
}

// startKnot runs knotd on a free loopback port with zone as the zone
// disco.internal. until the test ends, and returns its address.
func startKnot(t *testing.T, zone string) string {
	t.Helper()
	knotd, err := exec.LookPath("knotd")
	if err != nil {
		t.Skip("knotd not installed (Debian package knot)")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "disco.internal.zone"), []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	for try := 0; ; try++ {
		addr := freePort(t)
		host, port, _ := net.SplitHostPort(addr)
		// One UDP worker answers one socket's datagrams in order; no
		// CHAOS identity or version, as disco.
		conf := fmt.Sprintf(`server:
    listen: %s@%s
    rundir: %s
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
    identity: ""
    version: ""
database:
    storage: %s
log:
  - target: stderr
    any: warning
zone:
  - domain: disco.internal.
    file: %s
`, host, port, dir, filepath.Join(dir, "db"), filepath.Join(dir, "disco.internal.zone"))
		confFile := filepath.Join(dir, "knot.conf")
		if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		cmd := exec.Command(knotd, "-c", confFile)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if waitReady(addr, done) {
			t.Cleanup(func() {
				cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-done:
				case <-time.After(waitLimit):
					cmd.Process.Kill()
					<-done
				}
			})
			return addr
		}
		cmd.Process.Kill()
		<-done
		if try == 3 {
			t.Fatalf("knotd did not start:\n%s", logs.String())
		}
	}
}

// waitReady waits until the server at addr answers the apex SOA, or done
// says it exited.
func waitReady(addr string, done <-chan error) bool {
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	req := new(dns.Msg)
	req.SetQuestion("disco.internal.", dns.TypeSOA)
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return false
		default:
		}
		if resp, _, err := c.Exchange(req, addr); err == nil && resp.Rcode == dns.RcodeSuccess && len(resp.Answer) == 1 {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// freePort returns a loopback address whose port was free for UDP and TCP.
func freePort(t *testing.T) string {
	t.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			return addr
		}
	}
}

// TestKnotDifferential sends the corpus to disco and to Knot DNS over UDP
// and TCP and requires the same reaction, except where a case lists
// disco's own with its reason.
func TestKnotDifferential(t *testing.T) {
	instances := []fixtureInstance{
		{service: "web", id: "web-1", addr: "10.0.0.1", port: 80},
		{service: "web", id: "web-2", addr: "10.0.0.2", port: 80},
		{service: "web", id: "web-3", addr: "10.0.0.3", port: 80},
	}
	for i := range 40 {
		instances = append(instances, fixtureInstance{service: "big", id: fmt.Sprintf("big-%d", i), addr: fmt.Sprintf("10.1.0.%d", i+1), port: 80})
	}
	knot := startKnot(t, knotZone(instances))
	h := NewHandler(testConfig(), testRegistry(t, instances, nil), nil, nil)
	disco := startServer(t, ServerConfig{UDPSockets: 1}, h)
	sentinel := pack(t, sentinelID, goodName, dns.TypeA, nil)

	for _, tc := range knotCorpus() {
		t.Run(tc.name, func(t *testing.T) {
			for _, transport := range []string{"udp", "tcp"} {
				ask := askUDP
				if transport == "tcp" {
					ask = askTCP
				}
				k, d := ask(t, knot, tc.pkt, sentinel), ask(t, disco, tc.pkt, sentinel)
				if e := tc.except; e != nil {
					want := e.rcode
					got := d.rcode
					if d.silent {
						got = silence
					}
					if got != want || transport == "tcp" && d.closed != e.closes {
						t.Errorf("%s: disco %v, want %s (closes %v): %s", transport, d, rcodeName(want), e.closes, e.reason)
					}
					t.Logf("%s: Knot %v; disco %v: %s", transport, k, d, e.reason)
					continue
				}
				if cd := len(tc.pkt) > 3 && tc.pkt[3]&0x10 != 0; !d.silent && d.cd != cd {
					t.Errorf("%s: disco's answer has CD %v, the query %v", transport, d.cd, cd)
				}
				if !d.same(k, tc.data) {
					t.Errorf("%s:\ndisco %v\nKnot  %v", transport, d, k)
					if tc.data {
						t.Errorf("data: disco %q\nKnot %q", d.data, k.data)
					}
				}
			}
		})
	}
}
