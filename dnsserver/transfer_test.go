package dnsserver

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"disco/registry"
	"disco/tsig"
)

const testSecret = "KkOLrzVLMGhOYI6ie8rShwMQ9jYGRu98kRvQwFSeccE="

func testKeys(t testing.TB) *tsig.Keyring {
	t.Helper()
	k, err := tsig.NewKey("xfr", "hmac-sha256", testSecret)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := tsig.NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

// xfrConfig is testConfig with the test key and transfers allowed to it
// and to 192.0.2.0/24.
func xfrConfig(t testing.TB) Config {
	cfg := testConfig()
	cfg.TSIG = testKeys(t)
	cfg.Transfer.Allow = []TransferRule{mustRule(t, "key:xfr"), mustRule(t, "192.0.2.0/24")}
	return cfg
}

func mustRule(t testing.TB, s string) TransferRule {
	t.Helper()
	r, err := ParseTransferRule(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// capture is a MessageWriter that keeps every message.
type capture struct{ msgs [][]byte }

func (c *capture) WriteMessage(wire []byte, _ time.Time) error {
	c.msgs = append(c.msgs, slices.Clone(wire))
	return nil
}

// request is one request to Serve.
type request struct {
	qname  string
	qtype  uint16
	serial uint32 // IXFR: the client's serial
	udp    bool
	from   string // client address; 198.51.100.1 when empty
	signed bool   // with the test key
	at     time.Time
}

// serve sends r through Serve and returns the messages of the response,
// each checked as the client checks it: its TSIG verified in the chain of
// RFC 8945 section 5.3.1 when the request was signed.
func serve(t *testing.T, h *Handler, r request) []*dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(r.qname, r.qtype)
	if r.qtype == dns.TypeIXFR {
		m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: r.qname, Rrtype: dns.TypeSOA, Class: dns.ClassINET},
			Ns: "ns.", Mbox: "h.", Serial: r.serial}}
	}
	var wire []byte
	var err error
	if r.signed {
		at := r.at
		if at.IsZero() {
			at = time.Now()
		}
		m.SetTsig("xfr.", dns.HmacSHA256, 300, at.Unix())
		wire, _, err = dns.TsigGenerate(m, testSecret, "", false)
	} else {
		wire, err = m.Pack()
	}
	if err != nil {
		t.Fatal(err)
	}
	req := new(dns.Msg)
	if err := req.Unpack(wire); err != nil {
		t.Fatal(err)
	}
	from := r.from
	if from == "" {
		from = "198.51.100.1"
	}
	c := &capture{}
	h.Serve(context.Background(), Request{Wire: wire, Msg: req, TCP: !r.udp, Remote: netip.AddrPortFrom(netip.MustParseAddr(from), 5353)}, c)
	var out []*dns.Msg
	prev := ""
	if r.signed {
		prev = req.IsTsig().MAC
	}
	for i, b := range c.msgs {
		got := new(dns.Msg)
		if err := got.Unpack(b); err != nil {
			t.Fatalf("message %d does not parse: %v", i, err)
		}
		if got.Id != m.Id || !got.Response {
			t.Fatalf("message %d: id %d response %v", i, got.Id, got.Response)
		}
		if r.signed && got.Rcode == dns.RcodeSuccess {
			if err := dns.TsigVerify(slices.Clone(b), testSecret, prev, i > 0); err != nil {
				t.Fatalf("message %d: TSIG does not verify: %v", i, err)
			}
			prev = got.IsTsig().MAC
		}
		out = append(out, got)
	}
	return out
}

// records returns the answer records of msgs in order.
func records(msgs []*dns.Msg) []dns.RR {
	var out []dns.RR
	for _, m := range msgs {
		out = append(out, m.Answer...)
	}
	return out
}

// axfr returns the discovery zone by AXFR, checking that it is framed by
// its SOA, as sorted record strings without the closing SOA.
func axfr(t *testing.T, h *Handler, zone string) []string {
	t.Helper()
	msgs := serve(t, h, request{qname: zone, qtype: dns.TypeAXFR, signed: true})
	rrs := records(msgs)
	if len(rrs) < 2 || rrs[0].Header().Rrtype != dns.TypeSOA || !dns.IsDuplicate(rrs[0], rrs[len(rrs)-1]) {
		t.Fatalf("AXFR of %s not framed by its SOA: %v", zone, rrs)
	}
	return rrStrings(rrs[:len(rrs)-1])
}

// TestZoneIsWhatDNSAnswers walks the discovery zone and asks DNS every name
// and type of the zone: the answers hold exactly the zone's records; and a
// name DNS answers with records is in the zone.
func TestZoneIsWhatDNSAnswers(t *testing.T) {
	cfg := xfrConfig(t)
	fx := append(slices.Clone(fixture),
		fixtureInstance{service: "api", id: "api-1", addr: "10.0.4.1", port: 443, tags: []string{"tcp", "blue"}},
		fixtureInstance{service: "api", id: "api-2", addr: "10.0.0.1", port: 443, checks: true})
	settings := map[string]registry.Settings{"slow": {DNSTTL: intp(30)}, "empty": {},
		"down": {MinHealthyPercent: intp(50)}}
	reg := testRegistry(t, fx, settings)
	for _, withZone := range []bool{false, true} {
		t.Run(fmt.Sprintf("domain zone file %v", withZone), func(t *testing.T) {
			var zs ZoneSource
			if withZone {
				zs = staticZones{parseZones(t, domainZone, exampleZone)}
			}
			h := NewHandler(cfg, reg, zs, nil)
			zone := axfr(t, h, "disco.internal.")
			byQuestion := map[string][]string{}
			for _, line := range zone {
				rr, _ := dns.NewRR(line)
				k := rr.Header().Name + " " + dns.TypeToString[rr.Header().Rrtype]
				byQuestion[k] = append(byQuestion[k], line)
			}
			names := map[string]bool{}
			for k := range byQuestion {
				names[strings.Fields(k)[0]] = true
			}
			for name := range names {
				for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeTXT, dns.TypeNS, dns.TypeSOA, dns.TypeMX, dns.TypeCNAME, dns.TypePTR} {
					req := new(dns.Msg)
					req.SetQuestion(name, qt)
					resp := h.Respond(req, false)
					got := rrStrings(resp.Answer)
					want := byQuestion[name+" "+dns.TypeToString[qt]]
					if want == nil {
						want = []string{}
					}
					if qt == dns.TypeCNAME || (len(got) > 0 && resp.Answer[0].Header().Rrtype == dns.TypeCNAME) {
						continue // a CNAME answer is the CNAME record, checked under its own type
					}
					if strings.Join(got, "\n") != strings.Join(want, "\n") {
						t.Errorf("%s %s: DNS answers\n%s\nthe zone holds\n%s", name, dns.TypeToString[qt],
							strings.Join(got, "\n"), strings.Join(want, "\n"))
					}
				}
			}
			// Names with records that DNS answers are in the zone.
			for _, q := range []string{
				"web.service.disco.internal.", "v1.web.service.disco.internal.", "_web._tcp.service.disco.internal.",
				"_web._udp.service.disco.internal.", "_web._v2.service.disco.internal.", "_api._blue.service.disco.internal.",
				"web-3.web.instance.disco.internal.", "down-1.down.instance.disco.internal.",
				"0a000201.addr.disco.internal.", "0a000203.addr.disco.internal.", "fd000000000000000000000000000005.addr.disco.internal.",
				"down.service.disco.internal.", "blue.api.service.disco.internal.",
				"_services._dns-sd._udp.service.disco.internal.", "web-3._web._tcp.service.disco.internal.",
				"b._dns-sd._udp.disco.internal.",
			} {
				if !names[q] {
					t.Errorf("%s is not in the zone", q)
				}
			}
			// No name is in the zone twice with one record.
			if c := slices.Compact(slices.Clone(zone)); len(c) != len(zone) {
				t.Errorf("the zone holds %d duplicate records", len(zone)-len(c))
			}
		})
	}
}

// TestAddrOnlyRegistered: <hex>.addr.D answers the addresses of registered
// instances only, whatever their health, and the cache follows.
func TestAddrOnlyRegistered(t *testing.T) {
	reg := testRegistry(t, fixture, nil)
	h := NewHandler(testConfig(), reg, nil, nil)
	ask := func(name string, qtype uint16) (int, []string) {
		req := new(dns.Msg)
		req.SetQuestion(name, qtype)
		pkt, _ := req.Pack()
		out := h.serveUDP(pkt, netip.AddrPort{}, newScratch())
		m := new(dns.Msg)
		if err := m.Unpack(out); err != nil {
			t.Fatal(err)
		}
		return m.Rcode, rrStrings(m.Answer)
	}
	for _, tc := range []struct {
		name  string
		qtype uint16
		rcode int
		n     int
	}{
		{"0a000001.addr.disco.internal.", dns.TypeA, dns.RcodeSuccess, 1},
		{"0a000201.addr.disco.internal.", dns.TypeA, dns.RcodeSuccess, 1}, // critical instance
		{"0a000203.addr.disco.internal.", dns.TypeA, dns.RcodeSuccess, 1}, // maintenance
		{"fd000000000000000000000000000005.addr.disco.internal.", dns.TypeAAAA, dns.RcodeSuccess, 1},
		{"0a000001.addr.disco.internal.", dns.TypeAAAA, dns.RcodeSuccess, 0},
		{"0a0000ff.addr.disco.internal.", dns.TypeA, dns.RcodeNameError, 0},
		{"fd0000000000000000000000000000ff.addr.disco.internal.", dns.TypeAAAA, dns.RcodeNameError, 0},
	} {
		for range 2 { // built, then from the cache
			if rc, ans := ask(tc.name, tc.qtype); rc != tc.rcode || len(ans) != tc.n {
				t.Errorf("%s %s: %s %v, want %s with %d records", tc.name, dns.TypeToString[tc.qtype],
					dns.RcodeToString[rc], ans, dns.RcodeToString[tc.rcode], tc.n)
			}
		}
	}
	in, _ := registry.NewInstance("new", "n-1", registry.Registration{Address: "10.0.0.255", Port: 80})
	if _, err := reg.Register(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if rc, ans := ask("0a0000ff.addr.disco.internal.", dns.TypeA); rc != dns.RcodeSuccess || len(ans) != 1 {
		t.Errorf("after registering 10.0.0.255: %s %v", dns.RcodeToString[rc], ans)
	}
	if err := reg.Deregister(context.Background(), "new", "n-1"); err != nil {
		t.Fatal(err)
	}
	if rc, _ := ask("0a0000ff.addr.disco.internal.", dns.TypeA); rc != dns.RcodeNameError {
		t.Errorf("after deregistering 10.0.0.255: %s", dns.RcodeToString[rc])
	}
}

// soaSerial asks the apex SOA over the UDP path and returns its serial.
func soaSerial(t *testing.T, h *Handler) uint32 {
	t.Helper()
	req := new(dns.Msg)
	req.SetQuestion("disco.internal.", dns.TypeSOA)
	pkt, _ := req.Pack()
	m := new(dns.Msg)
	if err := m.Unpack(h.serveUDP(pkt, netip.AddrPort{}, newScratch())); err != nil || len(m.Answer) != 1 {
		t.Fatalf("SOA: %v %v", err, m)
	}
	return m.Answer[0].(*dns.SOA).Serial
}

// TestSerialFollowsVisibleChanges: every change DNS shows moves the serial
// by one, at once; a change DNS does not show leaves it.
func TestSerialFollowsVisibleChanges(t *testing.T) {
	ctx := context.Background()
	reg := testRegistry(t, fixture, fixtureSettings)
	h := NewHandler(xfrConfig(t), reg, nil, nil)
	instance := func(svc, id, addr string, checks bool, tags ...string) *registry.Instance {
		r := registry.Registration{Address: addr, Port: 80, Tags: tags}
		if checks {
			r.Checks = []registry.Check{{Type: registry.CheckTTL, TTL: registry.Duration(time.Minute)}}
		}
		in, err := registry.NewInstance(svc, id, r)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	var rev uint64
	steps := []struct {
		name  string
		do    func() error
		moves bool
	}{
		{"register", func() error {
			in, err := reg.Register(ctx, instance("new", "n-1", "10.9.0.1", true))
			rev = in.Revision
			return err
		}, true},
		{"register the same again", func() error { _, err := reg.Register(ctx, instance("new", "n-1", "10.9.0.1", true)); return err }, false},
		{"health output only", func() error {
			reg.SetHealth(registry.Key{Service: "new", ID: "n-1"}, rev, registry.Health{Status: registry.StatusCritical, Output: "still down"})
			return nil
		}, false},
		{"health passing", func() error {
			reg.SetHealth(registry.Key{Service: "new", ID: "n-1"}, rev, registry.Health{Status: registry.StatusPassing, Output: "ok"})
			return nil
		}, true},
		{"maintenance", func() error { _, err := reg.SetMaintenance(ctx, "new", "n-1", true, "drain"); return err }, true},
		{"maintenance reason only", func() error { _, err := reg.SetMaintenance(ctx, "new", "n-1", true, "other"); return err }, false},
		{"settings: TTL", func() error { _, err := reg.SetSettings(ctx, "new", registry.Settings{DNSTTL: intp(9)}); return err }, true},
		{"settings: the same TTL", func() error { _, err := reg.SetSettings(ctx, "new", registry.Settings{DNSTTL: intp(9)}); return err }, false},
		{"a tag", func() error {
			_, err := reg.Register(ctx, instance("new", "n-2", "10.9.0.2", false, "canary"))
			return err
		}, true},
		{"deregister", func() error { return reg.Deregister(ctx, "new", "n-2") }, true},
	}
	prev := soaSerial(t, h)
	if prev != testSerial {
		t.Fatalf("first serial %d, want %d", prev, testSerial)
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got := soaSerial(t, h)
		want := prev
		if s.moves {
			want = prev + 1
		}
		if got != want {
			t.Errorf("%s: serial %d, want %d", s.name, got, want)
		}
		prev = got
	}
}

// TestNegativeAnswersFollowTheSerial: negative answers carry the current
// serial after a change; those about names the registry holds are cached
// and not built again, those about names it does not hold are never cached.
func TestNegativeAnswersFollowTheSerial(t *testing.T) {
	reg := testRegistry(t, fixture, nil)
	h := NewHandler(testConfig(), reg, staticZones{parseZones(t, exampleZone)}, nil)
	ask := func(name string, qtype uint16) *dns.Msg {
		req := new(dns.Msg)
		req.SetQuestion(name, qtype)
		req.SetEdns0(1232, false)
		pkt, _ := req.Pack()
		m := new(dns.Msg)
		if err := m.Unpack(h.serveUDP(pkt, netip.AddrPort{}, newScratch())); err != nil {
			t.Fatal(err)
		}
		return m
	}
	negatives := []struct {
		name   string
		qtype  uint16
		cached bool
	}{
		{"nope.service.disco.internal.", dns.TypeA, false},         // NXDOMAIN
		{"web.service.disco.internal.", dns.TypeAAAA, true},        // NODATA
		{"service.disco.internal.", dns.TypeA, false},              // empty non-terminal
		{"gone.example.com.", dns.TypeA, true},                     // CNAME into D, then NXDOMAIN
		{"0a0000ff.addr.disco.internal.", dns.TypeA, false},        // unregistered address
		{"web-1.web.instance.disco.internal.", dns.TypeMX, true},   // NODATA at an instance
		{"nope.example.com.", dns.TypeA, false},                    // NXDOMAIN in a static zone
		{"_nope._tcp.service.disco.internal.", dns.TypeSRV, false}, // NXDOMAIN
	}
	serialOf := func(m *dns.Msg) uint32 {
		for _, rr := range m.Ns {
			if soa, ok := rr.(*dns.SOA); ok && soa.Hdr.Name == "disco.internal." {
				return soa.Serial
			}
		}
		t.Fatalf("no SOA of the discovery zone in %v", m)
		return 0
	}
	for _, n := range negatives {
		ask(n.name, n.qtype) // cache those that are cached
	}
	entries := 0
	for _, n := range negatives {
		if n.cached {
			entries++
		}
	}
	if got := h.cache.lru.Len(); got != entries {
		t.Errorf("%d cached answers, want %d", got, entries)
	}
	for i := 1; i <= 3; i++ {
		in, _ := registry.NewInstance("other", fmt.Sprintf("o-%d", i), registry.Registration{Address: fmt.Sprintf("10.8.0.%d", i), Port: 80})
		if _, err := reg.Register(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		want := uint32(testSerial + i)
		for _, n := range negatives {
			misses := h.stats.cacheMisses.Load()
			if n.name != "nope.example.com." {
				if got := serialOf(ask(n.name, n.qtype)); got != want {
					t.Errorf("%s %s after change %d: serial %d, want %d", n.name, dns.TypeToString[n.qtype], i, got, want)
				}
			} else {
				ask(n.name, n.qtype)
			}
			if m := h.stats.cacheMisses.Load() - misses; n.cached && m != 0 {
				t.Errorf("change %d: the cached negative answer to %s %s was built again", i, n.name, dns.TypeToString[n.qtype])
			}
		}
		if got := h.cache.lru.Len(); got != entries {
			t.Errorf("change %d: %d cached answers, want %d", i, got, entries)
		}
	}
}

// TestTransferRequests checks what each kind of transfer request gets.
func TestTransferRequests(t *testing.T) {
	reg := testRegistry(t, fixture, fixtureSettings)
	h := NewHandler(xfrConfig(t), reg, staticZones{parseZones(t, exampleZone)}, nil)
	serial := soaSerial(t, h)
	type result struct {
		rcode    int
		messages int
		types    string // types of the first and last answer records, "SOA SOA"
	}
	for _, tc := range []struct {
		name string
		r    request
		want result
	}{
		{"AXFR signed", request{qname: "disco.internal.", qtype: dns.TypeAXFR, signed: true}, result{dns.RcodeSuccess, 1, "SOA SOA"}},
		{"AXFR from an allowed prefix", request{qname: "disco.internal.", qtype: dns.TypeAXFR, from: "192.0.2.7"}, result{dns.RcodeSuccess, 1, "SOA SOA"}},
		{"AXFR unsigned", request{qname: "disco.internal.", qtype: dns.TypeAXFR}, result{dns.RcodeRefused, 1, ""}},
		{"AXFR of a static zone", request{qname: "example.com.", qtype: dns.TypeAXFR, signed: true}, result{dns.RcodeSuccess, 1, "SOA SOA"}},
		{"AXFR of a static zone unsigned", request{qname: "example.com.", qtype: dns.TypeAXFR}, result{dns.RcodeRefused, 1, ""}},
		{"AXFR, name case", request{qname: "DISCO.Internal.", qtype: dns.TypeAXFR, signed: true}, result{dns.RcodeSuccess, 1, "SOA SOA"}},
		{"AXFR over UDP", request{qname: "disco.internal.", qtype: dns.TypeAXFR, udp: true, signed: true}, result{dns.RcodeNotImplemented, 1, ""}},
		{"AXFR of a name inside a zone", request{qname: "service.disco.internal.", qtype: dns.TypeAXFR, signed: true}, result{dns.RcodeNotAuth, 1, ""}},
		{"AXFR of a name inside a static zone", request{qname: "www.example.com.", qtype: dns.TypeAXFR, signed: true}, result{dns.RcodeNotAuth, 1, ""}},
		{"AXFR outside every zone", request{qname: "example.org.", qtype: dns.TypeAXFR, signed: true}, result{dns.RcodeRefused, 1, ""}},
		{"IXFR up to date", request{qname: "disco.internal.", qtype: dns.TypeIXFR, serial: serial, signed: true}, result{dns.RcodeSuccess, 1, "SOA SOA"}},
		{"IXFR from the future", request{qname: "disco.internal.", qtype: dns.TypeIXFR, serial: serial + 100, signed: true}, result{dns.RcodeSuccess, 1, "SOA SOA"}},
		{"IXFR older than the journal", request{qname: "disco.internal.", qtype: dns.TypeIXFR, serial: serial - 5, signed: true}, result{dns.RcodeSuccess, 1, "SOA SOA"}},
		{"IXFR over UDP", request{qname: "disco.internal.", qtype: dns.TypeIXFR, serial: serial - 5, udp: true, signed: true}, result{dns.RcodeSuccess, 1, "SOA SOA"}},
		{"IXFR unsigned over UDP", request{qname: "disco.internal.", qtype: dns.TypeIXFR, serial: serial - 5, udp: true}, result{dns.RcodeRefused, 1, ""}},
		{"IXFR of a static zone", request{qname: "example.com.", qtype: dns.TypeIXFR, serial: 1, signed: true}, result{dns.RcodeSuccess, 1, "SOA SOA"}},
		{"AXFR with a stale signature", request{qname: "disco.internal.", qtype: dns.TypeAXFR, signed: true, at: time.Now().Add(-time.Hour)}, result{dns.RcodeNotAuth, 1, ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs := serve(t, h, tc.r)
			got := result{messages: len(msgs)}
			if len(msgs) > 0 {
				got.rcode = msgs[0].Rcode
				if rrs := records(msgs); len(rrs) > 0 {
					got.types = dns.TypeToString[rrs[0].Header().Rrtype] + " " + dns.TypeToString[rrs[len(rrs)-1].Header().Rrtype]
				}
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	// The metrics count them.
	reg2 := prometheus.NewRegistry()
	reg2.MustRegister(h.ZoneMetrics())
	mfs, err := reg2.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			if len(m.GetLabel()) > 0 {
				name += "/" + m.GetLabel()[0].GetValue()
			}
			got[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	for name, want := range map[string]float64{
		"disco_zone_serial": float64(serial), "disco_zone_transfers_total/full": 6, "disco_zone_transfers_total/soa": 3,
		"disco_zone_transfers_total/refused": 7, "disco_zone_transfers_total/incremental": 0, "disco_zone_transfers_active": 0,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}

	// The SOA alone: up to date, from the future, over UDP.
	for _, r := range []request{
		{qname: "disco.internal.", qtype: dns.TypeIXFR, serial: serial, signed: true},
		{qname: "disco.internal.", qtype: dns.TypeIXFR, serial: serial + 100, signed: true},
		{qname: "disco.internal.", qtype: dns.TypeIXFR, serial: serial - 5, udp: true, signed: true},
	} {
		if rrs := records(serve(t, h, r)); len(rrs) != 1 || rrs[0].(*dns.SOA).Serial != serial {
			t.Errorf("IXFR from %d (udp %v): %v, want the SOA alone", r.serial, r.udp, rrs)
		}
	}
}

// TestIXFR makes a series of changes and checks that the IXFR from each
// earlier serial, applied to the zone as it was, gives the zone as it is.
func TestIXFR(t *testing.T) {
	ctx := context.Background()
	reg := testRegistry(t, fixture, fixtureSettings)
	h := NewHandler(xfrConfig(t), reg, nil, nil)
	zonesAt := map[uint32][]string{soaSerial(t, h): axfr(t, h, "disco.internal.")}
	changes := []func() error{
		func() error {
			in, _ := registry.NewInstance("web", "web-4", registry.Registration{Address: "10.0.0.4", Port: 8080, Tags: []string{"v3"}})
			_, err := reg.Register(ctx, in)
			return err
		},
		func() error { return reg.Deregister(ctx, "web", "web-2") },
		func() error { _, err := reg.SetSettings(ctx, "web", registry.Settings{DNSTTL: intp(60)}); return err },
		func() error { _, err := reg.SetMaintenance(ctx, "web", "web-1", true, ""); return err },
		func() error {
			in, _ := registry.NewInstance("web", "web-2", registry.Registration{Address: "10.0.0.2", Port: 8080, Tags: []string{"v1"}})
			_, err := reg.Register(ctx, in)
			return err
		},
		func() error { _, err := reg.SetSettings(ctx, "web", registry.Settings{}); return err },
	}
	for i, change := range changes {
		if err := change(); err != nil {
			t.Fatal(err)
		}
		serial := soaSerial(t, h)
		zonesAt[serial] = axfr(t, h, "disco.internal.")
		for from, old := range zonesAt {
			if from == serial {
				continue
			}
			msgs := serve(t, h, request{qname: "disco.internal.", qtype: dns.TypeIXFR, serial: from, signed: true})
			rrs := records(msgs)
			if len(rrs) < 3 || rrs[1].Header().Rrtype != dns.TypeSOA {
				t.Fatalf("change %d: IXFR from %d is not incremental: %v", i, from, rrs)
			}
			got := applyIXFR(t, old, rrs)
			if want := zonesAt[serial]; strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("change %d: IXFR from %d gives\n%s\nwant\n%s", i, from, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if n, full := len(rrs), len(zonesAt[serial]); n >= full {
				t.Errorf("change %d: IXFR from %d has %d records, the zone %d", i, from, n, full)
			}
		}
	}
}

// applyIXFR applies an IXFR response (RFC 1995: new SOA, then pairs of
// old SOA + deletions and new SOA + additions, then new SOA) to a zone
// given as sorted record strings (SOA included) and returns the result.
func applyIXFR(t *testing.T, zone []string, rrs []dns.RR) []string {
	t.Helper()
	have := map[string]bool{}
	for _, l := range zone {
		rr, _ := dns.NewRR(l)
		if rr.Header().Rrtype != dns.TypeSOA {
			have[rr.String()] = true
		}
	}
	newSOA := rrs[0]
	adding := true // the old SOA that comes next starts the deletions
	for _, rr := range rrs[1 : len(rrs)-1] {
		if rr.Header().Rrtype == dns.TypeSOA {
			adding = !adding
			continue
		}
		if adding {
			have[rr.String()] = true
		} else {
			if !have[rr.String()] {
				t.Errorf("IXFR deletes %s, which the zone does not hold", rr)
			}
			delete(have, rr.String())
		}
	}
	out := []string{newSOA.String()}
	for k := range have {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestJournalBounds: the journal keeps at most its bounds; older serials
// get the whole zone.
func TestJournalBounds(t *testing.T) {
	ctx := context.Background()
	reg := testRegistry(t, fixture, nil)
	cfg := xfrConfig(t)
	cfg.JournalVersions = 3
	h := NewHandler(cfg, reg, nil, nil)
	first := soaSerial(t, h)
	for i := range 5 {
		in, _ := registry.NewInstance("web", fmt.Sprintf("x-%d", i), registry.Registration{Address: fmt.Sprintf("10.7.0.%d", i+1), Port: 80})
		if _, err := reg.Register(ctx, in); err != nil {
			t.Fatal(err)
		}
		soaSerial(t, h)
	}
	if v, _ := h.zone.journal.len(); v != 3 {
		t.Errorf("journal holds %d versions, want 3", v)
	}
	for from, incremental := range map[uint32]bool{first: false, first + 1: false, first + 2: true, first + 4: true} {
		rrs := records(serve(t, h, request{qname: "disco.internal.", qtype: dns.TypeIXFR, serial: from, signed: true}))
		if got := len(rrs) > 1 && rrs[1].Header().Rrtype == dns.TypeSOA; got != incremental {
			t.Errorf("IXFR from %d: incremental %v, want %v", from, got, incremental)
		}
	}
	// One change larger than the whole journal empties it.
	j := &journal{maxVersions: 10, maxBytes: 1000}
	big := make([]dns.RR, 50)
	for i := range big {
		big[i], _ = dns.NewRR(fmt.Sprintf("a%d.disco.internal. 5 IN A 10.0.0.1", i))
	}
	j.add(1, 2, nil, big[:1])
	j.add(2, 3, nil, big)
	if v, b := j.len(); v != 0 || b != 0 {
		t.Errorf("after an oversized change: %d versions, %d bytes", v, b)
	}
}

// TestLargeZoneStreams: a zone larger than one message goes in several,
// every one signed in the chain, with every record once.
func TestLargeZoneStreams(t *testing.T) {
	ctx := context.Background()
	reg := registry.New(registry.Config{})
	for i := range 2000 {
		in, err := registry.NewInstance(fmt.Sprintf("svc-%d", i%50), fmt.Sprintf("i-%d", i),
			registry.Registration{Address: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Port: 80, Meta: map[string]string{"k": "v"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Register(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	h := NewHandler(xfrConfig(t), reg, nil, nil)
	msgs := serve(t, h, request{qname: "disco.internal.", qtype: dns.TypeAXFR, signed: true})
	if len(msgs) < 5 {
		t.Fatalf("%d messages, want several", len(msgs))
	}
	for i, m := range msgs {
		if n, _ := m.Pack(); len(n) > dns.MaxMsgSize {
			t.Errorf("message %d has %d bytes", i, len(n))
		}
	}
	rrs := records(msgs)
	// The service's name and its two RFC 2782 forms: A and SRV each; the
	// instance's name: A, SRV, TXT; its address: A; DNS-SD: the PTR to
	// the instance, its SRV and TXT. Plus SOA, NS, glue, SOA, the 50
	// services' PTR of the service type enumeration and the browsing
	// domain's PTR.
	if want := 2000*(6+3+1+3) + 4 + 50 + 1; len(rrs) != want {
		t.Errorf("%d records, want %d", len(rrs), want)
	}
}

// TestConcurrentTransfers: IXFRs, AXFRs and queries at once while the
// registry changes, for the race detector: journal records, zone records
// and snapshots are shared between them and never written.
func TestConcurrentTransfers(t *testing.T) {
	ctx := context.Background()
	reg := testRegistry(t, fixture, fixtureSettings)
	h := NewHandler(xfrConfig(t), reg, staticZones{parseZones(t, exampleZone, domainZone)}, nil)
	first := soaSerial(t, h)
	for i := range 5 {
		in, _ := registry.NewInstance("web", fmt.Sprintf("c-%d", i), registry.Registration{Address: fmt.Sprintf("10.6.0.%d", i+1), Port: 80})
		if _, err := reg.Register(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			in, _ := registry.NewInstance("churn", fmt.Sprintf("x-%d", i), registry.Registration{Address: fmt.Sprintf("10.5.0.%d", i+1), Port: 80})
			if _, err := reg.Register(ctx, in); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 5 {
				switch (i + j) % 3 {
				case 0:
					serve(t, h, request{qname: "disco.internal.", qtype: dns.TypeIXFR, serial: first + uint32(j), signed: true})
				case 1:
					serve(t, h, request{qname: "disco.internal.", qtype: dns.TypeAXFR, signed: true})
				default:
					serve(t, h, request{qname: "example.com.", qtype: dns.TypeAXFR, signed: true})
					soaSerial(t, h)
				}
			}
		})
	}
	wg.Wait()
	<-done
}
