package zones

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

var sinkResult Result

func BenchmarkLookup(b *testing.B) {
	s := fixtureSet(b)
	for _, bc := range []struct {
		name  string
		qname string
		qtype uint16
	}{
		{"exact", "www.example.com.", dns.TypeA},
		{"apex NS with glue", "example.com.", dns.TypeNS},
		{"nodata", "www.example.com.", dns.TypeTXT},
		{"nxdomain", "nope.example.com.", dns.TypeA},
		{"ent", "b.ent.example.com.", dns.TypeA},
		{"cname chain", "chain.example.com.", dns.TypeA},
		{"cname other zone", "net.example.com.", dns.TypeA},
		{"cname loop", "loop1.example.com.", dns.TypeA},
		{"wildcard", "foo.wild.example.com.", dns.TypeA},
		{"referral", "host.sub.example.com.", dns.TypeA},
		{"child zone", "www.child.example.com.", dns.TypeA},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res, ok := s.Lookup(bc.qname, bc.qtype)
				if !ok {
					b.Fatal("not found")
				}
				sinkResult = res
			}
		})
	}
}

// BenchmarkLookupLargeZone looks names up in a zone of 100 000 names.
func BenchmarkLookupLargeZone(b *testing.B) {
	var src strings.Builder
	src.WriteString("$ORIGIN example.com.\n$TTL 300\n" + minimal)
	const n = 100_000
	for i := range n {
		fmt.Fprintf(&src, "host%d.rack%d IN A 10.%d.%d.%d\n", i, i%100, i>>16&255, i>>8&255, i&255)
	}
	z, err := Parse(strings.NewReader(src.String()), "", "big.zone", Options{})
	if err != nil {
		b.Fatal(err)
	}
	s, _ := NewSet(z)
	names := make([]string, 1024)
	for i := range names {
		j := i * 97 % n
		names[i] = fmt.Sprintf("host%d.rack%d.example.com.", j, j%100)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		res, _ := s.Lookup(names[i%len(names)], dns.TypeA)
		if len(res.Answer) != 1 {
			b.Fatal("no answer")
		}
		sinkResult = res
		i++
	}
}

func BenchmarkFind(b *testing.B) {
	s := fixtureSet(b)
	b.ReportAllocs()
	for b.Loop() {
		if s.Find("deep.www.child.example.com.") == nil {
			b.Fatal("not found")
		}
	}
}

func BenchmarkParseFile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseFile(fixtures+"/example.com.zone", discoReserved); err != nil {
			b.Fatal(err)
		}
	}
}
