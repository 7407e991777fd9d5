package dnsserver

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// TestMetricsRcodeNames answers one query of each counted rcode and checks
// the label each is counted under: rcode 16 is BADVERS in a response
// (RFC 6891), whatever miekg/dns's table says.
func TestMetricsRcodeNames(t *testing.T) {
	h := NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
	s := newScratch()
	for _, pkt := range [][]byte{
		pack(t, 1, goodName, dns.TypeA, nil),
		pack(t, 2, "nope.service.disco.internal.", dns.TypeA, nil),
		pack(t, 3, "example.org.", dns.TypeA, nil),
		pack(t, 4, goodName, dns.TypeA, func(m *dns.Msg) { m.Opcode = dns.OpcodeStatus }),
		pack(t, 5, goodName, dns.TypeA, func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }),
		append(pack(t, 6, goodName, dns.TypeA, nil), 0), // trailing byte: FORMERR
	} {
		if h.serveUDP(pkt, netip.AddrPort{}, s) == nil {
			t.Fatalf("no answer to %x", pkt)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(h)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		if mf.GetName() != "disco_dns_queries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got = append(got, labels["qtype"]+" "+labels["rcode"])
		}
	}
	slices.Sort(got)
	want := []string{"A BADVERS", "A FORMERR", "A NOERROR", "A NOTIMP", "A NXDOMAIN", "A REFUSED"}
	if !slices.Equal(got, want) {
		t.Errorf("counted %q, want %q", got, want)
	}
	if n := rcodeName(dns.RcodeBadVers); n != "BADVERS" {
		t.Errorf("query log name of rcode 16: %q, want BADVERS", n)
	}
}
