package dnsserver

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"disco/registry"
)

// fastQuery packs a query and runs it through the UDP path.
func fastQuery(t testing.TB, h *Handler, s *Query, req *dns.Msg) *dns.Msg {
	t.Helper()
	pkt, err := req.Pack()
	if err != nil {
		t.Fatal(err)
	}
	out := h.serveUDP(pkt, netip.AddrPort{}, s)
	if out == nil {
		return nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(out); err != nil {
		t.Fatalf("response does not parse: %v", err)
	}
	return m
}

func sections(m *dns.Msg) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rcode=%s aa=%v tc=%v rd=%v cd=%v id=%d q=%v\n", dns.RcodeToString[m.Rcode], m.Authoritative,
		m.Truncated, m.RecursionDesired, m.CheckingDisabled, m.Id, m.Question)
	if opt := m.IsEdns0(); opt != nil {
		fmt.Fprintf(&b, "opt size=%d do=%v opts=%v\n", opt.UDPSize(), opt.Do(), opt.Option)
	}
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		b.WriteString(strings.Join(rrStrings(sec), "\n"))
		b.WriteString("\n--\n")
	}
	return b.String()
}

// TestFastPathMatchesFullPath checks that every answer of the pre-packed
// path equals the full miekg/dns path's, record for record (order aside).
func TestFastPathMatchesFullPath(t *testing.T) {
	var many []fixtureInstance
	for i := range 60 {
		many = append(many, fixtureInstance{service: "big", id: fmt.Sprintf("big-%d", i), addr: fmt.Sprintf("10.1.0.%d", i+1), port: 9000})
	}
	reg := testRegistry(t, append(many, fixture...), fixtureSettings)
	h := NewHandler(testConfig(), reg, nil, nil)
	s := newScratch()
	names := []string{
		"disco.internal.", "ns1.disco.internal.", "web.service.disco.internal.", "WEB.Service.disco.INTERNAL.",
		"v2.web.service.disco.internal.", "_web._tcp.service.disco.internal.", "_web._v1.service.disco.internal.",
		"db.service.disco.internal.", "down.service.disco.internal.", "nope.service.disco.internal.",
		"service.disco.internal.", "0a000001.addr.disco.internal.", "web-3.web.instance.disco.internal.",
		"big.service.disco.internal.", "example.com.", "www.disco.internal.", "slow.service.disco.internal.",
	}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeTXT, dns.TypeSOA, dns.TypeNS, dns.TypeMX}
	type shape struct {
		edns   uint16
		do, rd bool
	}
	shapes := []shape{{0, false, false}, {0, false, true}, {1232, false, false}, {4096, true, true}, {512, false, false}}
	for _, name := range names {
		for _, qt := range types {
			for _, sh := range shapes {
				req := new(dns.Msg)
				req.SetQuestion(name, qt)
				req.RecursionDesired = sh.rd
				req.CheckingDisabled = sh.do
				if sh.edns > 0 {
					req.SetEdns0(sh.edns, sh.do)
				}
				for round := range 2 { // a miss, then a hit
					fast := fastQuery(t, h, s, req)
					full := h.Respond(req, true)
					// Names compressed against the question take its case:
					// compare case-insensitively past the question.
					if got, want := strings.ToLower(sections(fast)), strings.ToLower(sections(full)); got != want && !full.Truncated {
						t.Fatalf("%s %s %+v round %d:\nfast path:\n%s\nfull path:\n%s", name, dns.TypeToString[qt], sh, round, got, want)
					}
					if full.Truncated && (!fast.Truncated || len(fast.Answer) != len(full.Answer)) {
						t.Fatalf("%s %s %+v: truncated fast answer has %d records tc=%v, full path %d",
							name, dns.TypeToString[qt], sh, len(fast.Answer), fast.Truncated, len(full.Answer))
					}
				}
			}
		}
	}
}

func TestFastPathSeesChanges(t *testing.T) {
	reg := testRegistry(t, fixture, nil)
	h := NewHandler(testConfig(), reg, nil, nil)
	s := newScratch()
	ask := func() []string {
		req := new(dns.Msg)
		req.SetQuestion("web.service.disco.internal.", dns.TypeA)
		return answerSet(fastQuery(t, h, s, req))
	}
	if got := ask(); len(got) != 3 {
		t.Fatalf("before: %v", got)
	}
	ctx := context.Background()
	in, err := registry.NewInstance("web", "web-4", registry.Registration{Address: "10.0.0.4", Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	if got := ask(); len(got) != 4 {
		t.Fatalf("after registering web-4: %v", got)
	}
	// A change to another service leaves this answer cached.
	misses := h.stats.cacheMisses.Load()
	other, _ := registry.NewInstance("db", "db-2", registry.Registration{Address: "fd00::6", Port: 1})
	if _, err := reg.Register(ctx, other); err != nil {
		t.Fatal(err)
	}
	ask()
	if h.stats.cacheMisses.Load() != misses {
		t.Errorf("a change to db invalidated web's cached answer")
	}
	if err := reg.Deregister(ctx, "web", "web-1"); err != nil {
		t.Fatal(err)
	}
	if got := ask(); slices.Contains(got, "10.0.0.1") || len(got) != 3 {
		t.Fatalf("after deregistering web-1: %v", got)
	}
}

func answerSet(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return out
}

func TestFastPathSpreadsOrder(t *testing.T) {
	h := NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
	s := newScratch()
	first := map[string]int{}
	for range 300 {
		req := new(dns.Msg)
		req.SetQuestion("web.service.disco.internal.", dns.TypeA)
		m := fastQuery(t, h, s, req)
		first[m.Answer[0].(*dns.A).A.String()]++
	}
	if len(first) != 3 {
		t.Errorf("first record over 300 answers: %v, want each of the 3 instances first sometimes", first)
	}
}

func TestMalformedPackets(t *testing.T) {
	h := NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
	s := newScratch()
	good := new(dns.Msg)
	good.SetQuestion("web.service.disco.internal.", dns.TypeA)
	wire, _ := good.Pack()
	ptrLoop := append([]byte(nil), wire[:12]...)
	ptrLoop = append(ptrLoop, 0xc0, 12, 0, 1, 0, 1) // the name points at itself
	response := append([]byte(nil), wire...)
	response[2] |= 0x80
	twoQuestions := append([]byte(nil), wire...)
	twoQuestions[5] = 2
	noQuestion := append([]byte(nil), wire[:12]...)
	noQuestion[5] = 0
	// As Knot DNS reacts: no answer without a readable question, FORMERR
	// for a readable one followed by something malformed; and FORMERR for
	// more than one question (RFC 9619).
	tests := []struct {
		name  string
		pkt   []byte
		rcode int // -1: silence
	}{
		{"empty", nil, -1},
		{"short header", wire[:7], -1},
		{"header only", wire[:12], -1},
		{"truncated question", wire[:20], -1},
		{"pointer loop", ptrLoop, -1},
		{"response", response, -1},
		{"two questions claimed", twoQuestions, dns.RcodeFormatError},
		{"no question", noQuestion, dns.RcodeFormatError},
		{"trailing garbage", append(append([]byte(nil), wire...), 1, 2, 3), dns.RcodeFormatError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := h.serveUDP(tc.pkt, netip.AddrPort{}, s)
			if tc.rcode == -1 {
				if out != nil {
					t.Fatalf("answered %x, want silence", out)
				}
				return
			}
			if len(out) < 12 {
				t.Fatalf("answer %x, want rcode %s", out, dns.RcodeToString[tc.rcode])
			}
			if rc := int(out[3] & 0xf); rc != tc.rcode || out[2]&0x80 == 0 || out[0] != tc.pkt[0] || out[1] != tc.pkt[1] {
				t.Errorf("rcode %s qr=%v id %x, want %s with the query's id", dns.RcodeToString[rc], out[2]&0x80 != 0, out[:2], dns.RcodeToString[tc.rcode])
			}
		})
	}
}

func BenchmarkFastPathHit(b *testing.B) {
	var many []fixtureInstance
	for k := range 1000 {
		for j := 1; j <= 3; j++ {
			many = append(many, fixtureInstance{service: fmt.Sprintf("web-%d", k), id: fmt.Sprintf("web-%d-%d", k, j),
				addr: fmt.Sprintf("10.%d.%d.%d", k/250, k%250+1, j), port: 8080})
		}
	}
	h := NewHandler(testConfig(), testRegistry(b, many, nil), nil, nil)
	for _, tc := range []struct {
		name  string
		qname string
		qtype uint16
	}{
		{"A", "web-7.service.disco.internal.", dns.TypeA},
		{"SRV", "_web-7._tcp.service.disco.internal.", dns.TypeSRV},
		{"NXDOMAIN", "nx-7.service.disco.internal.", dns.TypeA},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req := new(dns.Msg)
			req.SetQuestion(tc.qname, tc.qtype)
			pkt, _ := req.Pack()
			s := newScratch()
			h.serveUDP(pkt, netip.AddrPort{}, s)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if h.serveUDP(pkt, netip.AddrPort{}, s) == nil {
					b.Fatal("no answer")
				}
			}
		})
	}
}

func BenchmarkFullPath(b *testing.B) {
	h := NewHandler(testConfig(), testRegistry(b, fixture, nil), nil, nil)
	req := new(dns.Msg)
	req.SetQuestion("web.service.disco.internal.", dns.TypeSRV)
	b.ReportAllocs()
	for b.Loop() {
		m := h.Respond(req, true)
		if _, err := m.Pack(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFastPathMiss answers queries that all miss the answer cache, as
// in a flood of random names: half A queries for names under service.D,
// half SRV queries for _name._tcp.service.D, none of which exist.
func BenchmarkFastPathMiss(b *testing.B) {
	h := NewHandler(testConfig(), testRegistry(b, fixture, nil), nil, nil)
	const distinct = 1 << 16
	pkts := make([][]byte, distinct)
	for i := range pkts {
		req := new(dns.Msg)
		if i%2 == 0 {
			req.SetQuestion(fmt.Sprintf("r%08x.service.disco.internal.", i), dns.TypeA)
		} else {
			req.SetQuestion(fmt.Sprintf("_r%08x._tcp.service.disco.internal.", i), dns.TypeSRV)
		}
		req.SetEdns0(1232, false)
		pkts[i], _ = req.Pack()
	}
	s := newScratch()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if h.serveUDP(pkts[i%distinct], netip.AddrPort{}, s) == nil {
			b.Fatal("no answer")
		}
		i++
	}
}
