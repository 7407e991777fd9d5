package dnsserver

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// describe prints what readMessage learnt of a message.
func (m *wireMsg) describe(pkt []byte) string {
	var parts []string
	if m.question() {
		parts = append(parts, fmt.Sprintf("%s %s %s", m.qname(pkt), typeString(m.qtype), dns.ClassToString[m.qclass]))
	} else {
		parts = append(parts, "no question")
	}
	if m.edns() {
		e := fmt.Sprintf("edns %d v%d", m.ednsSize, m.ednsVersion())
		if m.do() {
			e += " do"
		}
		if m.optLen > 0 {
			e += fmt.Sprintf(" options %d", m.optLen)
		}
		parts = append(parts, e)
	}
	if m.tsig != 0 {
		parts = append(parts, fmt.Sprintf("tsig at %d", m.tsig))
	}
	if m.plain() {
		parts = append(parts, "plain")
	} else {
		parts = append(parts, fmt.Sprintf("records %d/%d/%d", m.an, m.ns, m.ar))
	}
	return strings.Join(parts, ", ")
}

func TestReadMessage(t *testing.T) {
	q := cQ
	tsigAt := 12 + len(q) + len(cOPT)
	long63 := repeat('a', 63)
	tests := []struct {
		name  string
		pkt   []byte
		fault msgFault
		want  string // describe, when the question was read
	}{
		{"plain", cat(cHdr(fRD, 1, 0, 0, 0), q), msgOK, "web.service.disco.internal. A IN, plain"},
		{"case kept", cat(cHdr(fRD, 1, 0, 0, 0), question(wireName("WEB", "x"), dns.TypeSRV, dns.ClassCHAOS)), msgOK, "WEB.x. SRV CH, plain"},
		{"EDNS with DO", cat(cHdr(fRD, 1, 0, 0, 1), q, optWith(0, 0x8000)), msgOK, "web.service.disco.internal. A IN, edns 1232 v0 do, plain"},
		{"EDNS version 1 and options", cat(cHdr(fRD, 1, 0, 0, 1), q, optWith(1, 0, 10, []byte("abcdefgh"), 12, []byte{})), msgOK, "web.service.disco.internal. A IN, edns 1232 v1 options 16, plain"},
		{"OPT then TSIG", cat(cHdr(fRD, 1, 0, 0, 2), q, cOPT, tsigRR(nil)), msgOK, fmt.Sprintf("web.service.disco.internal. A IN, edns 1232 v0, tsig at %d, records 0/0/2", tsigAt)},
		{"TSIG with a compressed algorithm name", cat(cHdr(fRD, 1, 0, 0, 1), q, tsigRR(func(r []byte) []byte { return append([]byte{0xc0, 12}, r[13:]...) })), msgOK, fmt.Sprintf("web.service.disco.internal. A IN, tsig at %d, records 0/0/1", 12+len(q))},
		{"records in a query", cat(cHdr(fRD, 1, 1, 1, 2), q, cA, cA, cOPT, cA), msgOK, "web.service.disco.internal. A IN, edns 1232 v0, records 1/1/2"},
		{"no question", cHdr(0, 0, 0, 0, 0), msgOK, "no question, plain"},
		{"no question, EDNS", cat(cHdr(0, 0, 0, 0, 1), cOPT), msgOK, "no question, edns 1232 v0, plain"},
		{"name of 255 octets", cat(cHdr(0, 1, 0, 0, 0), question(wireName(long63, long63, long63, repeat('b', 61)), 1, 1)), msgOK, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb. A IN, plain"},
		{"record names through backward pointers", cat(cHdr(0, 1, 0, 1, 0), q, []byte{1, 'x', 0xc0, 12, 0, 2, 0, 1, 0, 0, 0, 5, 0, 2, 0xc0, byte(12 + len(q))}), msgOK, "web.service.disco.internal. A IN, records 0/1/0"},
		{"SOA record", cat(cHdr(0, 1, 1, 0, 0), q, []byte{0xc0, 12, 0, 6, 0, 1, 0, 0, 0, 5, 0, 24, 0xc0, 12, 0xc0, 12}, make([]byte, 20)), msgOK, "web.service.disco.internal. A IN, records 1/0/0"},
		{"SOA record one octet short", cat(cHdr(0, 1, 1, 0, 0), q, []byte{0xc0, 12, 0, 6, 0, 1, 0, 0, 0, 5, 0, 23, 0xc0, 12, 0xc0, 12}, make([]byte, 19)), msgMalformed, "web.service.disco.internal. A IN, records 1/0/0"},
		{"MX record", cat(cHdr(0, 1, 1, 0, 0), q, []byte{0xc0, 12, 0, 15, 0, 1, 0, 0, 0, 5, 0, 4, 0, 10, 0xc0, 12}), msgOK, "web.service.disco.internal. A IN, records 1/0/0"},
		{"TXT record", cat(cHdr(0, 1, 1, 0, 0), q, []byte{0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 5, 0, 3, 2, 'h', 'i'}), msgOK, "web.service.disco.internal. A IN, records 1/0/0"},
		{"TXT record, string past its RDATA", cat(cHdr(0, 1, 1, 0, 0), q, []byte{0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 5, 0, 3, 5, 'h', 'i'}), msgMalformed, "web.service.disco.internal. A IN, records 1/0/0"},

		{"short header", cHdr(0, 1, 0, 0, 0)[:11], msgNoHeader, ""},
		{"name of 256 octets", cat(cHdr(0, 1, 0, 0, 0), question(wireName(long63, long63, long63, repeat('b', 62)), 1, 1)), msgNoQuestion, ""},
		{"pointer in the question", cat(cHdr(0, 1, 0, 0, 0), []byte{1, 'a', 0xc0, 4, 0, 1, 0, 1}), msgNoQuestion, ""},
		{"three questions", cat(cHdr(0, 3, 0, 0, 0), q, q, q), msgQuestions, ""},
		{"three questions, opcode 15", cat(cHdr(15<<opcode, 3, 0, 0, 0), q, q, q), msgNoQuestion, ""},
		{"no question, record missing", cHdr(0, 0, 1, 0, 0), msgNoQuestion, ""},
		{"no question, OPT not at the root", cat(cHdr(0, 0, 0, 0, 1), []byte{1, 'x'}, cOPT), msgMalformed, "no question, records 0/0/1"},
		{"no question, OPT cut", cat(cHdr(0, 0, 0, 0, 1), cOPT[:10]), msgNoQuestion, ""},
		{"record owner pointing at itself", cat(cHdr(0, 1, 1, 0, 0), q, []byte{0xc0, byte(12 + len(q)), 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 1, 2, 3, 4}), msgMalformed, "web.service.disco.internal. A IN, records 1/0/0"},
		{"record fields cut", cat(cHdr(0, 1, 1, 0, 0), q, cA[:10]), msgMalformed, "web.service.disco.internal. A IN, records 1/0/0"},
		{"OPT owned by a pointer to the root", cat(cHdr(0, 1, 0, 0, 1), q, []byte{0xc0, byte(12 + len(cWeb) - 1)}, cOPT[1:]), msgMalformed, "web.service.disco.internal. A IN, records 0/0/1"},
		{"TSIG before the OPT", cat(cHdr(0, 1, 0, 0, 2), q, tsigRR(nil), cOPT), msgMalformed, "web.service.disco.internal. A IN, records 0/0/2"},
		{"TSIG other data cut", cat(cHdr(0, 1, 0, 0, 1), q, tsigRR(func(r []byte) []byte { r[len(r)-1] = 1; return r })), msgMalformed, "web.service.disco.internal. A IN, records 0/0/1"},
		{"TSIG in the authority section", cat(cHdr(0, 1, 0, 1, 0), q, tsigRR(nil)), msgMalformed, "web.service.disco.internal. A IN, records 0/1/0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, fault := readMessage(tc.pkt)
			if fault != tc.fault {
				t.Fatalf("fault %v, want %v", fault, tc.fault)
			}
			if tc.want == "" {
				return
			}
			if got := m.describe(tc.pkt); got != tc.want {
				t.Errorf("read\n%s\nwant\n%s", got, tc.want)
			}
			if m.id != corpusID && m.id != binary.BigEndian.Uint16(tc.pkt) {
				t.Errorf("id %#x", m.id)
			}
		})
	}
}

// TestReadMessageAllocs checks that reading a query allocates nothing.
func TestReadMessageAllocs(t *testing.T) {
	pkt := cat(cHdr(fRD, 1, 0, 0, 1), cQ, optWith(0, 0x8000, 10, []byte("abcdefgh")))
	if n := testing.AllocsPerRun(100, func() { readMessage(pkt) }); n != 0 {
		t.Errorf("%v allocations per read", n)
	}
}

// FuzzReadMessage checks readMessage against miekg/dns on any input:
// nothing panics; offsets stay inside the message; what it accepts as
// plain, miekg/dns reads too, with the same question; the plain form the
// TCP path hands miekg/dns reads again as the same query; a FORMERR
// answer parses and echoes the question. Seeds are the Knot corpus and
// hostileCases; failures are kept in testdata/fuzz/FuzzReadMessage.
func FuzzReadMessage(f *testing.F) {
	for _, tc := range knotCorpus() {
		f.Add(tc.pkt)
	}
	for _, tc := range hostileCases(f) {
		f.Add(tc.pkt)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		m, fault := readMessage(pkt)
		if (fault == msgMalformed || fault == msgOK) && m.qd == 1 {
			if !m.question() || m.questionEnd() > len(pkt) {
				t.Fatalf("%v with question end %d of %d", fault, m.questionEnd(), len(pkt))
			}
		}
		if fault == msgQuestions {
			out := formErr(pkt, &m, fault, nil)
			if m.response() != (out == nil) {
				t.Fatalf("answer %x to a query with %d questions, response %v", out, m.qd, m.response())
			}
			if out != nil {
				if r := checkReply(t, out, m.id); r.Rcode != dns.RcodeFormatError || len(r.Question) != 0 {
					t.Fatalf("answer %v to a query with %d questions", r, m.qd)
				}
			}
			return
		}
		if fault == msgMalformed {
			out := formErr(pkt, &m, fault, nil)
			if m.response() {
				if out != nil {
					t.Fatalf("FORMERR to a response")
				}
				return
			}
			r := checkReply(t, out, m.id)
			if r.Rcode != dns.RcodeFormatError || len(r.Question) != int(m.qd) || r.Opcode != m.opcode() ||
				m.qd == 1 && r.Question[0].Name != m.qname(pkt) {
				t.Fatalf("FORMERR %v for question %q", r, m.qname(pkt))
			}
			return
		}
		if fault != msgOK {
			return
		}
		full := new(dns.Msg)
		fullErr := full.Unpack(pkt)
		if m.plain() && m.optLen == 0 && fullErr != nil {
			t.Fatalf("readMessage accepts a plain message miekg/dns does not read: %v", fullErr)
		}
		if fullErr == nil && m.question() {
			if q := full.Question[0]; q.Name != m.qname(pkt) || q.Qtype != m.qtype || q.Qclass != m.qclass {
				t.Fatalf("question %v, miekg/dns reads %v", m.describe(pkt), q)
			}
		}
		if !m.simple() {
			return
		}
		req, err := m.request(pkt)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		if m.question() && req.Question[0].Name != m.qname(pkt) {
			t.Fatalf("request question %v", req.Question[0])
		}
		plain := m.appendPlain(pkt, nil)
		p, pf := readMessage(plain)
		wantPlain := wireMsg{id: m.id, flags: m.flags, qd: m.qd, ar: p.ar, qnameEnd: m.qnameEnd, qtype: m.qtype, qclass: m.qclass,
			opt: p.opt, ednsSize: m.ednsSize, ednsTTL: m.ednsTTL}
		if pf != msgOK || !p.plain() || p.optLen != 0 || p != wantPlain || p.edns() != m.edns() {
			t.Fatalf("plain form reads %v %+v, want %+v", pf, p, wantPlain)
		}
		if err := new(dns.Msg).Unpack(plain); err != nil {
			t.Fatalf("miekg/dns does not read the plain form: %v", err)
		}
	})
}

// BenchmarkReadMessage reads a query as dig sends it (EDNS with a cookie)
// and takes its cache key.
func BenchmarkReadMessage(b *testing.B) {
	pkt := cat(cHdr(fRD, 1, 0, 0, 1), cQ, optWith(0, 0, 10, []byte("abcdefgh")))
	key := make([]byte, 0, 300)
	b.ReportAllocs()
	for b.Loop() {
		m, fault := readMessage(pkt)
		if fault != msgOK {
			b.Fatal(fault)
		}
		key, _ = appendKey(pkt, &m, key[:0], false)
	}
}

func TestLowerInPlace(t *testing.T) {
	var all []byte
	for i := range 256 {
		all = append(all, byte(i))
	}
	for n := range len(all) + 1 {
		for _, start := range []int{0, 3, 60, 64} {
			if start > n {
				continue
			}
			b := slices.Clone(all[start:n])
			lowerInPlace(b)
			for i, c := range b {
				want := all[start+i]
				if want >= 'A' && want <= 'Z' {
					want += 'a' - 'A'
				}
				if c != want {
					t.Fatalf("octet %#x of %d..%d became %#x, want %#x", all[start+i], start, n, c, want)
				}
			}
		}
	}
}
