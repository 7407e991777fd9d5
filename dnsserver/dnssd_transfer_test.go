package dnsserver

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// collector keeps the messages of a response.
type collector struct{ msgs []*dns.Msg }

func (c *collector) WriteMessage(wire []byte, _ time.Time) error {
	m := new(dns.Msg)
	if err := m.Unpack(wire); err != nil {
		return err
	}
	c.msgs = append(c.msgs, m)
	return nil
}

// axfrFrom127 transfers zone from h over TCP from loopback and returns its
// records as zone text, SOA last record dropped, sorted.
func axfrFrom127(t *testing.T, h *Handler, zone string) []string {
	t.Helper()
	req := new(dns.Msg)
	req.SetAxfr(zone)
	var c collector
	h.Serve(context.Background(), Request{Msg: req, TCP: true, Remote: netip.MustParseAddrPort("127.0.0.1:5353")}, &c)
	var out []string
	for _, m := range c.msgs {
		if m.Rcode != dns.RcodeSuccess {
			t.Fatalf("AXFR %s: %s", zone, dns.RcodeToString[m.Rcode])
		}
		out = append(out, rrStrings(m.Answer)...)
	}
	if len(out) < 2 {
		t.Fatalf("AXFR %s: %d records", zone, len(out))
	}
	slices.Sort(out)
	return slices.Compact(out) // the SOA comes twice
}

func transferConfig(zones ...string) Config {
	cfg := reverseConfig(zones...)
	cfg.Transfer = TransferConfig{Allow: []TransferRule{{Prefix: netip.MustParsePrefix("127.0.0.0/8")}}}
	return cfg
}

// TestTransferDNSSD: the discovery zone's transfer carries the DNS-SD names
// as DNS answers them.
func TestTransferDNSSD(t *testing.T) {
	reg := testRegistry(t, fixture, fixtureSettings)
	h := NewHandler(transferConfig(), reg, nil, nil)
	got := axfrFrom127(t, h, "disco.internal.")
	for _, want := range normalize(t, []string{
		"_services._dns-sd._udp.service.disco.internal. 5 IN PTR _web._tcp.service.disco.internal.",
		"_services._dns-sd._udp.service.disco.internal. 5 IN PTR _slow._tcp.service.disco.internal.",
		"_slow._tcp.service.disco.internal. 30 IN PTR slow-1._slow._tcp.service.disco.internal.",
		"slow-1._slow._tcp.service.disco.internal. 30 IN SRV 1 1 80 slow-1.slow.instance.disco.internal.",
		`slow-1._slow._tcp.service.disco.internal. 30 IN TXT ""`,
		`web-3._web._tcp.service.disco.internal. 5 IN TXT "version=1.2" "zone=a"`,
		"b._dns-sd._udp.disco.internal. 5 IN PTR service.disco.internal.",
	}) {
		if !slices.Contains(got, want) {
			t.Errorf("AXFR lacks %s", want)
		}
	}
	for _, rr := range got {
		if strings.Contains(rr, "_down._tcp") && strings.Contains(rr, "PTR") {
			t.Errorf("AXFR has %s: down serves no instance", rr)
		}
	}
}

// TestTransferReverse: a reverse zone transfers as DNS answers it, and a
// more specific reverse zone keeps its own addresses.
func TestTransferReverse(t *testing.T) {
	reg := testRegistry(t, fixture, nil)
	h := NewHandler(transferConfig("10.0.0.0/8", "10.0.1.0/24"), reg, nil, nil)
	got := axfrFrom127(t, h, "10.in-addr.arpa.")
	want := normalize(t, []string{
		"10.in-addr.arpa. 5 IN SOA ns1.disco.internal. hostmaster.disco.internal. 1767225600 3600 600 86400 5",
		"10.in-addr.arpa. 5 IN NS ns1.disco.internal.",
		"1.0.0.10.in-addr.arpa. 5 IN PTR web-1.web.instance.disco.internal.",
		"2.0.0.10.in-addr.arpa. 5 IN PTR web-2.web.instance.disco.internal.",
		"3.0.0.10.in-addr.arpa. 5 IN PTR web-3.web.instance.disco.internal.",
		"1.2.0.10.in-addr.arpa. 5 IN PTR down-1.down.instance.disco.internal.",
		"2.2.0.10.in-addr.arpa. 5 IN PTR down-2.down.instance.disco.internal.",
		"3.2.0.10.in-addr.arpa. 5 IN PTR down-3.down.instance.disco.internal.",
		"1.3.0.10.in-addr.arpa. 5 IN PTR slow-1.slow.instance.disco.internal.",
	})
	if !slices.Equal(got, want) {
		t.Errorf("AXFR 10.in-addr.arpa.:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	got = axfrFrom127(t, h, "1.0.10.in-addr.arpa.")
	want = normalize(t, []string{
		"1.0.10.in-addr.arpa. 5 IN SOA ns1.disco.internal. hostmaster.disco.internal. 1767225600 3600 600 86400 5",
		"1.0.10.in-addr.arpa. 5 IN NS ns1.disco.internal.",
		"1.1.0.10.in-addr.arpa. 5 IN PTR d-4.dual.instance.disco.internal.",
		"1.1.0.10.in-addr.arpa. 5 IN PTR d-same.dual.instance.disco.internal.",
	})
	if !slices.Equal(got, want) {
		t.Errorf("AXFR 1.0.10.in-addr.arpa.:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	// Below the apex is no zone.
	req := new(dns.Msg)
	req.SetAxfr("0.10.in-addr.arpa.")
	var c collector
	h.Serve(context.Background(), Request{Msg: req, TCP: true, Remote: netip.MustParseAddrPort("127.0.0.1:5353")}, &c)
	if len(c.msgs) != 1 || c.msgs[0].Rcode != dns.RcodeNotAuth {
		t.Errorf("AXFR below a reverse zone's apex: %v", c.msgs)
	}
}
