package zones

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/miekg/dns"
)

var fuzzErrLine = regexp.MustCompile(`^fuzz\.zone:([0-9]+): \S`)

// FuzzParse loads arbitrary zone text. Loading must never panic; every
// error must name the file and a line of it; a zone that loads must answer
// for its apex and every name it holds without panicking.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(fixtures, "*.zone"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte(minimal))
	f.Add([]byte("@ SOA ns hm 1 1 1 1 1\n@ NS ns\nns A 192.0.2.1\n*.w CNAME w\nw.x NS ns\n"))
	f.Add([]byte("$ORIGIN .\n@ SOA ns. hm. 1 1 1 1 1\n@ NS ns.\nns. A 192.0.2.1\n"))
	f.Add([]byte("$GENERATE 1-3 h$ 60 CNAME h${1,0,d}\n"))

	f.Fuzz(func(t *testing.T, src []byte) {
		z, err := Parse(bytes.NewReader(src), "example.com.", "fuzz.zone", discoReserved)
		if err != nil {
			lines := bytes.Count(src, []byte{'\n'}) + 1
			for _, e := range unjoin(err) {
				m := fuzzErrLine.FindStringSubmatch(e.Error())
				if m == nil {
					t.Fatalf("error %q does not start with fuzz.zone:LINE: and a message", e)
				}
				if n, _ := strconv.Atoi(m[1]); n < 1 || n > lines {
					t.Fatalf("error %q names line %d of %d", e, n, lines)
				}
			}
			return
		}
		if z.SOA() == nil || z.SOA().Hdr.Name != z.Origin() || len(z.NS()) == 0 {
			t.Fatalf("zone %s: SOA %v NS %v", z.Origin(), z.SOA(), z.NS())
		}
		s, err := NewSet(z)
		if err != nil {
			t.Fatal(err)
		}
		res, ok := s.Lookup(z.Origin(), dns.TypeSOA)
		if !ok || len(res.Answer) != 1 || res.Answer[0] != dns.RR(z.SOA()) {
			t.Fatalf("apex SOA: %+v", res)
		}
		checked := 0
		for name := range z.nodes {
			if checked++; checked > 200 {
				break
			}
			for _, qt := range []uint16{dns.TypeA, dns.TypeANY, dns.TypeDS, dns.TypeNS} {
				s.Lookup(name, qt)
			}
			// A name the zone holds always exists (CNAMEs are not
			// followed for qtype CNAME).
			if res, ok := s.Lookup(name, dns.TypeCNAME); !ok || res.Rcode != dns.RcodeSuccess {
				t.Fatalf("%s CNAME: ok=%v %+v", name, ok, res)
			}
			s.Lookup("zz."+name, dns.TypeA)
		}
	})
}

// unjoin returns the errors errors.Join put together, or err alone.
func unjoin(err error) []error {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		return j.Unwrap()
	}
	return []error{err}
}
