package dnsserver

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"disco/registry"
)

// fixedNow makes SOA serials predictable: 2026-01-01T00:00:00Z.
var fixedNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const testSerial = 1767225600

func testConfig() Config {
	return Config{Domain: "disco.internal.", TTL: 5, NegativeTTL: 5, Serial: testSerial,
		NSAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}
}

type fixtureInstance struct {
	service, id, addr string
	port              int
	tags              []string
	meta              map[string]string
	weight, priority  *int
	checks            bool
	maintenance       bool
}

func intp(v int) *int { return &v }

// testRegistry returns an in-memory registry holding instances.
func testRegistry(t testing.TB, instances []fixtureInstance, settings map[string]registry.Settings) *registry.Registry {
	t.Helper()
	ctx := context.Background()
	reg := registry.New(registry.Config{Now: func() time.Time { return fixedNow }})
	for name, s := range settings {
		if _, err := reg.SetSettings(ctx, name, s); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range instances {
		r := registry.Registration{Address: f.addr, Port: f.port, Tags: f.tags, Meta: f.meta,
			Weight: f.weight, Priority: f.priority}
		if f.checks {
			r.Checks = []registry.Check{{Type: registry.CheckTTL, TTL: registry.Duration(time.Minute)}}
		}
		in, err := registry.NewInstance(f.service, f.id, r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Register(ctx, in); err != nil {
			t.Fatal(err)
		}
		if f.maintenance {
			if _, err := reg.SetMaintenance(ctx, f.service, f.id, true, "test"); err != nil {
				t.Fatal(err)
			}
		}
	}
	return reg
}

var fixture = []fixtureInstance{
	{service: "web", id: "web-1", addr: "10.0.0.1", port: 8080, tags: []string{"v1"}},
	{service: "web", id: "web-2", addr: "10.0.0.2", port: 8080, tags: []string{"v1"}},
	{service: "web", id: "web-3", addr: "10.0.0.3", port: 8080, tags: []string{"v2"},
		meta: map[string]string{"version": "1.2", "zone": "a"}, weight: intp(10), priority: intp(2)},
	{service: "db", id: "db-1", addr: "fd00::5", port: 5432},
	{service: "dual", id: "d-4", addr: "10.0.1.1", port: 80},
	{service: "dual", id: "d-6", addr: "fd00::1", port: 80},
	{service: "dual", id: "d-same", addr: "10.0.1.1", port: 81},
	{service: "down", id: "down-1", addr: "10.0.2.1", port: 80, checks: true},
	{service: "down", id: "down-2", addr: "10.0.2.2", port: 80, checks: true, tags: []string{"blue"}},
	{service: "down", id: "down-3", addr: "10.0.2.3", port: 80, maintenance: true},
	{service: "slow", id: "slow-1", addr: "10.0.3.1", port: 80},
}

var fixtureSettings = map[string]registry.Settings{
	"slow":  {DNSTTL: intp(30)},
	"empty": {},
}

// normalize parses zone-text records and prints them back, sorted, so
// expectations can be written as in a zone file.
func normalize(t *testing.T, lines []string) []string {
	t.Helper()
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("bad expectation %q: %v", l, err)
		}
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}

func rrStrings(rrs []dns.RR) []string {
	out := []string{}
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}

const soaLine = "disco.internal. 5 IN SOA ns1.disco.internal. hostmaster.disco.internal. 1767225600 3600 600 86400 5"

func TestAnswer(t *testing.T) {
	reg := testRegistry(t, fixture, fixtureSettings)
	h := NewHandler(testConfig(), reg, nil, nil)
	tests := []struct {
		qname  string
		qtype  uint16
		rcode  int
		answer []string
		ns     []string
		extra  []string
	}{
		// The apex.
		{qname: "disco.internal.", qtype: dns.TypeSOA, answer: []string{soaLine}},
		{qname: "disco.internal.", qtype: dns.TypeNS,
			answer: []string{"disco.internal. 5 IN NS ns1.disco.internal."},
			extra:  []string{"ns1.disco.internal. 5 IN A 127.0.0.1"}},
		{qname: "disco.internal.", qtype: dns.TypeA, ns: []string{soaLine}},
		{qname: "ns1.disco.internal.", qtype: dns.TypeA, answer: []string{"ns1.disco.internal. 5 IN A 127.0.0.1"}},
		{qname: "ns1.disco.internal.", qtype: dns.TypeAAAA, ns: []string{soaLine}},
		// Services.
		{qname: "web.service.disco.internal.", qtype: dns.TypeA, answer: []string{
			"web.service.disco.internal. 5 IN A 10.0.0.1",
			"web.service.disco.internal. 5 IN A 10.0.0.2",
			"web.service.disco.internal. 5 IN A 10.0.0.3"}},
		{qname: "web.service.disco.internal.", qtype: dns.TypeAAAA, ns: []string{soaLine}},
		{qname: "web.service.disco.internal.", qtype: dns.TypeTXT, ns: []string{soaLine}},
		{qname: "web.service.disco.internal.", qtype: dns.TypeSRV, answer: []string{
			"web.service.disco.internal. 5 IN SRV 1 1 8080 0a000001.addr.disco.internal.",
			"web.service.disco.internal. 5 IN SRV 1 1 8080 0a000002.addr.disco.internal.",
			"web.service.disco.internal. 5 IN SRV 2 10 8080 0a000003.addr.disco.internal."},
			extra: []string{
				"0a000001.addr.disco.internal. 5 IN A 10.0.0.1",
				"0a000002.addr.disco.internal. 5 IN A 10.0.0.2",
				"0a000003.addr.disco.internal. 5 IN A 10.0.0.3"}},
		{qname: "v2.web.service.disco.internal.", qtype: dns.TypeA, answer: []string{
			"v2.web.service.disco.internal. 5 IN A 10.0.0.3"}},
		{qname: "v3.web.service.disco.internal.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soaLine}},
		{qname: "_web._tcp.service.disco.internal.", qtype: dns.TypeSRV, answer: []string{
			"_web._tcp.service.disco.internal. 5 IN SRV 1 1 8080 0a000001.addr.disco.internal.",
			"_web._tcp.service.disco.internal. 5 IN SRV 1 1 8080 0a000002.addr.disco.internal.",
			"_web._tcp.service.disco.internal. 5 IN SRV 2 10 8080 0a000003.addr.disco.internal."},
			extra: []string{
				"0a000001.addr.disco.internal. 5 IN A 10.0.0.1",
				"0a000002.addr.disco.internal. 5 IN A 10.0.0.2",
				"0a000003.addr.disco.internal. 5 IN A 10.0.0.3"}},
		{qname: "_web._v1.service.disco.internal.", qtype: dns.TypeSRV, answer: []string{
			"_web._v1.service.disco.internal. 5 IN SRV 1 1 8080 0a000001.addr.disco.internal.",
			"_web._v1.service.disco.internal. 5 IN SRV 1 1 8080 0a000002.addr.disco.internal."},
			extra: []string{
				"0a000001.addr.disco.internal. 5 IN A 10.0.0.1",
				"0a000002.addr.disco.internal. 5 IN A 10.0.0.2"}},
		{qname: "_nope._tcp.service.disco.internal.", qtype: dns.TypeSRV, rcode: dns.RcodeNameError, ns: []string{soaLine}},
		{qname: "_web.tcp.service.disco.internal.", qtype: dns.TypeSRV, rcode: dns.RcodeNameError, ns: []string{soaLine}},
		{qname: "db.service.disco.internal.", qtype: dns.TypeAAAA, answer: []string{"db.service.disco.internal. 5 IN AAAA fd00::5"}},
		{qname: "db.service.disco.internal.", qtype: dns.TypeA, ns: []string{soaLine}},
		{qname: "db.service.disco.internal.", qtype: dns.TypeSRV,
			answer: []string{"db.service.disco.internal. 5 IN SRV 1 1 5432 fd000000000000000000000000000005.addr.disco.internal."},
			extra:  []string{"fd000000000000000000000000000005.addr.disco.internal. 5 IN AAAA fd00::5"}},
		// One address, two ports: one A record, two SRV records, one glue.
		{qname: "dual.service.disco.internal.", qtype: dns.TypeA, answer: []string{"dual.service.disco.internal. 5 IN A 10.0.1.1"}},
		{qname: "dual.service.disco.internal.", qtype: dns.TypeSRV, answer: []string{
			"dual.service.disco.internal. 5 IN SRV 1 1 80 0a000101.addr.disco.internal.",
			"dual.service.disco.internal. 5 IN SRV 1 1 81 0a000101.addr.disco.internal.",
			"dual.service.disco.internal. 5 IN SRV 1 1 80 fd000000000000000000000000000001.addr.disco.internal."},
			extra: []string{
				"0a000101.addr.disco.internal. 5 IN A 10.0.1.1",
				"fd000000000000000000000000000001.addr.disco.internal. 5 IN AAAA fd00::1"}},
		// Known service, nothing passing: NODATA, not NXDOMAIN.
		{qname: "down.service.disco.internal.", qtype: dns.TypeA, ns: []string{soaLine}},
		{qname: "blue.down.service.disco.internal.", qtype: dns.TypeA, ns: []string{soaLine}},
		{qname: "empty.service.disco.internal.", qtype: dns.TypeA, ns: []string{soaLine}},
		// ... and such a name holds one TXT saying why, so that it exists
		// in the transferred zone too.
		{qname: "down.service.disco.internal.", qtype: dns.TypeTXT, answer: []string{
			`down.service.disco.internal. 5 IN TXT "down: 3 instances, 0 passing (0 warning, 2 critical, 1 maintenance)"`}},
		{qname: "blue.down.service.disco.internal.", qtype: dns.TypeTXT, answer: []string{
			`blue.down.service.disco.internal. 5 IN TXT "blue.down: 1 instances, 0 passing (0 warning, 1 critical, 0 maintenance)"`}},
		{qname: "_down._tcp.service.disco.internal.", qtype: dns.TypeTXT, answer: []string{
			`_down._tcp.service.disco.internal. 5 IN TXT "down: 3 instances, 0 passing (0 warning, 2 critical, 1 maintenance)"`}},
		{qname: "_down._tcp.service.disco.internal.", qtype: dns.TypeSRV, ns: []string{soaLine}},
		{qname: "empty.service.disco.internal.", qtype: dns.TypeTXT, answer: []string{
			`empty.service.disco.internal. 5 IN TXT "empty: 0 instances, 0 passing (0 warning, 0 critical, 0 maintenance)"`}},
		{qname: "slow.service.disco.internal.", qtype: dns.TypeA, answer: []string{"slow.service.disco.internal. 30 IN A 10.0.3.1"}},
		{qname: "nope.service.disco.internal.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soaLine}},
		{qname: "a.b.web.service.disco.internal.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soaLine}},
		// Empty non-terminals.
		{qname: "service.disco.internal.", qtype: dns.TypeA, ns: []string{soaLine}},
		{qname: "_tcp.service.disco.internal.", qtype: dns.TypeSRV, ns: []string{soaLine}},
		{qname: "_v1.service.disco.internal.", qtype: dns.TypeSRV, ns: []string{soaLine}},
		{qname: "addr.disco.internal.", qtype: dns.TypeA, ns: []string{soaLine}},
		{qname: "instance.disco.internal.", qtype: dns.TypeA, ns: []string{soaLine}},
		{qname: "web.instance.disco.internal.", qtype: dns.TypeA, ns: []string{soaLine}},
		{qname: "nope.instance.disco.internal.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soaLine}},
		// Addresses.
		{qname: "0a000002.addr.disco.internal.", qtype: dns.TypeA, answer: []string{"0a000002.addr.disco.internal. 5 IN A 10.0.0.2"}},
		{qname: "0A000002.addr.disco.internal.", qtype: dns.TypeA, answer: []string{"0A000002.addr.disco.internal. 5 IN A 10.0.0.2"}},
		{qname: "0a000002.addr.disco.internal.", qtype: dns.TypeAAAA, ns: []string{soaLine}},
		{qname: "fd000000000000000000000000000005.addr.disco.internal.", qtype: dns.TypeAAAA,
			answer: []string{"fd000000000000000000000000000005.addr.disco.internal. 5 IN AAAA fd00::5"}},
		{qname: "0a00002.addr.disco.internal.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soaLine}},
		{qname: "zz000002.addr.disco.internal.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soaLine}},
		// Instances, whatever their health.
		{qname: "web-1.web.instance.disco.internal.", qtype: dns.TypeA, answer: []string{"web-1.web.instance.disco.internal. 5 IN A 10.0.0.1"}},
		{qname: "down-1.down.instance.disco.internal.", qtype: dns.TypeA, answer: []string{"down-1.down.instance.disco.internal. 5 IN A 10.0.2.1"}},
		{qname: "web-3.web.instance.disco.internal.", qtype: dns.TypeTXT, answer: []string{
			`web-3.web.instance.disco.internal. 5 IN TXT "version=1.2"`,
			`web-3.web.instance.disco.internal. 5 IN TXT "zone=a"`}},
		{qname: "web-1.web.instance.disco.internal.", qtype: dns.TypeTXT, ns: []string{soaLine}},
		{qname: "web-3.web.instance.disco.internal.", qtype: dns.TypeSRV,
			answer: []string{"web-3.web.instance.disco.internal. 5 IN SRV 2 10 8080 0a000003.addr.disco.internal."},
			extra:  []string{"0a000003.addr.disco.internal. 5 IN A 10.0.0.3"}},
		{qname: "web-9.web.instance.disco.internal.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soaLine}},
		// ANY gets a minimal answer (RFC 8482).
		{qname: "web.service.disco.internal.", qtype: dns.TypeANY, answer: []string{`web.service.disco.internal. 5 IN HINFO "RFC8482" ""`}},
		{qname: "nope.service.disco.internal.", qtype: dns.TypeANY, rcode: dns.RcodeNameError, ns: []string{soaLine}},
		// Other names.
		{qname: "www.disco.internal.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soaLine}},
		{qname: "example.com.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{qname: "xdisco.internal.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s", tc.qname, dns.TypeToString[tc.qtype]), func(t *testing.T) {
			req := new(dns.Msg)
			req.SetQuestion(tc.qname, tc.qtype)
			m := h.Respond(req, false)
			if m.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
			}
			wantAA := tc.rcode != dns.RcodeRefused
			if m.Authoritative != wantAA || m.RecursionAvailable {
				t.Errorf("aa=%v ra=%v, want aa=%v ra=false", m.Authoritative, m.RecursionAvailable, wantAA)
			}
			checkSections(t, m, tc.answer, tc.ns, tc.extra)
		})
	}
}

func TestAnswerCaseEchoed(t *testing.T) {
	h := NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
	req := new(dns.Msg)
	req.SetQuestion("WeB.SeRvIcE.DiScO.InTeRnAl.", dns.TypeA)
	m := h.Respond(req, true)
	if m.Question[0].Name != "WeB.SeRvIcE.DiScO.InTeRnAl." {
		t.Errorf("question %q, want the name as sent", m.Question[0].Name)
	}
	if len(m.Answer) != 3 || m.Answer[0].Header().Name != "WeB.SeRvIcE.DiScO.InTeRnAl." {
		t.Errorf("answer %v, want three records owned by the name as sent", m.Answer)
	}
}

func TestAnswerShuffled(t *testing.T) {
	var many []fixtureInstance
	for i := range 8 {
		many = append(many, fixtureInstance{service: "big", id: fmt.Sprintf("b-%d", i), addr: fmt.Sprintf("10.9.0.%d", i+1), port: 80})
	}
	h := NewHandler(testConfig(), testRegistry(t, many, nil), nil, nil)
	orders := map[string]bool{}
	for range 50 {
		req := new(dns.Msg)
		req.SetQuestion("big.service.disco.internal.", dns.TypeA)
		m := h.Respond(req, true)
		var order []string
		for _, rr := range m.Answer {
			order = append(order, rr.(*dns.A).A.String())
		}
		orders[strings.Join(order, ",")] = true
	}
	// 50 draws of 8! orders: seeing one order only means no shuffling.
	if len(orders) < 2 {
		t.Errorf("answer order never changed over 50 responses: %v", orders)
	}
}

func TestNoPassingExtendedError(t *testing.T) {
	h := NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
	req := new(dns.Msg)
	req.SetQuestion("down.service.disco.internal.", dns.TypeA)
	req.SetEdns0(1232, false)
	m := h.Respond(req, true)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 {
		t.Fatalf("got %s with %d answers, want NOERROR/NODATA", dns.RcodeToString[m.Rcode], len(m.Answer))
	}
	ede := findEDE(m)
	want := "down: 3 instances, 0 passing (0 warning, 2 critical, 1 maintenance)"
	if ede == nil || ede.ExtraText != want {
		t.Fatalf("extended error %v, want %q", ede, want)
	}

	// Without EDNS there is no OPT to carry it.
	req.Extra = nil
	if m := h.Respond(req, true); m.IsEdns0() != nil {
		t.Errorf("OPT in a response to a query without EDNS")
	}
}

func TestFailOpen(t *testing.T) {
	reg := testRegistry(t, fixture, map[string]registry.Settings{"down": {MinHealthyPercent: intp(50)}})
	h := NewHandler(testConfig(), reg, nil, nil)
	req := new(dns.Msg)
	req.SetQuestion("down.service.disco.internal.", dns.TypeA)
	req.SetEdns0(1232, false)
	m := h.Respond(req, true)
	got := rrStrings(m.Answer)
	want := normalize(t, []string{
		"down.service.disco.internal. 5 IN A 10.0.2.1",
		"down.service.disco.internal. 5 IN A 10.0.2.2"})
	if !slices.Equal(got, want) {
		t.Errorf("fail-open answer %v, want %v (maintenance stays out)", got, want)
	}
	if ede := findEDE(m); ede == nil || !strings.Contains(ede.ExtraText, "fail open") {
		t.Errorf("extended error %v, want one saying it fails open", ede)
	}
}

func findEDE(m *dns.Msg) *dns.EDNS0_EDE {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return e
			}
		}
	}
	return nil
}

func TestGuards(t *testing.T) {
	h := NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
	q := func(mod func(m *dns.Msg)) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion("web.service.disco.internal.", dns.TypeA)
		mod(m)
		return m
	}
	tests := []struct {
		name  string
		req   *dns.Msg
		rcode int // -1: no answer at all
	}{
		{"response dropped", q(func(m *dns.Msg) { m.Response = true }), -1},
		{"notify not implemented", q(func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }), dns.RcodeNotImplemented},
		{"update refused", q(func(m *dns.Msg) { m.Opcode = dns.OpcodeUpdate }), dns.RcodeRefused},
		{"no question", q(func(m *dns.Msg) { m.Question = nil }), dns.RcodeFormatError},
		{"two questions", q(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }), dns.RcodeFormatError},
		{"chaos class", q(func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }), dns.RcodeRefused},
		{"axfr refused", q(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeAXFR }), dns.RcodeRefused},
		{"edns version 1", q(func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }), dns.RcodeBadVers},
		{"unknown edns option ignored", q(func(m *dns.Msg) {
			m.SetEdns0(1232, true)
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_LOCAL{Code: 65001, Data: []byte{1, 2}})
		}), dns.RcodeSuccess},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := h.Respond(tc.req, true)
			if tc.rcode == -1 {
				if m != nil {
					t.Fatalf("answered %v, want silence", m)
				}
				return
			}
			if m == nil {
				t.Fatal("no answer")
			}
			if m.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
			}
			if m.Id != tc.req.Id || !m.Response {
				t.Errorf("id %d response=%v, want id %d response=true", m.Id, m.Response, tc.req.Id)
			}
			if _, err := m.Pack(); err != nil {
				t.Errorf("response does not pack: %v", err)
			}
		})
	}
}

func TestEDNS(t *testing.T) {
	h := NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
	for _, do := range []bool{false, true} {
		req := new(dns.Msg)
		req.SetQuestion("web.service.disco.internal.", dns.TypeA)
		req.SetEdns0(4096, do)
		m := h.Respond(req, true)
		opt := m.IsEdns0()
		if opt == nil {
			t.Fatal("no OPT in the answer to an EDNS query")
		}
		if opt.UDPSize() != UDPSize || opt.Do() != do || opt.Version() != 0 {
			t.Errorf("OPT size %d do %v version %d, want %d %v 0", opt.UDPSize(), opt.Do(), opt.Version(), UDPSize, do)
		}
	}
}

func TestTruncation(t *testing.T) {
	var many []fixtureInstance
	for i := range 60 {
		many = append(many, fixtureInstance{service: "big", id: fmt.Sprintf("big-%d", i), addr: fmt.Sprintf("10.1.0.%d", i+1), port: 9000})
	}
	h := NewHandler(testConfig(), testRegistry(t, many, nil), nil, nil)
	tests := []struct {
		name    string
		qtype   uint16
		bufsize uint16 // 0: no EDNS
		udp     bool
		tc      bool
		maxLen  int
	}{
		{"udp no edns", dns.TypeSRV, 0, true, true, 512},
		{"udp edns 1232", dns.TypeSRV, 1232, true, true, 1232},
		{"udp edns 4096 capped", dns.TypeSRV, 4096, true, true, 1232},
		{"udp edns 100 means 512", dns.TypeSRV, 100, true, true, 512},
		{"tcp whole answer", dns.TypeSRV, 0, false, false, 65535},
		{"udp A fits without glue", dns.TypeA, 1232, true, false, 1232},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := new(dns.Msg)
			req.SetQuestion("big.service.disco.internal.", tc.qtype)
			if tc.bufsize > 0 {
				req.SetEdns0(tc.bufsize, false)
			}
			m := h.Respond(req, tc.udp)
			wire, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			if len(wire) > tc.maxLen {
				t.Errorf("%d bytes, limit %d", len(wire), tc.maxLen)
			}
			if m.Truncated != tc.tc {
				t.Errorf("TC=%v, want %v", m.Truncated, tc.tc)
			}
			if !tc.tc && len(m.Answer) != 60 {
				t.Errorf("%d answers, want all 60", len(m.Answer))
			}
			if tc.bufsize > 0 && m.IsEdns0() == nil {
				t.Error("OPT lost in truncation")
			}
			var back dns.Msg
			if err := back.Unpack(wire); err != nil {
				t.Errorf("truncated answer does not parse (partial record?): %v", err)
			}
		})
	}
}

// checkSections compares m's answer, authority and additional sections
// with answer, ns and extra, records in zone-file form.
func checkSections(t *testing.T, m *dns.Msg, answer, ns, extra []string) {
	t.Helper()
	for _, sec := range []struct {
		name      string
		got, want []string
	}{
		{"answer", rrStrings(m.Answer), normalize(t, answer)},
		{"authority", rrStrings(m.Ns), normalize(t, ns)},
		{"additional", rrStrings(m.Extra), normalize(t, extra)},
	} {
		if !slices.Equal(sec.got, sec.want) {
			t.Errorf("%s:\n got %s\nwant %s", sec.name, strings.Join(sec.got, "\n     "), strings.Join(sec.want, "\n     "))
		}
	}
}
