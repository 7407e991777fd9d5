package dnsserver

import (
	"testing"

	"github.com/miekg/dns"
)

func TestDNSSDAnswer(t *testing.T) {
	instances := append(fixture,
		fixtureInstance{service: "meta", id: "m-1", addr: "10.0.4.1", port: 443,
			meta: map[string]string{"Path": "/a", "path": "/b", "txtvers": "1", "back": `a\b`}},
		fixtureInstance{service: "dns-sd", id: "x-1", addr: "10.0.5.1", port: 53})
	h := NewHandler(testConfig(), testRegistry(t, instances, fixtureSettings), nil, nil)
	const d = "disco.internal."
	checkAnswers(t, h, []answerCase{
		// Service types: services with an instance DNS serves ("down" has
		// none passing, "empty" no instance).
		{qname: "_services._dns-sd._udp.service." + d, qtype: dns.TypePTR, answer: []string{
			"_services._dns-sd._udp.service.disco.internal. 5 IN PTR _db._tcp.service.disco.internal.",
			"_services._dns-sd._udp.service.disco.internal. 5 IN PTR _dns-sd._tcp.service.disco.internal.",
			"_services._dns-sd._udp.service.disco.internal. 5 IN PTR _dual._tcp.service.disco.internal.",
			"_services._dns-sd._udp.service.disco.internal. 5 IN PTR _meta._tcp.service.disco.internal.",
			"_services._dns-sd._udp.service.disco.internal. 5 IN PTR _slow._tcp.service.disco.internal.",
			"_services._dns-sd._udp.service.disco.internal. 5 IN PTR _web._tcp.service.disco.internal."}},
		{qname: "_services._dns-sd._udp.service." + d, qtype: dns.TypeA, ns: []string{soaLine}},
		// Instances of a service type, with SRV, TXT and addresses.
		{qname: "_slow._tcp.service." + d, qtype: dns.TypePTR,
			answer: []string{"_slow._tcp.service.disco.internal. 30 IN PTR slow-1._slow._tcp.service.disco.internal."},
			extra: []string{
				"slow-1._slow._tcp.service.disco.internal. 30 IN SRV 1 1 80 slow-1.slow.instance.disco.internal.",
				`slow-1._slow._tcp.service.disco.internal. 30 IN TXT ""`,
				"slow-1.slow.instance.disco.internal. 30 IN A 10.0.3.1"}},
		{qname: "_down._tcp.service." + d, qtype: dns.TypePTR, ns: []string{soaLine}},
		{qname: "_slow._udp.service." + d, qtype: dns.TypePTR, ns: []string{soaLine}},
		{qname: "_web._v1.service." + d, qtype: dns.TypePTR, ns: []string{soaLine}},
		{qname: "_nope._tcp.service." + d, qtype: dns.TypePTR, rcode: dns.RcodeNameError, ns: []string{soaLine}},
		// A service instance.
		{qname: "web-3._web._tcp.service." + d, qtype: dns.TypeSRV,
			answer: []string{"web-3._web._tcp.service.disco.internal. 5 IN SRV 2 10 8080 web-3.web.instance.disco.internal."},
			extra:  []string{"web-3.web.instance.disco.internal. 5 IN A 10.0.0.3"}},
		{qname: "web-3._web._tcp.service." + d, qtype: dns.TypeTXT,
			answer: []string{`web-3._web._tcp.service.disco.internal. 5 IN TXT "version=1.2" "zone=a"`}},
		{qname: "db-1._db._tcp.service." + d, qtype: dns.TypeSRV,
			answer: []string{"db-1._db._tcp.service.disco.internal. 5 IN SRV 1 1 5432 db-1.db.instance.disco.internal."},
			extra:  []string{"db-1.db.instance.disco.internal. 5 IN AAAA fd00::5"}},
		// RFC 6763 section 6.4: keys are case-insensitive, the first wins.
		{qname: "m-1._meta._tcp.service." + d, qtype: dns.TypeTXT,
			answer: []string{`m-1._meta._tcp.service.disco.internal. 5 IN TXT "Path=/a" "back=a\\b" "txtvers=1"`}},
		{qname: "web-1._web._tcp.service." + d, qtype: dns.TypeA, ns: []string{soaLine}},
		// Instances DNS does not serve have no service instance name.
		{qname: "down-1._down._tcp.service." + d, qtype: dns.TypeSRV, rcode: dns.RcodeNameError, ns: []string{soaLine}},
		{qname: "down-3._down._tcp.service." + d, qtype: dns.TypeTXT, rcode: dns.RcodeNameError, ns: []string{soaLine}},
		{qname: "web-9._web._tcp.service." + d, qtype: dns.TypeSRV, rcode: dns.RcodeNameError, ns: []string{soaLine}},
		{qname: "web-1._web._udp.service." + d, qtype: dns.TypeSRV, rcode: dns.RcodeNameError, ns: []string{soaLine}},
		{qname: "_x._web._tcp.service." + d, qtype: dns.TypeSRV, rcode: dns.RcodeNameError, ns: []string{soaLine}},
		// The browsing domain and the empty non-terminals above it.
		{qname: "b._dns-sd._udp." + d, qtype: dns.TypePTR, answer: []string{"b._dns-sd._udp.disco.internal. 5 IN PTR service.disco.internal."}},
		{qname: "b._dns-sd._udp." + d, qtype: dns.TypeTXT, ns: []string{soaLine}},
		{qname: "_dns-sd._udp." + d, qtype: dns.TypePTR, ns: []string{soaLine}},
		{qname: "_udp." + d, qtype: dns.TypePTR, ns: []string{soaLine}},
		{qname: "lb._dns-sd._udp." + d, qtype: dns.TypePTR, rcode: dns.RcodeNameError, ns: []string{soaLine}},
		// _dns-sd._udp.service.D is the enumeration's parent, and the RFC
		// 2782 name of a service named dns-sd.
		{qname: "_dns-sd._udp.service." + d, qtype: dns.TypeSRV,
			answer: []string{"_dns-sd._udp.service.disco.internal. 5 IN SRV 1 1 53 0a000501.addr.disco.internal."},
			extra:  []string{"0a000501.addr.disco.internal. 5 IN A 10.0.5.1"}},
		// The RFC 2782 form is unchanged.
		{qname: "_slow._tcp.service." + d, qtype: dns.TypeSRV,
			answer: []string{"_slow._tcp.service.disco.internal. 30 IN SRV 1 1 80 0a000301.addr.disco.internal."},
			extra:  []string{"0a000301.addr.disco.internal. 30 IN A 10.0.3.1"}},
	})

	// Without a service named dns-sd, the enumeration's parent is an empty
	// non-terminal.
	h = NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
	checkAnswers(t, h, []answerCase{
		{qname: "_dns-sd._udp.service." + d, qtype: dns.TypePTR, ns: []string{soaLine}},
	})
}
