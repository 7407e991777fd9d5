package dnsserver

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"disco/registry"
)

// TestExplainAgreesWithDNS asks a running server every shape of name over
// UDP and TCP and checks that Explain gives the same answer, and a reason.
func TestExplainAgreesWithDNS(t *testing.T) {
	reg := testRegistry(t, fixture, fixtureSettings)
	cfg := testConfig()
	cfg.Policy = registry.Policy{MinHealthyPercent: 40} // "down" fails open when asked with its tag only
	zs := staticZones{parseZones(t, exampleZone)}
	h := NewHandler(cfg, reg, zs, nil)
	addr := startServer(t, ServerConfig{}, h)

	tests := []struct {
		name   string
		qtype  uint16
		zone   string // the zone that answered
		reason string // a part of the reason
		ttlSrc string // a part of the TTL's source ("" for none)
	}{
		{"disco.internal.", dns.TypeSOA, "disco.internal.", "apex", "--dns-ttl"},
		{"disco.internal.", dns.TypeNS, "disco.internal.", "apex", "--dns-ttl"},
		{"ns1.disco.internal.", dns.TypeA, "disco.internal.", "name server", "--dns-ttl"},
		{"web.service.disco.internal.", dns.TypeA, "disco.internal.", "3 of 3 instances served", "--dns-ttl"},
		{"WEB.Service.disco.internal.", dns.TypeSRV, "disco.internal.", "3 of 3 instances served", "--dns-ttl"},
		{"web.service.disco.internal.", dns.TypeAAAA, "disco.internal.", "no served instance has a AAAA record", "negative TTL"},
		{"db.service.disco.internal.", dns.TypeAAAA, "disco.internal.", "1 of 1", "--dns-ttl"},
		{"slow.service.disco.internal.", dns.TypeA, "disco.internal.", "1 of 1", "dns_ttl"},
		{"v1.web.service.disco.internal.", dns.TypeA, "disco.internal.", "with tag v1: 2 of 2", ""},
		{"_web._tcp.service.disco.internal.", dns.TypeSRV, "disco.internal.", "3 of 3", ""},
		{"_web._udp.service.disco.internal.", dns.TypeSRV, "disco.internal.", "3 of 3", ""},
		{"_web._v2.service.disco.internal.", dns.TypeSRV, "disco.internal.", "with tag v2: 1 of 1", ""},
		{"_down._blue.service.disco.internal.", dns.TypeSRV, "disco.internal.", "fail open", ""},
		{"down.service.disco.internal.", dns.TypeA, "disco.internal.", "fail open", ""},
		{"empty.service.disco.internal.", dns.TypeA, "disco.internal.", "no instance is served", "negative TTL"},
		{"red.web.service.disco.internal.", dns.TypeA, "disco.internal.", `no instance carrying tag "red"`, "negative TTL"},
		{"nope.service.disco.internal.", dns.TypeA, "disco.internal.", `no service "nope"`, "negative TTL"},
		{"0a000001.addr.disco.internal.", dns.TypeA, "disco.internal.", "SRV target name of 10.0.0.1", ""},
		{"fd000000000000000000000000000005.addr.disco.internal.", dns.TypeAAAA, "disco.internal.", "fd00::5", ""},
		{"web-3.web.instance.disco.internal.", dns.TypeA, "disco.internal.", "whatever its health", ""},
		{"web-3.web.instance.disco.internal.", dns.TypeSRV, "disco.internal.", "whatever its health", ""},
		{"web-3.web.instance.disco.internal.", dns.TypeTXT, "disco.internal.", "whatever its health", ""},
		{"down-3.down.instance.disco.internal.", dns.TypeA, "disco.internal.", "it is maintenance", ""},
		{"zz.web.instance.disco.internal.", dns.TypeA, "disco.internal.", `no instance "zz"`, ""},
		{"web.instance.disco.internal.", dns.TypeA, "disco.internal.", "parent of the instances", ""},
		{"service.disco.internal.", dns.TypeA, "disco.internal.", "empty non-terminal", ""},
		{"other.disco.internal.", dns.TypeA, "disco.internal.", "no such name in the discovery domain", ""},
		{"a.b.c.service.disco.internal.", dns.TypeA, "disco.internal.", "not a name of the discovery domain's scheme", ""},
		{"www.example.com.", dns.TypeA, "example.com.", "answered from the zone file of example.com.", "zone file of example.com."},
		{"alias.example.com.", dns.TypeA, "example.com.", "answered from the zone file", "zone file"},
		{"web.example.com.", dns.TypeA, "example.com.", "following a CNAME into the discovery domain", "zone file"},
		{"www.example.com.", dns.TypeMX, "example.com.", "without MX records", "SOA of the zone file"},
		{"nothing.example.com.", dns.TypeA, "example.com.", "no such name from the zone file", "SOA"},
		{"x.sub.example.com.", dns.TypeA, "example.com.", "delegated: a referral", ""},
		{"www.example.org.", dns.TypeA, "", "outside every zone this server answers for: disco.internal. (the discovery domain), example.com.", ""},
		{"disco.internal.", dns.TypeAXFR, "", "AXFR queries get REFUSED", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+dns.TypeToString[tt.qtype], func(t *testing.T) {
			e := h.Explain(tt.name, tt.qtype)
			if e.Zone != tt.zone || !strings.Contains(e.Reason, tt.reason) {
				t.Errorf("zone %q, reason %q; want zone %q, a reason with %q", e.Zone, e.Reason, tt.zone, tt.reason)
			}
			if tt.ttlSrc != "" && !strings.Contains(e.TTLSource, tt.ttlSrc) {
				t.Errorf("TTL %d from %q, want it from %q", e.TTL, e.TTLSource, tt.ttlSrc)
			}
			for _, network := range []string{"udp", "tcp"} {
				if network == "udp" && tt.qtype == dns.TypeAXFR {
					continue // AXFR over UDP is NOTIMP; explain speaks of TCP, where no rule lets the peer in
				}
				req := new(dns.Msg)
				req.SetQuestion(tt.name, tt.qtype)
				req.RecursionDesired = false
				req.SetEdns0(1232, false)
				c := &dns.Client{Net: network, Timeout: waitLimit}
				got, _, err := c.Exchange(req, addr)
				if err != nil {
					t.Fatal(err)
				}
				if got.Rcode != e.Msg.Rcode || got.Authoritative != e.Msg.Authoritative {
					t.Errorf("%s: DNS says %s aa=%v, explain says %s aa=%v", network, dns.RcodeToString[got.Rcode], got.Authoritative,
						dns.RcodeToString[e.Msg.Rcode], e.Msg.Authoritative)
				}
				for _, sec := range []struct {
					name     string
					dns, exp []dns.RR
				}{{"answer", got.Answer, e.Msg.Answer}, {"authority", got.Ns, e.Msg.Ns}, {"additional", got.Extra, e.Msg.Extra}} {
					if a, b := rrStrings(sec.dns), rrStrings(sec.exp); !slices.Equal(a, b) {
						t.Errorf("%s %s: DNS says\n%s\nexplain says\n%s", network, sec.name, strings.Join(a, "\n"), strings.Join(b, "\n"))
					}
				}
				if a, b := edeText(got), edeText(e.Msg); a != b {
					t.Errorf("%s: DNS gives EDE %q, explain %q", network, a, b)
				}
				if len(e.Msg.Answer) > 0 && !slices.ContainsFunc(got.Answer, func(rr dns.RR) bool { return rr.Header().Ttl == e.TTL }) {
					t.Errorf("%s: no record with TTL %d, which explain says", network, e.TTL)
				}
			}
		})
	}
}

func edeText(m *dns.Msg) string {
	if e := findEDE(m); e != nil {
		return e.ExtraText
	}
	return ""
}

// TestExplainService checks what Explain says about a service's instances:
// the policy's selection, which agrees with the answer.
func TestExplainService(t *testing.T) {
	h := NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
	e := h.Explain("v1.web.service.disco.internal", dns.TypeA)
	if e.Service == nil || e.Service.Name() != "web" || e.Selection == nil || e.Selection.Tag != "v1" {
		t.Fatalf("service %v selection %+v, want web with tag v1", e.Service, e.Selection)
	}
	for _, in := range e.Service.Instances() {
		v := e.Selection.Why(in)
		inAnswer := slices.ContainsFunc(e.Msg.Answer, func(rr dns.RR) bool { return rr.(*dns.A).A.String() == in.Address.String() })
		if v.Served != inAnswer {
			t.Errorf("%s: served=%v (%s), in the answer: %v", in.ID, v.Served, v.Reason, inAnswer)
		}
	}
	if e := h.Explain("web-1.web.instance.disco.internal.", dns.TypeA); e.Instance == nil || e.Instance.ID != "web-1" {
		t.Errorf("instance name: instance %v", e.Instance)
	}
}
