package dnsserver

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"disco/registry"
)

// answerCase is one question and the expected response, records as zone
// text.
type answerCase struct {
	qname  string
	qtype  uint16
	rcode  int
	answer []string
	ns     []string
	extra  []string
}

// checkAnswers asks h every case over TCP (no truncation) and compares the
// sections as sorted zone text.
func checkAnswers(t *testing.T, h *Handler, tests []answerCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s", tc.qname, dns.TypeToString[tc.qtype]), func(t *testing.T) {
			req := new(dns.Msg)
			req.SetQuestion(tc.qname, tc.qtype)
			m := h.Respond(req, false)
			if m.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
			}
			if wantAA := tc.rcode != dns.RcodeRefused; m.Authoritative != wantAA {
				t.Errorf("aa=%v, want %v", m.Authoritative, wantAA)
			}
			checkSections(t, m, tc.answer, tc.ns, tc.extra)
		})
	}
}

func reverseConfig(zones ...string) Config {
	cfg := testConfig()
	for _, z := range zones {
		cfg.ReverseZones = append(cfg.ReverseZones, netip.MustParsePrefix(z))
	}
	return cfg
}

const (
	soa10  = "10.in-addr.arpa. 5 IN SOA ns1.disco.internal. hostmaster.disco.internal. 1767225600 3600 600 86400 5"
	soaFD  = "d.f.ip6.arpa. 5 IN SOA ns1.disco.internal. hostmaster.disco.internal. 1767225600 3600 600 86400 5"
	soa101 = "1.0.10.in-addr.arpa. 5 IN SOA ns1.disco.internal. hostmaster.disco.internal. 1767225600 3600 600 86400 5"
)

func TestReverseAnswer(t *testing.T) {
	h := NewHandler(reverseConfig("10.0.0.0/8", "fd00::/8", "10.0.1.0/24"), testRegistry(t, fixture, nil), nil, nil)
	checkAnswers(t, h, []answerCase{
		// The zones' apexes.
		{qname: "10.in-addr.arpa.", qtype: dns.TypeSOA, answer: []string{soa10}},
		{qname: "10.IN-ADDR.ARPA.", qtype: dns.TypeNS, answer: []string{"10.IN-ADDR.ARPA. 5 IN NS ns1.disco.internal."},
			extra: []string{"ns1.disco.internal. 5 IN A 127.0.0.1"}},
		{qname: "10.in-addr.arpa.", qtype: dns.TypeA, ns: []string{soa10}},
		{qname: "d.f.ip6.arpa.", qtype: dns.TypeSOA, answer: []string{soaFD}},
		// One PTR per instance on an address, whatever its health.
		{qname: "1.0.0.10.in-addr.arpa.", qtype: dns.TypePTR, answer: []string{"1.0.0.10.in-addr.arpa. 5 IN PTR web-1.web.instance.disco.internal."}},
		{qname: "1.2.0.10.in-addr.arpa.", qtype: dns.TypePTR, answer: []string{"1.2.0.10.in-addr.arpa. 5 IN PTR down-1.down.instance.disco.internal."}},
		{qname: "3.2.0.10.in-addr.arpa.", qtype: dns.TypePTR, answer: []string{"3.2.0.10.in-addr.arpa. 5 IN PTR down-3.down.instance.disco.internal."}},
		{qname: "1.0.0.10.in-addr.arpa.", qtype: dns.TypeA, ns: []string{soa10}},
		{qname: "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", qtype: dns.TypePTR,
			answer: []string{"5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. 5 IN PTR db-1.db.instance.disco.internal."}},
		// The more specific zone answers for its addresses: two instances
		// on one address.
		{qname: "1.1.0.10.in-addr.arpa.", qtype: dns.TypePTR, answer: []string{
			"1.1.0.10.in-addr.arpa. 5 IN PTR d-4.dual.instance.disco.internal.",
			"1.1.0.10.in-addr.arpa. 5 IN PTR d-same.dual.instance.disco.internal."}},
		{qname: "9.1.0.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError, ns: []string{soa101}},
		// Unregistered addresses and bad labels do not exist.
		{qname: "9.9.9.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError, ns: []string{soa10}},
		{qname: "01.0.0.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError, ns: []string{soa10}},
		{qname: "1.1.0.0.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError, ns: []string{soa10}},
		{qname: "x.0.0.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError, ns: []string{soa10}},
		// Names above a registered address are empty non-terminals.
		{qname: "0.0.10.in-addr.arpa.", qtype: dns.TypePTR, ns: []string{soa10}},
		{qname: "0.10.in-addr.arpa.", qtype: dns.TypePTR, ns: []string{soa10}},
		{qname: "9.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError, ns: []string{soa10}},
		{qname: "0.d.f.ip6.arpa.", qtype: dns.TypePTR, ns: []string{soaFD}},
		{qname: "1.d.f.ip6.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError, ns: []string{soaFD}},
		// Outside every reverse zone: not ours.
		{qname: "1.1.168.192.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeRefused},
		{qname: "in-addr.arpa.", qtype: dns.TypeSOA, rcode: dns.RcodeRefused},
	})
}

// TestReverseFollowsRegistry: the address index follows registrations and
// deregistrations, and the fast path's cached answers with it.
func TestReverseFollowsRegistry(t *testing.T) {
	reg := testRegistry(t, fixture, nil)
	h := NewHandler(reverseConfig("10.0.0.0/8"), reg, nil, nil)
	ctx := context.Background()
	ask := func(name string) string {
		req := new(dns.Msg)
		req.SetQuestion(name, dns.TypePTR)
		wire, _ := req.Pack()
		out := h.serveUDP(wire, netip.AddrPort{}, newScratch())
		var m dns.Msg
		if err := m.Unpack(out); err != nil {
			t.Fatal(err)
		}
		got := []string{dns.RcodeToString[m.Rcode]}
		for _, rr := range m.Answer {
			got = append(got, rr.(*dns.PTR).Ptr)
		}
		slices.Sort(got[1:])
		return strings.Join(got, " ")
	}
	steps := []struct {
		do   func() error
		name string
		want string
	}{
		{nil, "7.7.0.10.in-addr.arpa.", "NXDOMAIN"},
		{func() error {
			in, _ := registry.NewInstance("new", "n-1", registry.Registration{Address: "10.0.7.7", Port: 80})
			_, err := reg.Register(ctx, in)
			return err
		}, "7.7.0.10.in-addr.arpa.", "NOERROR n-1.new.instance.disco.internal."},
		{func() error {
			in, _ := registry.NewInstance("new", "n-2", registry.Registration{Address: "10.0.7.7", Port: 81})
			_, err := reg.Register(ctx, in)
			return err
		}, "7.7.0.10.in-addr.arpa.", "NOERROR n-1.new.instance.disco.internal. n-2.new.instance.disco.internal."},
		{func() error { return reg.Deregister(ctx, "new", "n-1") }, "7.7.0.10.in-addr.arpa.", "NOERROR n-2.new.instance.disco.internal."},
		{func() error {
			in, _ := registry.NewInstance("new", "n-2", registry.Registration{Address: "10.0.8.8", Port: 81})
			_, err := reg.Register(ctx, in)
			return err
		}, "7.7.0.10.in-addr.arpa.", "NXDOMAIN"},
		{nil, "7.0.10.in-addr.arpa.", "NXDOMAIN"},
		{nil, "8.8.0.10.in-addr.arpa.", "NOERROR n-2.new.instance.disco.internal."},
		{nil, "8.0.10.in-addr.arpa.", "NOERROR"},
	}
	for i, st := range steps {
		if st.do != nil {
			if err := st.do(); err != nil {
				t.Fatal(err)
			}
		}
		// Twice: the second answer comes from the fast path's cache.
		for range 2 {
			if got := ask(st.name); got != st.want {
				t.Fatalf("step %d: %s: %q, want %q", i, st.name, got, st.want)
			}
		}
	}
}

func TestReverseZoneName(t *testing.T) {
	tests := []struct{ prefix, want string }{
		{"10.0.0.0/8", "10.in-addr.arpa."},
		{"192.168.1.0/24", "1.168.192.in-addr.arpa."},
		{"10.1.2.3/32", "3.2.1.10.in-addr.arpa."},
		{"0.0.0.0/0", "in-addr.arpa."},
		{"2001:db8::/32", "8.b.d.0.1.0.0.2.ip6.arpa."},
		{"fd00::/12", "0.d.f.ip6.arpa."},
		{"10.0.0.0/12", "error: 10.0.0.0/12 is not on an octet boundary: reverse zones of IPv4 prefixes need /0, /8, /16, /24 or /32"},
		{"2001:db8::/30", "error: 2001:db8::/30 is not on a nibble boundary: reverse zones of IPv6 prefixes need a length that is a multiple of 4"},
		{"10.1.0.0/8", "error: 10.1.0.0/8 has bits set past its length: the prefix is 10.0.0.0/8"},
	}
	for _, tc := range tests {
		got, err := ReverseZoneName(netip.MustParsePrefix(tc.prefix))
		if err != nil {
			got = "error: " + err.Error()
		}
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.prefix, got, tc.want)
		}
	}
	cfg := reverseConfig("10.0.0.0/12")
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "octet boundary") {
		t.Errorf("Validate: %v, want the boundary error", err)
	}
}

// TestReverseNotify: the reverse zones are announced with the discovery
// zone's serial, at the start and whenever the serial moves.
func TestReverseNotify(t *testing.T) {
	reg := testRegistry(t, fixture, nil)
	cfg := reverseConfig("10.0.0.0/8", "fd00::/8")
	var mu sync.Mutex
	var got []string
	cfg.Notify = func(zone string, soa *dns.SOA) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, fmt.Sprintf("%s %d", zone, soa.Serial))
	}
	h := NewHandler(cfg, reg, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.Run(ctx) }()
	// waitFor n notifications.
	notified := func(n int) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got) >= n
		}
	}
	waitFor(t, notified(3)) // the start
	in, _ := registry.NewInstance("new", "n-1", registry.Registration{Address: "10.0.7.7", Port: 80})
	if _, err := reg.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"disco.internal. 1767225600", "10.in-addr.arpa. 1767225600", "d.f.ip6.arpa. 1767225600",
		"disco.internal. 1767225601", "10.in-addr.arpa. 1767225601", "d.f.ip6.arpa. 1767225601",
	}
	waitFor(t, notified(len(want)))
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("notified\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
