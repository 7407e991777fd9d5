package zones

import (
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

const (
	comNegSOA   = "example.com. 60 IN SOA ns1.example.com. hostmaster.example.com. 2026112501 3600 600 86400 60"
	childNegSOA = "child.example.com. 30 IN SOA ns1.child.example.com. hostmaster.child.example.com. 7 3600 600 86400 30"
	netNegSOA   = "example.net. 900 IN SOA ns.example.net. hostmaster.example.net. 1 3600 600 86400 900"
)

var (
	wwwAddrs = []string{
		"www.example.com. 300 IN A 192.0.2.10",
		"www.example.com. 300 IN AAAA 2001:db8::10",
	}
	subReferralNS = []string{
		"sub.example.com. 300 IN NS ns.sub.example.com.",
		"sub.example.com. 300 IN NS ns.example.net.",
	}
	subGlue = []string{
		"ns.sub.example.com. 300 IN A 192.0.2.99",
		"ns.sub.example.com. 300 IN AAAA 2001:db8::99",
	}
)

func TestLookup(t *testing.T) {
	s := fixtureSet(t)
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		noAA   bool
		zone   string // origin of Result.Zone; "" means example.com.
		answer []string
		ns     []string
		extra  []string
	}{
		// Exact matches.
		{name: "a", qname: "www.example.com.", qtype: dns.TypeA,
			answer: []string{"www.example.com. 300 IN A 192.0.2.10"}},
		{name: "aaaa", qname: "www.example.com.", qtype: dns.TypeAAAA,
			answer: []string{"www.example.com. 300 IN AAAA 2001:db8::10"}},
		{name: "apex soa", qname: "example.com.", qtype: dns.TypeSOA,
			answer: []string{"example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 2026112501 3600 600 86400 60"}},
		{name: "apex ns with glue", qname: "example.com.", qtype: dns.TypeNS,
			answer: []string{"example.com. 300 IN NS ns1.example.com.", "example.com. 300 IN NS ns2.example.com."},
			extra:  []string{"ns1.example.com. 300 IN A 192.0.2.53", "ns2.example.com. 300 IN AAAA 2001:db8::53"}},
		{name: "apex mx out of zone", qname: "example.com.", qtype: dns.TypeMX,
			answer: []string{"example.com. 300 IN MX 20 mail.example.net."}},
		{name: "apex txt", qname: "example.com.", qtype: dns.TypeTXT,
			answer: []string{`example.com. 300 IN TXT "v=spf1 -all"`}},
		{name: "mx additional", qname: "mail.example.com.", qtype: dns.TypeMX,
			answer: []string{"mail.example.com. 300 IN MX 10 www.example.com."}, extra: wwwAddrs},
		{name: "srv additional", qname: "_sip._tcp.example.com.", qtype: dns.TypeSRV,
			answer: []string{
				"_sip._tcp.example.com. 300 IN SRV 10 60 5060 www.example.com.",
				"_sip._tcp.example.com. 300 IN SRV 20 40 5060 sip.example.net.",
			}, extra: wwwAddrs},
		{name: "nodata", qname: "www.example.com.", qtype: dns.TypeMX, ns: []string{comNegSOA}},
		{name: "nxdomain", qname: "nope.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{comNegSOA}},
		{name: "nxdomain deep", qname: "a.b.nope.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{comNegSOA}},

		// Empty non-terminals exist: NODATA, never NXDOMAIN.
		{name: "ent", qname: "b.ent.example.com.", qtype: dns.TypeA, ns: []string{comNegSOA}},
		{name: "ent upper", qname: "ent.example.com.", qtype: dns.TypeTXT, ns: []string{comNegSOA}},
		{name: "below ent", qname: "a.b.ent.example.com.", qtype: dns.TypeTXT,
			answer: []string{`a.b.ent.example.com. 300 IN TXT "below an empty non-terminal"`}},
		{name: "beside ent", qname: "c.b.ent.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{comNegSOA}},
		{name: "srv parent ent", qname: "_tcp.example.com.", qtype: dns.TypeSRV, ns: []string{comNegSOA}},

		// CNAME chains.
		{name: "cname", qname: "alias.example.com.", qtype: dns.TypeA,
			answer: []string{"alias.example.com. 300 IN CNAME www.example.com.", "www.example.com. 300 IN A 192.0.2.10"}},
		{name: "cname asked", qname: "alias.example.com.", qtype: dns.TypeCNAME,
			answer: []string{"alias.example.com. 300 IN CNAME www.example.com."}},
		{name: "cname to nodata", qname: "alias.example.com.", qtype: dns.TypeTXT,
			answer: []string{"alias.example.com. 300 IN CNAME www.example.com."}, ns: []string{comNegSOA}},
		{name: "cname chain", qname: "chain.example.com.", qtype: dns.TypeAAAA,
			answer: []string{
				"chain.example.com. 300 IN CNAME alias.example.com.",
				"alias.example.com. 300 IN CNAME www.example.com.",
				"www.example.com. 300 IN AAAA 2001:db8::10",
			}},
		{name: "cname into sibling zone", qname: "net.example.com.", qtype: dns.TypeA,
			answer: []string{"net.example.com. 300 IN CNAME www.example.net.", "www.example.net. 120 IN A 198.51.100.10"}},
		{name: "cname into child zone", qname: "childwww.example.com.", qtype: dns.TypeA,
			answer: []string{"childwww.example.com. 300 IN CNAME www.child.example.com.", "www.child.example.com. 600 IN A 192.0.2.151"}},
		{name: "cname from child to parent", qname: "back.child.example.com.", qtype: dns.TypeA, zone: "child.example.com.",
			answer: []string{"back.child.example.com. 600 IN CNAME www.example.com.", "www.example.com. 300 IN A 192.0.2.10"}},
		{name: "cname out of served zones", qname: "outside.example.com.", qtype: dns.TypeA,
			answer: []string{"outside.example.com. 300 IN CNAME www.example.org."}},
		{name: "cname to nxdomain", qname: "dangling.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
			answer: []string{"dangling.example.com. 300 IN CNAME nothere.example.com."}, ns: []string{comNegSOA}},
		{name: "cname into delegation", qname: "tosub.example.com.", qtype: dns.TypeA,
			answer: []string{"tosub.example.com. 300 IN CNAME host.sub.example.com."}},
		{name: "cname loop", qname: "loop1.example.com.", qtype: dns.TypeA,
			answer: []string{"loop1.example.com. 300 IN CNAME loop2.example.com.", "loop2.example.com. 300 IN CNAME loop1.example.com."}},
		{name: "cname to itself", qname: "self.example.com.", qtype: dns.TypeA,
			answer: []string{"self.example.com. 300 IN CNAME self.example.com."}},
		{name: "cname loop across zones", qname: "xloop.example.com.", qtype: dns.TypeA,
			answer: []string{"xloop.example.com. 300 IN CNAME xloop.example.net.", "xloop.example.net. 120 IN CNAME xloop.example.com."}},
		{name: "cname chain bounded", qname: "c1.example.com.", qtype: dns.TypeA,
			answer: []string{
				"c1.example.com. 300 IN CNAME c2.example.com.",
				"c2.example.com. 300 IN CNAME c3.example.com.",
				"c3.example.com. 300 IN CNAME c4.example.com.",
				"c4.example.com. 300 IN CNAME c5.example.com.",
				"c5.example.com. 300 IN CNAME c6.example.com.",
				"c6.example.com. 300 IN CNAME c7.example.com.",
				"c7.example.com. 300 IN CNAME c8.example.com.",
				"c8.example.com. 300 IN CNAME c9.example.com.",
			}},
		{name: "cname chain at the bound", qname: "c2.example.com.", qtype: dns.TypeA,
			answer: []string{
				"c2.example.com. 300 IN CNAME c3.example.com.",
				"c3.example.com. 300 IN CNAME c4.example.com.",
				"c4.example.com. 300 IN CNAME c5.example.com.",
				"c5.example.com. 300 IN CNAME c6.example.com.",
				"c6.example.com. 300 IN CNAME c7.example.com.",
				"c7.example.com. 300 IN CNAME c8.example.com.",
				"c8.example.com. 300 IN CNAME c9.example.com.",
				"c9.example.com. 300 IN CNAME www.example.com.",
			}},
		{name: "cname chain below the bound", qname: "c3.example.com.", qtype: dns.TypeA,
			answer: []string{
				"c3.example.com. 300 IN CNAME c4.example.com.",
				"c4.example.com. 300 IN CNAME c5.example.com.",
				"c5.example.com. 300 IN CNAME c6.example.com.",
				"c6.example.com. 300 IN CNAME c7.example.com.",
				"c7.example.com. 300 IN CNAME c8.example.com.",
				"c8.example.com. 300 IN CNAME c9.example.com.",
				"c9.example.com. 300 IN CNAME www.example.com.",
				"www.example.com. 300 IN A 192.0.2.10",
			}},

		// Wildcards (RFC 4592).
		{name: "wildcard", qname: "foo.wild.example.com.", qtype: dns.TypeA,
			answer: []string{"foo.wild.example.com. 300 IN A 192.0.2.77"}},
		{name: "wildcard other type", qname: "foo.wild.example.com.", qtype: dns.TypeTXT,
			answer: []string{`foo.wild.example.com. 300 IN TXT "wild"`}},
		{name: "wildcard nodata", qname: "foo.wild.example.com.", qtype: dns.TypeAAAA, ns: []string{comNegSOA}},
		{name: "wildcard several labels", qname: "x.y.wild.example.com.", qtype: dns.TypeA,
			answer: []string{"x.y.wild.example.com. 300 IN A 192.0.2.77"}},
		{name: "wildcard asked literally", qname: "*.wild.example.com.", qtype: dns.TypeA,
			answer: []string{"*.wild.example.com. 300 IN A 192.0.2.77"}},
		{name: "existing name beats wildcard", qname: "host.wild.example.com.", qtype: dns.TypeA,
			answer: []string{"host.wild.example.com. 300 IN A 192.0.2.78"}},
		{name: "existing name nodata, not wildcard", qname: "host.wild.example.com.", qtype: dns.TypeTXT, ns: []string{comNegSOA}},
		{name: "below existing name no wildcard", qname: "sub.host.wild.example.com.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{comNegSOA}},
		{name: "wildcard parent is ent", qname: "wild.example.com.", qtype: dns.TypeA, ns: []string{comNegSOA}},
		{name: "wildcard cname", qname: "foo.wc.example.com.", qtype: dns.TypeA,
			answer: []string{"foo.wc.example.com. 300 IN CNAME www.example.com.", "www.example.com. 300 IN A 192.0.2.10"}},
		{name: "wildcard that is an ent", qname: "foo.entwild.example.com.", qtype: dns.TypeA, ns: []string{comNegSOA}},
		{name: "below wildcard ent", qname: "x.*.entwild.example.com.", qtype: dns.TypeA,
			answer: []string{"x.*.entwild.example.com. 300 IN A 192.0.2.79"}},

		// Delegations.
		{name: "referral below cut", qname: "host.sub.example.com.", qtype: dns.TypeA, noAA: true,
			ns: subReferralNS, extra: subGlue},
		{name: "referral deep below cut", qname: "a.b.host.sub.example.com.", qtype: dns.TypeMX, noAA: true,
			ns: subReferralNS, extra: subGlue},
		{name: "referral at cut", qname: "sub.example.com.", qtype: dns.TypeA, noAA: true,
			ns: subReferralNS, extra: subGlue},
		{name: "referral for ns at cut", qname: "sub.example.com.", qtype: dns.TypeNS, noAA: true,
			ns: subReferralNS, extra: subGlue},
		{name: "glue is not answered", qname: "ns.sub.example.com.", qtype: dns.TypeA, noAA: true,
			ns: subReferralNS, extra: subGlue},
		{name: "ds at cut from parent", qname: "sub.example.com.", qtype: dns.TypeDS,
			answer: []string{"sub.example.com. 300 IN DS 60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118"}},
		{name: "ds below cut refers", qname: "host.sub.example.com.", qtype: dns.TypeDS, noAA: true,
			ns: subReferralNS, extra: subGlue},

		// Child zone served beside its parent: longest suffix wins.
		{name: "child apex", qname: "child.example.com.", qtype: dns.TypeSOA, zone: "child.example.com.",
			answer: []string{"child.example.com. 600 IN SOA ns1.child.example.com. hostmaster.child.example.com. 7 3600 600 86400 30"}},
		{name: "child ns", qname: "child.example.com.", qtype: dns.TypeNS, zone: "child.example.com.",
			answer: []string{"child.example.com. 600 IN NS ns1.child.example.com."},
			extra:  []string{"ns1.child.example.com. 600 IN A 192.0.2.150"}},
		{name: "child name", qname: "www.child.example.com.", qtype: dns.TypeA, zone: "child.example.com.",
			answer: []string{"www.child.example.com. 600 IN A 192.0.2.151"}},
		{name: "child nxdomain", qname: "nope.child.example.com.", qtype: dns.TypeA, zone: "child.example.com.",
			rcode: dns.RcodeNameError, ns: []string{childNegSOA}},
		{name: "ds at child apex from parent", qname: "child.example.com.", qtype: dns.TypeDS, ns: []string{comNegSOA}},
		{name: "other zone nxdomain ttl", qname: "nope.example.net.", qtype: dns.TypeA, zone: "example.net.",
			rcode: dns.RcodeNameError, ns: []string{netNegSOA}},

		// ANY: the caller answers per RFC 8482; the rcode still holds.
		{name: "any existing", qname: "www.example.com.", qtype: dns.TypeANY},
		{name: "any ent", qname: "ent.example.com.", qtype: dns.TypeANY},
		{name: "any wildcard", qname: "foo.wild.example.com.", qtype: dns.TypeANY},
		{name: "any nxdomain", qname: "nope.example.com.", qtype: dns.TypeANY, rcode: dns.RcodeNameError, ns: []string{comNegSOA}},
		{name: "any referral", qname: "host.sub.example.com.", qtype: dns.TypeANY, noAA: true, ns: subReferralNS, extra: subGlue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, ok := s.Lookup(tt.qname, tt.qtype)
			if !ok {
				t.Fatalf("Lookup(%s, %s): not in any zone", tt.qname, dns.Type(tt.qtype))
			}
			if res.Rcode != tt.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[res.Rcode], dns.RcodeToString[tt.rcode])
			}
			if res.Authoritative == tt.noAA {
				t.Errorf("authoritative = %v, want %v", res.Authoritative, !tt.noAA)
			}
			zone := tt.zone
			if zone == "" {
				zone = "example.com."
			}
			if res.Zone == nil || res.Zone.Origin() != zone {
				t.Errorf("zone = %v, want %s", res.Zone, zone)
			}
			sameRecords(t, "answer", res.Answer, tt.answer)
			sameRecords(t, "authority", res.Ns, tt.ns)
			sameRecords(t, "additional", res.Extra, tt.extra)
		})
	}
}

func TestLookupOutsideZones(t *testing.T) {
	s := fixtureSet(t)
	for _, q := range []string{"www.example.org.", "com.", ".", "example.", "xexample.com.", "www.xexample.com."} {
		if res, ok := s.Lookup(q, dns.TypeA); ok {
			t.Errorf("Lookup(%s) = %+v, want not in any zone", q, res)
		}
		if z := s.Find(q); z != nil {
			t.Errorf("Find(%s) = %s, want nil", q, z.Origin())
		}
	}
	empty, err := NewSet()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := empty.Lookup("www.example.com.", dns.TypeA); ok {
		t.Error("empty set answered")
	}
}

func TestFind(t *testing.T) {
	s := fixtureSet(t)
	for q, want := range map[string]string{
		"example.com.":                "example.com.",
		"a.b.c.example.com.":          "example.com.",
		"sub.example.com.":            "example.com.",
		"child.example.com.":          "child.example.com.",
		"deep.www.child.example.com.": "child.example.com.",
		"example.net.":                "example.net.",
	} {
		if z := s.Find(q); z == nil || z.Origin() != want {
			t.Errorf("Find(%s) = %v, want %s", q, z, want)
		}
	}
}

// TestResultIsCallersOwn checks that a caller may reorder the slices of a
// Result (as the server does to spread load) without changing later answers.
func TestResultIsCallersOwn(t *testing.T) {
	s := fixtureSet(t)
	for range 2 {
		res, _ := s.Lookup("example.com.", dns.TypeNS)
		res.Answer[0], res.Answer[1] = res.Answer[1], res.Answer[0]
		res.Answer[0] = nil
		res.Extra[0] = nil
	}
	res, _ := s.Lookup("example.com.", dns.TypeNS)
	sameRecords(t, "answer", res.Answer, []string{"example.com. 300 IN NS ns1.example.com.", "example.com. 300 IN NS ns2.example.com."})
	if z := s.Find("example.com."); len(z.NS()) != 2 || z.NS()[0] == nil {
		t.Errorf("zone NS changed: %v", z.NS())
	}
}

// TestSharedCheckZone loads the zone of the end-to-end check and answers
// its questions, so the server only has to pass the results on.
func TestSharedCheckZone(t *testing.T) {
	const src = `$ORIGIN example.com.
$TTL 300
@       IN SOA ns1.example.com. hostmaster.example.com. 2026112501 3600 600 86400 60
@       IN NS  ns1.example.com.
ns1     IN A   192.0.2.53
www     IN A   192.0.2.10
www     IN AAAA 2001:db8::10
alias   IN CNAME www
*.wild  IN A   192.0.2.77
a.b.ent IN TXT "below an empty non-terminal"
sub     IN NS  ns.sub.example.com.
ns.sub  IN A   192.0.2.99
mail    IN MX  10 www.example.com.
`
	z, err := Parse(strings.NewReader(src), "", "example.com.zone", discoReserved)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSet(z)
	if err != nil {
		t.Fatal(err)
	}
	check := func(qname string, qtype uint16, rcode int, aa bool, answer, ns, extra []string) {
		t.Helper()
		res, ok := s.Lookup(qname, qtype)
		if !ok || res.Rcode != rcode || res.Authoritative != aa {
			t.Errorf("%s %s: ok=%v rcode=%d aa=%v", qname, dns.Type(qtype), ok, res.Rcode, res.Authoritative)
		}
		sameRecords(t, qname+" answer", res.Answer, answer)
		sameRecords(t, qname+" authority", res.Ns, ns)
		sameRecords(t, qname+" additional", res.Extra, extra)
	}
	neg := []string{"example.com. 60 IN SOA ns1.example.com. hostmaster.example.com. 2026112501 3600 600 86400 60"}
	check("www.example.com.", dns.TypeA, 0, true, []string{"www.example.com. 300 IN A 192.0.2.10"}, nil, nil)
	check("alias.example.com.", dns.TypeA, 0, true, []string{"alias.example.com. 300 IN CNAME www.example.com.", "www.example.com. 300 IN A 192.0.2.10"}, nil, nil)
	check("foo.wild.example.com.", dns.TypeA, 0, true, []string{"foo.wild.example.com. 300 IN A 192.0.2.77"}, nil, nil)
	check("wild.example.com.", dns.TypeA, 0, true, nil, neg, nil)
	check("b.ent.example.com.", dns.TypeA, 0, true, nil, neg, nil)
	check("nope.example.com.", dns.TypeA, dns.RcodeNameError, true, nil, neg, nil)
	check("host.sub.example.com.", dns.TypeA, 0, false, nil,
		[]string{"sub.example.com. 300 IN NS ns.sub.example.com."}, []string{"ns.sub.example.com. 300 IN A 192.0.2.99"})
	check("mail.example.com.", dns.TypeMX, 0, true, []string{"mail.example.com. 300 IN MX 10 www.example.com."}, nil, wwwAddrs)
}

// TestLookupConcurrentPack answers and packs from many goroutines at once,
// as the server does: the shared records are only read (run with -race).
func TestLookupConcurrentPack(t *testing.T) {
	s := fixtureSet(t)
	qs := []struct {
		name  string
		qtype uint16
	}{
		{"www.example.com.", dns.TypeA}, {"example.com.", dns.TypeNS}, {"chain.example.com.", dns.TypeA},
		{"foo.wild.example.com.", dns.TypeA}, {"host.sub.example.com.", dns.TypeA}, {"nope.example.com.", dns.TypeA},
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				q := qs[(g+i)%len(qs)]
				res, _ := s.Lookup(q.name, q.qtype)
				m := new(dns.Msg)
				m.SetQuestion(q.name, q.qtype)
				m.Answer, m.Ns, m.Extra = res.Answer, res.Ns, res.Extra
				m.Rcode, m.Authoritative = res.Rcode, res.Authoritative
				if _, err := m.Pack(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
