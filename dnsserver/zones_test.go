package dnsserver

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"disco/zones"
)

// staticZones serves a fixed set of zones.
type staticZones struct{ set *zones.Set }

func (s staticZones) Current() *zones.Set { return s.set }

func parseZones(t testing.TB, texts ...string) *zones.Set {
	t.Helper()
	opts := zones.Options{Reserved: []string{"service.disco.internal.", "addr.disco.internal.", "instance.disco.internal."}}
	var zs []*zones.Zone
	for i, text := range texts {
		z, err := zones.Parse(strings.NewReader(text), "", fmt.Sprintf("zone%d.zone", i), opts)
		if err != nil {
			t.Fatal(err)
		}
		zs = append(zs, z)
	}
	set, err := zones.NewSet(zs...)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

const exampleZone = `$ORIGIN example.com.
$TTL 300
@       IN SOA ns1.example.com. hostmaster.example.com. 2026112501 3600 600 86400 60
@       IN NS  ns1.example.com.
ns1     IN A   192.0.2.53
www     IN A   192.0.2.10
alias   IN CNAME www
web     IN CNAME web.service.disco.internal.
gone    IN CNAME nope.service.disco.internal.
*.wild  IN A   192.0.2.77
sub     IN NS  ns.sub.example.com.
ns.sub  IN A   192.0.2.99
`

const domainZone = `$ORIGIN disco.internal.
$TTL 60
@       IN SOA ns.disco.internal. ops.example.com. 7 3600 600 86400 10
@       IN NS  ns.disco.internal.
ns      IN A   192.0.2.1
docs    IN A   192.0.2.2
`

func TestAnswerWithZones(t *testing.T) {
	reg := testRegistry(t, fixture, nil)
	const exSOA = "example.com. 60 IN SOA ns1.example.com. hostmaster.example.com. 2026112501 3600 600 86400 60"
	// A zone file for the discovery domain supplies its SOA, but the serial
	// is the discovery zone's (it moves with the registry).
	const dSOA = "disco.internal. 10 IN SOA ns.disco.internal. ops.example.com. 1767225600 3600 600 86400 10"
	tests := []struct {
		name      string
		zones     []string
		qname     string
		qtype     uint16
		rcode     int
		aa        bool
		answer    []string
		ns        []string
		extraHas  string
		extraNone bool
	}{
		{name: "static A", zones: []string{exampleZone}, qname: "www.example.com.", qtype: dns.TypeA, aa: true,
			answer: []string{"www.example.com. 300 IN A 192.0.2.10"}},
		{name: "cname chased", zones: []string{exampleZone}, qname: "alias.example.com.", qtype: dns.TypeA, aa: true,
			answer: []string{"alias.example.com. 300 IN CNAME www.example.com.", "www.example.com. 300 IN A 192.0.2.10"}},
		{name: "cname into discovery", zones: []string{exampleZone}, qname: "web.example.com.", qtype: dns.TypeA, aa: true,
			answer: []string{"web.example.com. 300 IN CNAME web.service.disco.internal.",
				"web.service.disco.internal. 5 IN A 10.0.0.1", "web.service.disco.internal. 5 IN A 10.0.0.2",
				"web.service.disco.internal. 5 IN A 10.0.0.3"}},
		{name: "cname into a missing service", zones: []string{exampleZone}, qname: "gone.example.com.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, aa: true,
			answer: []string{"gone.example.com. 300 IN CNAME nope.service.disco.internal."}, ns: []string{soaLine}},
		{name: "wildcard", zones: []string{exampleZone}, qname: "x.wild.example.com.", qtype: dns.TypeA, aa: true,
			answer: []string{"x.wild.example.com. 300 IN A 192.0.2.77"}},
		{name: "referral", zones: []string{exampleZone}, qname: "host.sub.example.com.", qtype: dns.TypeA,
			ns: []string{"sub.example.com. 300 IN NS ns.sub.example.com."}, extraHas: "192.0.2.99"},
		{name: "nxdomain", zones: []string{exampleZone}, qname: "nope.example.com.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, aa: true, ns: []string{exSOA}},
		{name: "any is minimal", zones: []string{exampleZone}, qname: "www.example.com.", qtype: dns.TypeANY, aa: true,
			answer: []string{`www.example.com. 60 IN HINFO "RFC8482" ""`}},
		{name: "outside every zone", zones: []string{exampleZone}, qname: "example.org.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "discovery beside zones", zones: []string{exampleZone}, qname: "v2.web.service.disco.internal.", qtype: dns.TypeA, aa: true,
			answer: []string{"v2.web.service.disco.internal. 5 IN A 10.0.0.3"}},
		// A zone file for the discovery domain supplies its apex and static names.
		{name: "domain zone SOA", zones: []string{domainZone}, qname: "disco.internal.", qtype: dns.TypeSOA, aa: true,
			answer: []string{"disco.internal. 60 IN SOA ns.disco.internal. ops.example.com. 1767225600 3600 600 86400 10"}},
		{name: "domain zone NS", zones: []string{domainZone}, qname: "disco.internal.", qtype: dns.TypeNS, aa: true,
			answer: []string{"disco.internal. 60 IN NS ns.disco.internal."}, extraHas: "192.0.2.1"},
		{name: "domain zone static name", zones: []string{domainZone}, qname: "docs.disco.internal.", qtype: dns.TypeA, aa: true,
			answer: []string{"docs.disco.internal. 60 IN A 192.0.2.2"}},
		{name: "domain zone: synthesized ns1 gone", zones: []string{domainZone}, qname: "ns1.disco.internal.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, aa: true, ns: []string{dSOA}},
		{name: "domain zone: discovery names", zones: []string{domainZone}, qname: "web-1.web.instance.disco.internal.", qtype: dns.TypeA, aa: true,
			answer: []string{"web-1.web.instance.disco.internal. 5 IN A 10.0.0.1"}},
		{name: "domain zone: its SOA in negative answers", zones: []string{domainZone}, qname: "nope.service.disco.internal.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, aa: true, ns: []string{dSOA}},
		{name: "domain zone: ENT stays NODATA", zones: []string{domainZone}, qname: "service.disco.internal.", qtype: dns.TypeA,
			aa: true, ns: []string{dSOA}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHandler(testConfig(), reg, staticZones{parseZones(t, tc.zones...)}, nil)
			for _, path := range []string{"full", "fast"} {
				req := new(dns.Msg)
				req.SetQuestion(tc.qname, tc.qtype)
				var m *dns.Msg
				if path == "full" {
					m = h.Respond(req, true)
				} else {
					m = fastQuery(t, h, newScratch(), req)
				}
				if m.Rcode != tc.rcode || m.Authoritative != tc.aa {
					t.Errorf("%s: rcode %s aa=%v, want %s aa=%v", path, dns.RcodeToString[m.Rcode], m.Authoritative,
						dns.RcodeToString[tc.rcode], tc.aa)
				}
				if got, want := rrStrings(m.Answer), normalize(t, tc.answer); !slices.Equal(got, want) {
					t.Errorf("%s answer:\n got %v\nwant %v", path, got, want)
				}
				if got, want := rrStrings(m.Ns), normalize(t, tc.ns); !slices.Equal(got, want) {
					t.Errorf("%s authority:\n got %v\nwant %v", path, got, want)
				}
				if tc.extraHas != "" && !strings.Contains(fmt.Sprint(m.Extra), tc.extraHas) {
					t.Errorf("%s additional %v lacks %s", path, m.Extra, tc.extraHas)
				}
			}
		})
	}
}

// TestFastPathSeesZoneReload checks that cached answers end with the set
// of zones they came from.
func TestFastPathSeesZoneReload(t *testing.T) {
	src := &staticZones{parseZones(t, exampleZone)}
	h := NewHandler(testConfig(), testRegistry(t, nil, nil), src, nil)
	s := newScratch()
	ask := func() []string {
		req := new(dns.Msg)
		req.SetQuestion("www.example.com.", dns.TypeA)
		return rrStrings(fastQuery(t, h, s, req).Answer)
	}
	if got := ask(); len(got) != 1 || !strings.Contains(got[0], "192.0.2.10") {
		t.Fatalf("before reload: %v", got)
	}
	src.set = parseZones(t, strings.Replace(exampleZone, "192.0.2.10", "192.0.2.11", 1))
	if got := ask(); len(got) != 1 || !strings.Contains(got[0], "192.0.2.11") {
		t.Fatalf("after reload: %v", got)
	}
}
