package dnsserver

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"disco/registry"
)

// negativeHandler is a handler with the fixture, static zones (zone files
// zs) and reverse zones for 10.0.0.0/8 and fd00::/8, whose discovery zone
// has moved past its first serial.
func negativeHandler(t *testing.T, zs ...string) *Handler {
	t.Helper()
	cfg := testConfig()
	cfg.ReverseZones = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	reg := testRegistry(t, fixture, fixtureSettings)
	h := NewHandler(cfg, reg, staticZones{parseZones(t, zs...)}, nil)
	h.zone.current()
	in, err := registry.NewInstance("late", "late-1", registry.Registration{Address: "10.9.0.1", Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Register(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if st := h.zone.current(); st.serial == testSerial {
		t.Fatal("the serial did not move")
	}
	return h
}

// negativeQuery runs req through answerNegative; ok as answerNegative's.
func negativeQuery(t *testing.T, h *Handler, req *dns.Msg, cached bool) (*dns.Msg, bool) {
	t.Helper()
	pkt, err := req.Pack()
	if err != nil {
		t.Fatal(err)
	}
	m, fault := readMessage(pkt)
	if fault != msgOK {
		t.Fatalf("query %v: %v", req.Question, fault)
	}
	key, ok := appendKey(pkt, &m, nil, false)
	if !ok {
		t.Fatalf("query %v has no cache key", req.Question)
	}
	name := []byte("left over from an earlier query")
	prefix := []byte("before")
	out, rcode, ok := h.answerNegative(pkt, &m, key, h.zone.current(), append(make([]byte, 0, 600), prefix...), &name, cached)
	if string(out[:len(prefix)]) != string(prefix) {
		t.Fatalf("%v: what was in the buffer before is gone: %q", req.Question, out)
	}
	if !ok {
		if len(out) != len(prefix) {
			t.Fatalf("%v: declined, but left %x in the buffer", req.Question, out[len(prefix):])
		}
		return nil, false
	}
	out = out[len(prefix):]
	resp := new(dns.Msg)
	if err := resp.Unpack(out); err != nil {
		t.Fatalf("%v: answer %x does not parse: %v", req.Question, out, err)
	}
	if resp.Rcode != rcode {
		t.Fatalf("%v: rcode %d returned, %d in the answer", req.Question, rcode, resp.Rcode)
	}
	return resp, true
}

// TestNegativeMatchesFullPath checks that answers written without a
// dns.Msg have the full path's content (rcode, flags, question, records,
// TTLs, serial, OPT and EDE), and which answers take that path: those
// without records, except, when the answer cache is in use, NODATA at
// names the registry holds.
func TestNegativeMatchesFullPath(t *testing.T) {
	const (
		both    = iota // written directly, by the UDP path and without the cache
		nocache        // NODATA at a registry name: kept by the UDP cache
		records        // an answer with records: never
		escaped        // a name with escapes: never
	)
	type tc struct {
		qname string
		qtype uint16
		path  int
	}
	common := []tc{
		{"disco.internal.", dns.TypeTXT, both},
		{"disco.internal.", dns.TypeSOA, records},
		{"ns1.disco.internal.", dns.TypeAAAA, both},
		{"service.disco.internal.", dns.TypeA, both},
		{"_tcp.service.disco.internal.", dns.TypeSRV, both},
		{"_r0a1b2c3d._tcp.service.disco.internal.", dns.TypeSRV, both},
		{"r0a1b2c3d.service.disco.internal.", dns.TypeA, both},
		{"R0A1b2C3D.Service.DISCO.internal.", dns.TypeA, both},
		{"web.service.disco.internal.", dns.TypeA, records},
		{"web.service.disco.internal.", dns.TypeAAAA, nocache},
		{"v9.web.service.disco.internal.", dns.TypeA, both},
		{"v1.web.service.disco.internal.", dns.TypeAAAA, nocache},
		{"_web._tcp.service.disco.internal.", dns.TypeAAAA, nocache},
		{"_web._v9.service.disco.internal.", dns.TypeSRV, both},
		{"empty.service.disco.internal.", dns.TypeA, nocache}, // EDE: no instance
		{"empty.service.disco.internal.", dns.TypeTXT, records},
		{"down.service.disco.internal.", dns.TypeSRV, nocache}, // EDE: none passing
		{"0a000001.addr.disco.internal.", dns.TypeAAAA, nocache},
		{"0a0000ff.addr.disco.internal.", dns.TypeA, both},
		{"zz.addr.disco.internal.", dns.TypeA, both},
		{"addr.disco.internal.", dns.TypeA, both},
		{"web.instance.disco.internal.", dns.TypeA, nocache},
		{"nope.instance.disco.internal.", dns.TypeA, both},
		{"web-1.web.instance.disco.internal.", dns.TypeMX, nocache},
		{"web-9.web.instance.disco.internal.", dns.TypeA, both},
		{"a.b.c.instance.disco.internal.", dns.TypeA, both},
		{"_services._dns-sd._udp.service.disco.internal.", dns.TypeA, both},
		{"_services._dns-sd._udp.service.disco.internal.", dns.TypePTR, records},
		{"b._dns-sd._udp.disco.internal.", dns.TypeTXT, both},
		{"_dns-sd._udp.disco.internal.", dns.TypeA, both},
		{"x._web._tcp.service.disco.internal.", dns.TypeSRV, both},
		{"web-1._web._tcp.service.disco.internal.", dns.TypeA, nocache},
		{"web-1._web._tcp.service.disco.internal.", dns.TypeSRV, records},
		{"www.example.com.", dns.TypeAAAA, both},
		{"www.example.com.", dns.TypeA, records},
		{"nope.example.com.", dns.TypeA, both},
		{"example.com.", dns.TypeTXT, both},
		{"x.wild.example.com.", dns.TypeAAAA, both},
		{"gone.example.com.", dns.TypeA, records},  // CNAME, then NXDOMAIN in D
		{"x.sub.example.com.", dns.TypeA, records}, // a referral
		{"other.org.", dns.TypeA, both},            // REFUSED
		{"1.0.0.10.in-addr.arpa.", dns.TypePTR, records},
		{"1.0.0.10.in-addr.arpa.", dns.TypeA, both},
		{"99.0.0.10.in-addr.arpa.", dns.TypePTR, both},
		{"10.in-addr.arpa.", dns.TypeA, both},
		{"300.0.0.10.in-addr.arpa.", dns.TypePTR, both},
		{"5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", dns.TypePTR, records},
		{"6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", dns.TypePTR, both},
		{`a\.b.service.disco.internal.`, dns.TypeA, escaped},
		{`a\032b.service.disco.internal.`, dns.TypeA, escaped},
		{`a'b.service.disco.internal.`, dns.TypeA, escaped},
	}
	setups := []struct {
		name  string
		zones []string
		cases []tc
	}{
		{"synthesized apex", []string{exampleZone}, append(common[:len(common):len(common)],
			tc{"a.b.c.disco.internal.", dns.TypeA, both}, tc{"ns1.disco.internal.", dns.TypeA, records})},
		{"zone file for the domain", []string{domainZone, exampleZone}, append(common[:len(common):len(common)],
			tc{"docs.disco.internal.", dns.TypeAAAA, both},
			tc{"nothing.disco.internal.", dns.TypeA, both},
			tc{"docs.disco.internal.", dns.TypeA, records})},
	}
	type shape struct {
		edns   uint16
		do, rd bool
	}
	shapes := []shape{{0, false, false}, {0, false, true}, {1232, false, false}, {4096, true, true}, {512, false, false}}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeTXT, dns.TypeMX, dns.TypePTR, dns.TypeSOA, dns.TypeNS, dns.TypeCAA}
	for _, setup := range setups {
		t.Run(setup.name, func(t *testing.T) {
			h := negativeHandler(t, setup.zones...)
			direct := 0
			check := func(c tc, sh shape, cached bool) bool {
				req := new(dns.Msg)
				req.SetQuestion(c.qname, c.qtype)
				req.Id = 0xbeef
				req.RecursionDesired = sh.rd
				req.CheckingDisabled = sh.do
				if sh.edns > 0 {
					req.SetEdns0(sh.edns, sh.do)
				}
				got, ok := negativeQuery(t, h, req, cached)
				if !ok {
					return false
				}
				direct++
				want := h.Respond(req, true)
				if g, w := strings.ToLower(sections(got)), strings.ToLower(sections(want)); g != w {
					t.Errorf("%s %s %+v cached=%v:\nwritten:\n%s\nfull path:\n%s", c.qname, dns.TypeToString[c.qtype], sh, cached, g, w)
				}
				if got.Question[0].Name != c.qname {
					t.Errorf("%s: question %s, not as sent", c.qname, got.Question[0].Name)
				}
				return true
			}
			for _, c := range setup.cases {
				for _, sh := range shapes {
					for _, cached := range []bool{true, false} {
						want := c.path == both || c.path == nocache && !cached
						if got := check(c, sh, cached); got != want {
							t.Errorf("%s %s %+v cached=%v: written directly %v, want %v", c.qname, dns.TypeToString[c.qtype], sh, cached, got, want)
						}
					}
				}
				// Every type at the name: whatever is written directly
				// matches the full path.
				for _, qt := range types {
					check(tc{c.qname, qt, 0}, shape{1232, true, false}, false)
				}
			}
			if direct == 0 {
				t.Fatal("nothing was written directly")
			}
		})
	}
}

// TestNegativeAnswersAreNotCached checks that a flood of names that do not
// exist leaves the answer cache as it was, and that each still gets its
// NXDOMAIN.
func TestNegativeAnswersAreNotCached(t *testing.T) {
	h := negativeHandler(t, exampleZone)
	s := newScratch()
	ask := func(name string, qtype uint16) *dns.Msg {
		req := new(dns.Msg)
		req.SetQuestion(name, qtype)
		req.SetEdns0(1232, false)
		return fastQuery(t, h, s, req)
	}
	for _, name := range []string{"web.service.disco.internal.", "_web._tcp.service.disco.internal."} {
		ask(name, dns.TypeSRV)
	}
	before := h.cache.lru.Len()
	for i := range 2000 {
		names := []string{
			fmt.Sprintf("r%d.service.disco.internal.", i),
			fmt.Sprintf("_r%d._tcp.service.disco.internal.", i),
			fmt.Sprintf("r%d.web.service.disco.internal.", i),
			fmt.Sprintf("r%d.web.instance.disco.internal.", i),
			fmt.Sprintf("r%d.example.com.", i),
			fmt.Sprintf("%d.%d.250.10.in-addr.arpa.", i%256, i/256),
		}
		for _, name := range names {
			m := ask(name, dns.TypeA)
			if m.Rcode != dns.RcodeNameError || len(m.Ns) != 1 {
				t.Fatalf("%s: %s with %d authority records, want NXDOMAIN with the SOA", name, dns.RcodeToString[m.Rcode], len(m.Ns))
			}
		}
	}
	if after := h.cache.lru.Len(); after != before {
		t.Errorf("the cache went from %d to %d answers", before, after)
	}
}

// TestAppendNameRefuses checks the names appendName leaves to miekg/dns.
func TestAppendNameRefuses(t *testing.T) {
	for _, name := range []string{"", "a", "a..b.", `a\.b.`, strings.Repeat("a", 64) + ".", strings.Repeat("abcdefgh.", 29)} {
		if out, ok := appendName(nil, name, false); ok {
			t.Errorf("%q: written as %x", name, out)
		}
	}
	for _, name := range []string{".", "a.", "Ab.c.", strings.Repeat("abcdefg.", 31)} {
		out, ok := appendName(nil, name, false)
		if !ok {
			t.Errorf("%q refused", name)
			continue
		}
		back, _, err := dns.UnpackDomainName(out, 0)
		if err != nil || back != name {
			t.Errorf("%q: written as %x, read back as %q (%v)", name, out, back, err)
		}
	}
}

// FuzzNegative checks, for any question, that an answer written without a
// dns.Msg has the full path's content.
func FuzzNegative(f *testing.F) {
	cfg := testConfig()
	cfg.ReverseZones = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	h := NewHandler(cfg, testRegistry(f, fixture, fixtureSettings), staticZones{parseZones(f, exampleZone, domainZone)}, nil)
	for _, name := range []string{"nope.service.disco.internal.", "_x._tcp.service.disco.internal.", "empty.service.disco.internal.",
		"v9.web.service.disco.internal.", "0a0000ff.addr.disco.internal.", "x.y.instance.disco.internal.", "docs.disco.internal.",
		"nope.example.com.", "x.wild.example.com.", "x.sub.example.com.", "99.0.0.10.in-addr.arpa.", "other.org.", "."} {
		f.Add(name, dns.TypeA, true, false)
	}
	f.Fuzz(func(t *testing.T, name string, qtype uint16, edns, do bool) {
		if _, ok := dns.IsDomainName(name); !ok {
			return
		}
		req := new(dns.Msg)
		req.SetQuestion(dns.Fqdn(name), qtype)
		if edns {
			req.SetEdns0(1232, do)
		}
		pkt, err := req.Pack()
		if err != nil {
			return
		}
		m, fault := readMessage(pkt)
		if fault != msgOK {
			return
		}
		key, ok := appendKey(pkt, &m, nil, false)
		if !ok {
			return
		}
		var buf []byte
		out, _, ok := h.answerNegative(pkt, &m, key, h.zone.current(), nil, &buf, false)
		if !ok {
			return
		}
		got := new(dns.Msg)
		if err := got.Unpack(out); err != nil {
			t.Fatalf("answer %x does not parse: %v", out, err)
		}
		// The full path as the server takes it: from the query's wire form
		// (which reads escapes such as \0 as plain octets).
		sent := new(dns.Msg)
		if err := sent.Unpack(pkt); err != nil {
			return
		}
		wire, err := h.Respond(sent, true).Pack()
		if err != nil {
			t.Fatal(err)
		}
		want := new(dns.Msg)
		if err := want.Unpack(wire); err != nil {
			t.Fatal(err)
		}
		if g, w := strings.ToLower(sections(got)), strings.ToLower(sections(want)); g != w {
			t.Fatalf("written:\n%s\nfull path:\n%s", g, w)
		}
	})
}
