package dnsserver

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"disco/registry"
	"disco/tsig"
)

const (
	testZone      = "disco.internal."
	updKey        = "upd."
	updSecret     = "c2VjcmV0LW9mLXRoZS11cGRhdGUta2V5LTAxMjM0NTY3ODk="
	xfrKey        = "xfr."
	xfrSecret     = "c2VjcmV0LW9mLXRoZS10cmFuc2Zlci1rZXktMDEyMzQ1Njc="
	strangerKey   = "stranger."
	wrongSecret   = "YW5vdGhlci1zZWNyZXQtZm9yLXRoZS1zYW1lLW5hbWUtMDA="
	instanceZone  = "instance.disco.internal."
	mappingSuffix = `UPDATE writes only <id>.<service>.instance.disco.internal.: A or AAAA (address), SRV (port, priority, weight; target the same name), TXT "key=value" (meta)`
)

// updateHandler returns a handler that takes updates signed with upd into
// reg; xfr is a known key that may not update.
func updateHandler(t testing.TB, reg *registry.Registry, cfg Config) *Handler {
	t.Helper()
	var keys []*tsig.Key
	for _, k := range [][2]string{{updKey, updSecret}, {xfrKey, xfrSecret}} {
		key, err := tsig.NewKey(k[0], "hmac-sha256", k[1])
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	ring, err := tsig.NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	cfg.TSIG = ring
	h := NewHandler(cfg, reg, nil, nil)
	h.EnableUpdates(UpdateConfig{Registry: reg, Allow: []string{updKey}})
	return h
}

// signed packs m signed with key and secret ("" key: unsigned).
func signed(t testing.TB, m *dns.Msg, key, secret string) []byte {
	t.Helper()
	if key == "" {
		wire, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return wire
	}
	m.SetTsig(key, dns.HmacSHA256, 300, time.Now().Unix())
	wire, _, err := dns.TsigGenerate(m, secret, "", false)
	if err != nil {
		t.Fatal(err)
	}
	return wire
}

func rrs(t testing.TB, lines ...string) []dns.RR {
	t.Helper()
	var out []dns.RR
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, rr)
	}
	return out
}

// renderRegistry lists every instance as "service/id addr:port pP wW k=v,...".
func renderRegistry(s *registry.Snapshot) string {
	var lines []string
	for _, svc := range s.Services() {
		for _, in := range svc.Instances() {
			var meta []string
			for _, k := range slices.Sorted(maps.Keys(in.Meta)) {
				meta = append(meta, k+"="+in.Meta[k])
			}
			lines = append(lines, fmt.Sprintf("%s/%s %s p%d w%d %s", in.Service, in.ID,
				netip.AddrPortFrom(in.Address, in.Port), in.Priority, in.Weight, strings.Join(meta, ",")))
		}
	}
	return strings.Join(lines, "\n")
}

// TestUpdate sends UPDATEs one after another to one registry and checks
// each answer's rcode and Extended DNS Error, and the registry after it:
// a refused UPDATE changes nothing.
func TestUpdate(t *testing.T) {
	I := instanceZone
	type step struct {
		name  string
		key   string // "upd" (default), "xfr", "none", "stranger", "wrong"
		build func(m *dns.Msg)
		zone  string
		rcode int
		ede   string // the EDE text; "" for none
		want  string // renderRegistry after the step
	}
	add := func(lines ...string) func(*dns.Msg) {
		return func(m *dns.Msg) { m.Insert(rrs(t, lines...)) }
	}
	db1 := "db/db-1 10.0.0.21:5432 p2 w7 role=primary"
	steps := []step{
		{name: "register", build: add(
			"db-1.db."+I+" 60 A 10.0.0.21",
			"db-1.db."+I+" 60 SRV 2 7 5432 db-1.db."+I,
			"db-1.db."+I+` 60 TXT "role=primary"`),
			want: db1},
		{name: "unsigned", key: "none", build: add("rogue-1.rogue."+I+" 60 A 10.0.0.66", "rogue-1.rogue."+I+" 60 SRV 1 1 80 rogue-1.rogue."+I),
			rcode: dns.RcodeRefused, ede: "UPDATE of disco.internal. must be signed (TSIG) with a key allowed by --update-allow", want: db1},
		{name: "key not allowed", key: "xfr", build: add("rogue-1.rogue."+I+" 60 A 10.0.0.66", "rogue-1.rogue."+I+" 60 SRV 1 1 80 rogue-1.rogue."+I),
			rcode: dns.RcodeRefused, ede: "key xfr. may not update disco.internal. (it is not in --update-allow)", want: db1},
		{name: "unknown key", key: "stranger", build: add("rogue-1.rogue." + I + " 60 A 10.0.0.66"), rcode: dns.RcodeNotAuth, want: db1},
		{name: "wrong secret", key: "wrong", build: add("rogue-1.rogue." + I + " 60 A 10.0.0.66"), rcode: dns.RcodeNotAuth, want: db1},
		{name: "another zone", zone: "example.com.", build: add("www.example.com. 60 A 10.0.0.1"),
			rcode: dns.RcodeNotAuth, ede: "disco is not authoritative for zone example.com.; updates go to disco.internal.", want: db1},
		{name: "a name under the zone as zone", zone: "instance.disco.internal.", build: add("x.y." + I + " 60 A 10.0.0.1"),
			rcode: dns.RcodeNotAuth, ede: "disco is not authoritative for zone instance.disco.internal.; updates go to disco.internal.", want: db1},
		{name: "a served reverse zone", zone: "10.in-addr.arpa.", build: add("1.0.0.10.in-addr.arpa. 60 PTR x."),
			rcode: dns.RcodeRefused, ede: "zone 10.in-addr.arpa. is served but not updatable: only disco.internal. takes updates", want: db1},
		{name: "name outside the zone", build: add("www.example.com. 60 A 10.0.0.1"),
			rcode: dns.RcodeNotZone, ede: "update name www.example.com. is outside zone disco.internal.", want: db1},
		{name: "address only", build: add("cache-1.cache." + I + " 60 A 10.0.0.31"),
			rcode: dns.RcodeRefused, ede: "cache-1.cache.instance.disco.internal.: a registration needs one address (A or AAAA) and one SRV; this UPDATE leaves it 1 address and no SRV", want: db1},
		{name: "SRV only", build: add("cache-2.cache." + I + " 60 SRV 1 1 6379 cache-2.cache." + I),
			rcode: dns.RcodeRefused, ede: "cache-2.cache.instance.disco.internal.: a registration needs one address (A or AAAA) and one SRV; this UPDATE leaves it no address and 1 SRV", want: db1},
		{name: "SRV to another target", build: add("cache-2.cache."+I+" 60 A 10.0.0.32", "cache-2.cache."+I+" 60 SRV 1 1 6379 host.example."),
			rcode: dns.RcodeRefused, ede: "the SRV target of cache-2.cache.instance.disco.internal. must be the same name (its A or AAAA give the address), not host.example.", want: db1},
		{name: "a service name", build: add("x.service.disco.internal. 60 A 10.0.0.99"),
			rcode: dns.RcodeRefused, ede: "x.service.disco.internal. is not an instance name: " + mappingSuffix, want: db1},
		{name: "the apex", build: add("disco.internal. 60 MX 10 mail.example."),
			rcode: dns.RcodeRefused, ede: "disco.internal. is not an instance name: " + mappingSuffix, want: db1},
		{name: "another type", build: add("db-1.db." + I + " 60 MX 10 mail.example."),
			rcode: dns.RcodeRefused, ede: "MX records are not part of a registration: " + mappingSuffix, want: db1},
		{name: "invalid label, all or nothing", build: func(m *dns.Msg) {
			m.RemoveName([]dns.RR{at("db-1.db."+I, dns.TypeANY)})
			m.Insert(rrs(t, "db-4.db."+I+" 60 A 10.0.0.24", "db-4.db."+I+" 60 SRV 1 1 5432 db-4.db."+I,
				"bad_id.db."+I+" 60 A 10.0.0.25", "bad_id.db."+I+" 60 SRV 1 1 5432 bad_id.db."+I))
		}, rcode: dns.RcodeRefused,
			ede: `bad_id.db.instance.disco.internal.: invalid: instance id "bad_id" must be lower-case letters, digits and inner hyphens (one DNS label)`, want: db1},
		{name: "one of two incomplete, all or nothing", build: add(
			"db-5.db."+I+" 60 A 10.0.0.26", "db-5.db."+I+" 60 SRV 1 1 5432 db-5.db."+I, "db-6.db."+I+" 60 A 10.0.0.27"),
			rcode: dns.RcodeRefused, ede: "db-6.db.instance.disco.internal.: a registration needs one address (A or AAAA) and one SRV; this UPDATE leaves it 1 address and no SRV", want: db1},
		{name: "two addresses", build: add("db-1.db." + I + " 60 A 10.0.0.22"),
			rcode: dns.RcodeRefused, ede: "db-1.db.instance.disco.internal.: a registration needs one address (A or AAAA) and one SRV; this UPDATE leaves it 2 addresses and 1 SRV", want: db1},
		{name: "port zero", build: add("p-1.p."+I+" 60 A 10.0.0.40", "p-1.p."+I+" 60 SRV 1 1 0 p-1.p."+I),
			rcode: dns.RcodeRefused, ede: "p-1.p.instance.disco.internal.: invalid: port 0 is out of range 1-65535", want: db1},
		{name: "TXT that is not key=value", build: add("db-1.db." + I + ` 60 TXT "flag"`),
			rcode: dns.RcodeRefused, ede: `db-1.db.instance.disco.internal.: TXT string "flag" is not key=value (the meta of the instance)`, want: db1},
		{name: "a meta key set twice", build: add("db-1.db." + I + ` 60 TXT "role=replica"`),
			rcode: dns.RcodeRefused, ede: `db-1.db.instance.disco.internal.: meta key "role" is already set (TXT "role=primary"); delete that record in the same UPDATE to change it`, want: db1},
		{name: "a bad meta key", build: add("db-1.db." + I + ` 60 TXT "a b=c"`),
			rcode: dns.RcodeRefused, ede: `db-1.db.instance.disco.internal.: invalid: meta key "a b" may hold only letters, digits, '-', '_' and '.'`, want: db1},
		{name: "too much meta", build: func(m *dns.Msg) {
			txt := &dns.TXT{Hdr: dns.RR_Header{Name: "db-1.db." + I, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}}
			for i := range 65 {
				txt.Txt = append(txt.Txt, fmt.Sprintf("k%d=%s", i, strings.Repeat("v", 200)))
			}
			m.Insert([]dns.RR{txt})
		}, rcode: dns.RcodeRefused, ede: "db-1.db.instance.disco.internal.: invalid: 66 meta keys given, at most 64 allowed", want: db1},
		{name: "too many records", build: func(m *dns.Msg) {
			for i := range 1000 {
				m.Insert(rrs(t, fmt.Sprintf("n-%d.many.%s 60 A 10.1.%d.%d", i, I, i/250, i%250+1)))
			}
		}, rcode: dns.RcodeRefused, ede: "UPDATE carries 1000 records, at most 500 are allowed in one message: split it", want: db1},
		// Prerequisites (RFC 2136 section 2.4).
		{name: "prereq nxdomain fails", build: func(m *dns.Msg) {
			m.NameNotUsed([]dns.RR{at("db-1.db."+I, dns.TypeANY)})
			add("db-2.db."+I+" 60 A 10.0.0.22", "db-2.db."+I+" 60 SRV 1 1 5432 db-2.db."+I)(m)
		}, rcode: dns.RcodeYXDomain, ede: "prerequisite failed: db-1.db.instance.disco.internal. exists", want: db1},
		{name: "prereq yxdomain fails", build: func(m *dns.Msg) {
			m.NameUsed([]dns.RR{at("db-9.db."+I, dns.TypeANY)})
			add("db-1.db." + I + ` 60 TXT "zone=a"`)(m)
		}, rcode: dns.RcodeNameError, ede: "prerequisite failed: db-9.db.instance.disco.internal. does not exist", want: db1},
		{name: "prereq yxrrset fails", build: func(m *dns.Msg) {
			m.RRsetUsed([]dns.RR{at("db-1.db."+I, dns.TypeAAAA)})
		}, rcode: dns.RcodeNXRrset, ede: "prerequisite failed: db-1.db.instance.disco.internal. has no AAAA records", want: db1},
		{name: "prereq nxrrset fails", build: func(m *dns.Msg) {
			m.RRsetNotUsed([]dns.RR{at("db-1.db."+I, dns.TypeSRV)})
		}, rcode: dns.RcodeYXRrset, ede: "prerequisite failed: db-1.db.instance.disco.internal. has SRV records", want: db1},
		{name: "value-dependent prereq fails", build: func(m *dns.Msg) {
			m.Used(rrs(t, "db-1.db."+I+" 0 A 10.0.0.99"))
		}, rcode: dns.RcodeNXRrset, ede: "prerequisite failed: the A records of db-1.db.instance.disco.internal. differ", want: db1},
		{name: "prereq outside the zone", build: func(m *dns.Msg) {
			m.NameUsed([]dns.RR{at("www.example.com.", dns.TypeANY)})
		}, rcode: dns.RcodeNotZone, ede: "prerequisite name www.example.com. is outside zone disco.internal.", want: db1},
		{name: "prereq with a TTL", build: func(m *dns.Msg) {
			rr := []dns.RR{at("db-1.db."+I, dns.TypeANY)}
			m.NameUsed(rr)
			m.Answer[0].Header().Ttl = 5
		}, rcode: dns.RcodeFormatError, ede: "prerequisite db-1.db.instance.disco.internal. has TTL 5; prerequisites carry TTL 0", want: db1},
		{name: "prereqs hold: yxdomain, value-dependent SRV and A, service name in use", build: func(m *dns.Msg) {
			m.NameUsed([]dns.RR{at("db-1.db."+I, dns.TypeANY), at("db.service.disco.internal.", dns.TypeANY)})
			m.Used(rrs(t, "db-1.db."+I+" 0 SRV 2 7 5432 db-1.db."+I, "db-1.db."+I+" 0 A 10.0.0.21",
				"db.service.disco.internal. 0 A 10.0.0.21"))
			m.NameNotUsed([]dns.RR{at("service.disco.internal.", dns.TypeANY)})
			add("db-1.db." + I + ` 60 TXT "zone=a"`)(m)
		}, want: db1 + ",zone=a"},
		// Changes to a registered instance.
		{name: "change the address and the meta", build: func(m *dns.Msg) {
			m.RemoveRRset([]dns.RR{at("db-1.db."+I, dns.TypeA)})
			m.Remove(rrs(t, "db-1.db."+I+` 0 TXT "zone=a"`))
			add("db-1.db."+I+" 60 A 10.0.0.23", "db-1.db."+I+` 60 TXT "zone=b" "back=a\\b"`)(m)
		}, want: `db/db-1 10.0.0.23:5432 p2 w7 back=a\b,role=primary,zone=b`},
		{name: "move to IPv6 and another port", build: func(m *dns.Msg) {
			m.Remove(rrs(t, "db-1.db."+I+" 0 A 10.0.0.23", "db-1.db."+I+" 0 SRV 2 7 5432 db-1.db."+I))
			add("db-1.db."+I+" 60 AAAA fd00::21", "db-1.db."+I+" 60 SRV 3 4 6432 db-1.db."+I)(m)
		}, want: `db/db-1 [fd00::21]:6432 p3 w4 back=a\b,role=primary,zone=b`},
		{name: "an IPv4-mapped AAAA", build: func(m *dns.Msg) {
			m.RemoveRRset([]dns.RR{at("db-1.db."+I, dns.TypeAAAA)})
			add("db-1.db." + I + " 60 AAAA ::ffff:10.0.0.1")(m)
		}, rcode: dns.RcodeRefused, ede: "db-1.db.instance.disco.internal.: AAAA ::ffff:10.0.0.1 is an IPv4-mapped address; give it as an A record",
			want: `db/db-1 [fd00::21]:6432 p3 w4 back=a\b,role=primary,zone=b`},
		{name: "two instances at once, case folded", build: add(
			"Web-1.WEB."+I+" 60 A 10.0.0.1", "web-1.web."+I+" 60 SRV 1 1 8080 WEB-1.web."+I,
			"web-2.web."+I+" 60 A 10.0.0.2", "web-2.web."+I+" 60 SRV 1 1 8080 web-2.web."+I),
			want: `db/db-1 [fd00::21]:6432 p3 w4 back=a\b,role=primary,zone=b` + "\nweb/web-1 10.0.0.1:8080 p1 w1 \nweb/web-2 10.0.0.2:8080 p1 w1 "},
		{name: "deregister one, keep the other; deleting an absent name is no error", build: func(m *dns.Msg) {
			m.RemoveName([]dns.RR{at("db-1.db."+I, dns.TypeANY), at("nope-1.nope."+I, dns.TypeANY)})
		}, want: "web/web-1 10.0.0.1:8080 p1 w1 \nweb/web-2 10.0.0.2:8080 p1 w1 "},
		{name: "deleting every RRset one by one deregisters", build: func(m *dns.Msg) {
			m.RemoveRRset([]dns.RR{at("web-2.web."+I, dns.TypeA), at("web-2.web."+I, dns.TypeSRV), at("web-2.web."+I, dns.TypeTXT)})
		}, want: "web/web-1 10.0.0.1:8080 p1 w1 "},
		{name: "an UPDATE that changes nothing", build: add("web-1.web." + I + " 60 A 10.0.0.1"), want: "web/web-1 10.0.0.1:8080 p1 w1 "},
	}
	reg := testRegistry(t, nil, nil)
	h := updateHandler(t, reg, reverseConfig("10.0.0.0/8"))
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetUpdate(cmp.Or(st.zone, testZone))
			st.build(m)
			m.SetEdns0(1232, false)
			key, secret := updKey, updSecret
			switch st.key {
			case "none":
				key = ""
			case "xfr":
				key, secret = xfrKey, xfrSecret
			case "stranger":
				key = strangerKey
			case "wrong":
				secret = wrongSecret
			}
			before := reg.Snapshot()
			wire := signed(t, m, key, secret)
			out := h.serveUDP(wire, netip.AddrPort{}, newScratch())
			var resp dns.Msg
			if err := resp.Unpack(out); err != nil {
				t.Fatalf("answer does not parse: %v", err)
			}
			if resp.Rcode != st.rcode || resp.Id != m.Id || !resp.Response || resp.Opcode != dns.OpcodeUpdate {
				t.Errorf("rcode %s id %d opcode %d, want %s id %d opcode UPDATE", dns.RcodeToString[resp.Rcode], resp.Id, resp.Opcode,
					dns.RcodeToString[st.rcode], m.Id)
			}
			got := ""
			if e := findEDE(&resp); e != nil {
				got = e.ExtraText
			}
			if got != st.ede {
				t.Errorf("EDE %q\nwant %q", got, st.ede)
			}
			if got := renderRegistry(reg.Snapshot()); got != st.want {
				t.Errorf("registry:\n%s\nwant\n%s", got, st.want)
			}
			if st.rcode != dns.RcodeSuccess && reg.Snapshot() != before {
				t.Errorf("a refused UPDATE published a new snapshot")
			}
			// The answer to a validly signed request is signed.
			if key != "" && (st.key == "" || st.key == "xfr") {
				if resp.IsTsig() == nil {
					t.Fatal("answer to a signed UPDATE is not signed")
				}
				var sent dns.Msg
				if err := sent.Unpack(wire); err != nil {
					t.Fatal(err)
				}
				// miekg/dns takes every NOTAUTH for a TSIG failure and
				// verifies none (the end-to-end tests verify them with
				// nsupdate).
				if resp.Rcode == dns.RcodeNotAuth {
					return
				}
				if err := dns.TsigVerify(out, secret, sent.IsTsig().MAC, false); err != nil {
					t.Errorf("answer's TSIG does not verify: %v", err)
				}
			}
		})
	}
}

// TestUpdateVisible: what an UPDATE registers is answered by DNS at once,
// under every name: service, RFC 2782, instance, reverse and DNS-SD.
func TestUpdateVisible(t *testing.T) {
	reg := testRegistry(t, nil, nil)
	h := updateHandler(t, reg, reverseConfig("10.0.0.0/8"))
	I := instanceZone
	m := new(dns.Msg)
	m.SetUpdate(testZone)
	m.Insert(rrs(t, "db-1.db."+I+" 60 A 10.0.0.21", "db-1.db."+I+" 60 SRV 2 7 5432 db-1.db."+I, "db-1.db."+I+` 60 TXT "role=primary"`))
	if out := h.serveUDP(signed(t, m, updKey, updSecret), netip.AddrPort{}, newScratch()); out == nil || out[3]&0xf != 0 {
		t.Fatalf("update answered %x", out)
	}
	checkAnswers(t, h, []answerCase{
		{qname: "db.service.disco.internal.", qtype: dns.TypeA, answer: []string{"db.service.disco.internal. 5 IN A 10.0.0.21"}},
		{qname: "_db._tcp.service.disco.internal.", qtype: dns.TypeSRV,
			answer: []string{"_db._tcp.service.disco.internal. 5 IN SRV 2 7 5432 0a000015.addr.disco.internal."},
			extra:  []string{"0a000015.addr.disco.internal. 5 IN A 10.0.0.21"}},
		{qname: "db-1.db." + I, qtype: dns.TypeTXT, answer: []string{`db-1.db.instance.disco.internal. 5 IN TXT "role=primary"`}},
		{qname: "21.0.0.10.in-addr.arpa.", qtype: dns.TypePTR, answer: []string{"21.0.0.10.in-addr.arpa. 5 IN PTR db-1.db.instance.disco.internal."}},
		{qname: "db-1._db._tcp.service.disco.internal.", qtype: dns.TypeTXT, answer: []string{`db-1._db._tcp.service.disco.internal. 5 IN TXT "role=primary"`}},
	})
}

// TestUpdateKeepsRegistration: an UPDATE of an instance registered with
// tags and checks keeps them.
func TestUpdateKeepsRegistration(t *testing.T) {
	reg := testRegistry(t, []fixtureInstance{{service: "web", id: "web-1", addr: "10.0.0.1", port: 80, tags: []string{"v1"}, checks: true}}, nil)
	h := updateHandler(t, reg, testConfig())
	m := new(dns.Msg)
	m.SetUpdate(testZone)
	m.Insert(rrs(t, "web-1.web."+instanceZone+` 60 TXT "zone=a"`))
	out := h.serveUDP(signed(t, m, updKey, updSecret), netip.AddrPort{}, newScratch())
	if out == nil || out[3]&0xf != 0 {
		t.Fatalf("update answered %x", out)
	}
	in, _ := reg.Snapshot().Instance("web", "web-1")
	if !slices.Equal(in.Tags, []string{"v1"}) || len(in.Checks) != 1 || in.Meta["zone"] != "a" {
		t.Fatalf("instance after the update: tags %v checks %v meta %v", in.Tags, in.Checks, in.Meta)
	}
}

// TestUpdateStoreFailure: an UPDATE the store cannot make durable is
// answered SERVFAIL and changes nothing.
func TestUpdateStoreFailure(t *testing.T) {
	reg := registry.New(registry.Config{Store: failingStore{}})
	h := updateHandler(t, reg, testConfig())
	m := new(dns.Msg)
	m.SetUpdate(testZone)
	m.SetEdns0(1232, false)
	m.Insert(rrs(t, "a-1.a."+instanceZone+" 60 A 10.0.0.1", "a-1.a."+instanceZone+" 60 SRV 1 1 80 a-1.a."+instanceZone))
	out := h.serveUDP(signed(t, m, updKey, updSecret), netip.AddrPort{}, newScratch())
	var resp dns.Msg
	if err := resp.Unpack(out); err != nil {
		t.Fatal(err)
	}
	if resp.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
	if e := findEDE(&resp); e == nil || !strings.Contains(e.ExtraText, "could not store") {
		t.Errorf("EDE %v, want one saying the update was not stored", e)
	}
	if _, n := reg.Snapshot().Len(); n != 0 {
		t.Errorf("%d instances after a failed commit", n)
	}
}

// failingStore is a registry store whose commits fail, as a full disk's
// would.
type failingStore struct{}

func (failingStore) Load(context.Context) (*registry.State, error) { return &registry.State{}, nil }
func (failingStore) Commit(context.Context, []registry.Change) error {
	return fmt.Errorf("write journal: no space left on device")
}

// at is a record with only an owner name and a type, for the update and
// prerequisite forms that carry no data.
func at(name string, t uint16) dns.RR {
	return &dns.ANY{Hdr: dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET}}
}
