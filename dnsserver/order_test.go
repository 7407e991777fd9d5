package dnsserver

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestCNAMEChainOrder asks for names whose answer is a CNAME chain, many
// times over each path, and requires the chain in order in every answer
// (RFC 1034 section 4.3.2) while the records of one RRset still come in
// every order.
func TestCNAMEChainOrder(t *testing.T) {
	h := NewHandler(testConfig(), testRegistry(t, fixture, nil), staticZones{parseZones(t, exampleZone)}, nil)
	tests := []struct {
		qname  string
		chain  []string // owner and type of each RRset, in order
		spread int      // how many records of the last RRset take turns first
	}{
		{"alias.example.com.", []string{"alias.example.com. CNAME", "www.example.com. A"}, 1},
		{"web.example.com.", []string{"web.example.com. CNAME", "web.service.disco.internal. A"}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.qname, func(t *testing.T) {
			req := new(dns.Msg)
			req.SetQuestion(tc.qname, dns.TypeA)
			check := func(path string, m *dns.Msg, firsts map[string]bool) {
				t.Helper()
				var sets []string
				for i, rr := range m.Answer {
					h := rr.Header()
					set := strings.ToLower(h.Name) + " " + dns.TypeToString[h.Rrtype]
					if i == 0 || sets[len(sets)-1] != set {
						sets = append(sets, set)
						if len(sets) == len(tc.chain) {
							firsts[rr.String()] = true
						}
					}
				}
				if strings.Join(sets, ", ") != strings.Join(tc.chain, ", ") {
					t.Fatalf("%s: RRsets %q, want %q:\n%v", path, sets, tc.chain, m.Answer)
				}
			}
			firsts := map[string]bool{}
			for range 200 {
				check("Respond", h.Respond(req, true), firsts)
			}
			if len(firsts) != tc.spread {
				t.Errorf("Respond: first records of the last RRset over 200 answers: %v, want %d different", firsts, tc.spread)
			}
			// The UDP path: every variant cached, then many answers.
			s := newScratch()
			fastQuery(t, h, s, req)
			pkt, _ := req.Pack()
			m, _ := readMessage(pkt)
			key, ok := appendKey(pkt, &m, nil, false)
			c, hit := h.cache.get(key)
			if !ok || !hit {
				t.Fatalf("answer not cached (key %v, hit %v)", ok, hit)
			}
			firsts = map[string]bool{}
			for i, v := range c.variants {
				m := new(dns.Msg)
				if err := m.Unpack(v); err != nil {
					t.Fatal(err)
				}
				check("cached variant "+string(rune('0'+i)), m, firsts)
			}
			if len(firsts) != tc.spread {
				t.Errorf("cached variants: first records of the last RRset %v, want %d different", firsts, tc.spread)
			}
			for range 100 {
				check("UDP path", fastQuery(t, h, s, req), map[string]bool{})
			}
		})
	}
}

// TestRRsetOrder checks shuffling and rotation on several RRsets.
func TestRRsetOrder(t *testing.T) {
	var rrs []dns.RR
	for _, s := range []string{
		"a.example. 5 IN CNAME b.example.",
		"b.example. 5 IN CNAME c.example.",
		"c.example. 5 IN A 192.0.2.1", "C.example. 5 IN A 192.0.2.2", "c.example. 5 IN A 192.0.2.3",
		"c.example. 5 IN AAAA 2001:db8::1",
		"c.example. 5 IN A 192.0.2.4",
	} {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		rrs = append(rrs, rr)
	}
	if n := longestRRset(rrs); n != 3 {
		t.Errorf("longest RRset %d, want 3", n)
	}
	pos := func(rrs []dns.RR) string {
		var b strings.Builder
		for _, rr := range rrs {
			switch r := rr.(type) {
			case *dns.CNAME:
				b.WriteString(r.Target[:1])
			case *dns.A:
				b.WriteByte('0' + r.A.To4()[3])
			case *dns.AAAA:
				b.WriteByte('6')
			}
		}
		return b.String()
	}
	for k, want := range []string{"bc12364", "bc23164", "bc31264", "bc12364"} {
		if got := pos(rotateRRsets(rrs, k)); got != want {
			t.Errorf("rotate by %d: %s, want %s", k, got, want)
		}
	}
	seen := map[string]bool{}
	for range 300 {
		c := append([]dns.RR(nil), rrs...)
		shuffleRRsets(c)
		p := pos(c)
		if p[:2] != "bc" || p[5:] != "64" {
			t.Fatalf("shuffle moved records between RRsets: %s", p)
		}
		seen[p] = true
	}
	if len(seen) != 6 {
		t.Errorf("shuffles seen %v, want all 6 orders of the A RRset", seen)
	}
}
