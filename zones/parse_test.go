package zones

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestParseBadFixtures loads every NAME.bad.zone and expects exactly the
// error text in NAME.bad.err (file names without their directory).
func TestParseBadFixtures(t *testing.T) {
	bad, err := filepath.Glob(filepath.Join(fixtures, "*.bad.zone"))
	if err != nil {
		t.Fatal(err)
	}
	errFiles, err := filepath.Glob(filepath.Join(fixtures, "*.bad.err"))
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) == 0 || len(bad) != len(errFiles) {
		t.Fatalf("%d bad zones and %d .err files; each NAME.bad.zone needs a NAME.bad.err", len(bad), len(errFiles))
	}
	for _, f := range bad {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(f, ".zone") + ".err")
			if err != nil {
				t.Fatal(err)
			}
			z, err := ParseFile(f, discoReserved)
			if err == nil {
				t.Fatalf("loaded zone %s, want an error", z.Origin())
			}
			got := strings.ReplaceAll(err.Error(), fixtures+string(filepath.Separator), "")
			if got != strings.TrimSpace(string(want)) {
				t.Errorf("error:\n%s\nwant:\n%s", got, strings.TrimSpace(string(want)))
			}
			var ze *Error
			if !errors.As(err, &ze) || ze.File != f || ze.Line < 1 {
				t.Errorf("error %#v does not name the file and a line", ze)
			}
		})
	}
}

func TestParseGoodFixtures(t *testing.T) {
	want := map[string]struct {
		origin  string
		records int
	}{
		"example.com.zone":       {"example.com.", 45},
		"child.example.com.zone": {"child.example.com.", 5},
		"example.net.zone":       {"example.net.", 5},
	}
	files := goodFixtures(t)
	if len(files) != len(want) {
		t.Fatalf("good fixtures %v, want %d", files, len(want))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			z, err := ParseFile(f, discoReserved)
			if err != nil {
				t.Fatal(err)
			}
			w := want[filepath.Base(f)]
			if z.Origin() != w.origin || z.Records() != w.records || z.File() != f {
				t.Errorf("got origin %s, %d records, file %s; want %s, %d, %s", z.Origin(), z.Records(), z.File(), w.origin, w.records, f)
			}
			if z.SOA() == nil || z.SOA().Hdr.Name != z.Origin() || len(z.NS()) == 0 {
				t.Errorf("SOA %v NS %v", z.SOA(), z.NS())
			}
		})
	}
}

const minimal = "@ IN SOA ns hostmaster 1 3600 600 86400 60\n@ IN NS ns.example.net.\n"

func TestParseOrigin(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		origin string
		want   string // origin, or the error text
	}{
		{"from argument", "$TTL 60\n" + minimal, "Example.COM", "example.com."},
		{"from $ORIGIN", "$ORIGIN example.org.\n" + minimal, "", "example.org."},
		{"$ORIGIN beats argument", "; c\n$ORIGIN example.org.\n" + minimal, "example.com.", "example.org."},
		{"relative $ORIGIN", "$ORIGIN sub\n" + minimal, "example.com.", "sub.example.com."},
		{"last leading $ORIGIN", "$ORIGIN com.\n$ORIGIN example\n" + minimal, "", "example.com."},
		{"later $ORIGIN only for relative names", "$ORIGIN example.com.\n" + minimal + "$ORIGIN sub.example.com.\nwww IN A 192.0.2.1\n", "", "example.com."},
		{"none", minimal, "", `f.zone:1: no zone origin: put an absolute $ORIGIN line (like "$ORIGIN example.com.") before the first record`},
		{"relative without base", "$ORIGIN example\n" + minimal, "", `f.zone:1: no zone origin: put an absolute $ORIGIN line (like "$ORIGIN example.com.") before the first record`},
		{"bad argument", minimal, "a..b", `f.zone:1: invalid origin "a..b."`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z, err := Parse(strings.NewReader(tt.src), tt.origin, "f.zone", Options{})
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				got = z.Origin()
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOriginFromFileName(t *testing.T) {
	for path, want := range map[string]string{
		"/etc/zones/example.com.zone": "example.com.",
		"Example.COM.zone":            "example.com.",
		"example.com..zone":           "example.com.",
		"disco.internal.zone":         "disco.internal.",
		"a..b.zone":                   "",
		".zone":                       "",
	} {
		if got := OriginFromFileName(path); got != want {
			t.Errorf("OriginFromFileName(%q) = %q, want %q", path, got, want)
		}
	}
}

// TestParseNormalises checks what loading does to records: owners in
// lower case, duplicates dropped, one TTL per RRset, a default TTL.
func TestParseNormalises(t *testing.T) {
	src := `$ORIGIN example.com.
@ IN SOA ns hostmaster 1 3600 600 86400 60
@ IN NS ns.example.net.
WWW.Example.COM. 300 IN A 192.0.2.1
www 100 IN A 192.0.2.2
www 300 IN A 192.0.2.1
`
	z, err := Parse(strings.NewReader(src), "", "f.zone", Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := NewSet(z)
	res, _ := s.Lookup("www.example.com.", dns.TypeA)
	sameRecords(t, "answer", res.Answer, []string{"www.example.com. 100 IN A 192.0.2.1", "www.example.com. 100 IN A 192.0.2.2"})
	if z.Records() != 4 {
		t.Errorf("records = %d, want 4", z.Records())
	}
	if z.SOA().Hdr.Ttl != DefaultTTL {
		t.Errorf("SOA TTL %d, want the default %d", z.SOA().Hdr.Ttl, DefaultTTL)
	}
	if ttl := z.NegativeSOA().Hdr.Ttl; ttl != 60 {
		t.Errorf("negative SOA TTL %d, want 60", ttl)
	}
}

// TestParseDiscoveryZone checks that a zone for the discovery domain loads
// when it leaves the reserved names alone, and that the reserved names are
// compared in canonical form without changing the caller's options.
func TestParseDiscoveryZone(t *testing.T) {
	src := `$ORIGIN disco.internal.
$TTL 60
@          IN SOA ns hostmaster 1 3600 600 86400 5
@          IN NS  ns
ns         IN A   127.0.0.1
www        IN A   127.0.0.2
services   IN TXT "a sibling of a reserved name is fine"
x.addr2    IN A   127.0.0.3
`
	opts := Options{Reserved: []string{"Service.Disco.Internal", "addr.disco.internal.", "instance.disco.internal."}}
	z, err := Parse(strings.NewReader(src), "", "disco.internal.zone", opts)
	if err != nil {
		t.Fatal(err)
	}
	if z.Origin() != "disco.internal." || z.Records() != 6 {
		t.Errorf("origin %s records %d", z.Origin(), z.Records())
	}
	if opts.Reserved[0] != "Service.Disco.Internal" {
		t.Errorf("options changed: %v", opts.Reserved)
	}
	_, err = Parse(strings.NewReader(src+"X.SERVICE IN A 10.0.0.1\n"), "", "disco.internal.zone", opts)
	want := "disco.internal.zone:9: x.service.disco.internal. is at or under service.disco.internal., which is reserved for discovery names; zone files may not define names there"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	// A zone whose origin is itself reserved is refused as a whole.
	_, err = Parse(strings.NewReader("; a zone of its own\n$ORIGIN a.service.disco.internal.\n"+minimal), "", "s.zone", opts)
	want = "s.zone:2: zone a.service.disco.internal. is at or under service.disco.internal., which is reserved for discovery names"
	if err == nil || err.Error() != want {
		t.Errorf("reserved origin: got %v, want %s", err, want)
	}
	_, err = Parse(strings.NewReader(minimal), "addr.disco.internal.", "addr.disco.internal.zone", opts)
	want = "addr.disco.internal.zone:1: zone addr.disco.internal. is at or under addr.disco.internal., which is reserved for discovery names"
	if err == nil || err.Error() != want {
		t.Errorf("reserved origin from name: got %v, want %s", err, want)
	}
}

// TestParseLines checks that records spanning lines, directives, comments
// and $GENERATE do not shift the line numbers in errors.
func TestParseLines(t *testing.T) {
	src := `; comment
$ORIGIN example.com.

$TTL 300
@ IN SOA ns hostmaster (
        1 3600 600
        86400 60 )
@ IN NS ns.example.net.
  IN TXT "owner omitted, same name"
$GENERATE 1-2 host$ 300 A 192.0.2.$
txt IN TXT "a" "multi
line"
$TTL 60
dup IN CNAME www
dup IN TXT "line 15"
host1 IN CNAME www
other.test. IN A 192.0.2.1
`
	_, err := Parse(strings.NewReader(src), "", "f.zone", Options{})
	want := []string{
		"f.zone:14: dup.example.com. has a CNAME and other data (TXT on line 15); a CNAME must be alone at its name",
		"f.zone:16: host1.example.com. has a CNAME and other data (A on line 10); a CNAME must be alone at its name",
		"f.zone:17: other.test. is outside the zone example.com.",
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("got:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}

func TestParseErrorsCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("$ORIGIN example.com.\n" + minimal)
	for i := range maxErrors + 5 {
		fmt.Fprintf(&b, "www%d.example.org. IN A 192.0.2.1\n", i)
	}
	_, err := Parse(strings.NewReader(b.String()), "", "f.zone", Options{})
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxErrors+1 || lines[maxErrors] != fmt.Sprintf("f.zone:%d: too many problems; 5 more not shown", maxErrors+4) {
		t.Errorf("got %d lines, last %q", len(lines), lines[len(lines)-1])
	}
}

func TestParseFileMissing(t *testing.T) {
	_, err := ParseFile(filepath.Join(t.TempDir(), "nope.zone"), Options{})
	if err == nil || !regexp.MustCompile(`nope\.zone: cannot read: no such file or directory$`).MatchString(err.Error()) {
		t.Errorf("got %v", err)
	}
}

func TestParseTooLarge(t *testing.T) {
	for _, n := range []int{99, 100, 101} {
		src, err := readSource(strings.NewReader(strings.Repeat(";", n)), "big.zone", 100)
		switch {
		case n <= 100 && (err != nil || len(src) != n):
			t.Errorf("%d bytes: got %d, %v", n, len(src), err)
		case n > 100 && (err == nil || err.Error() != "big.zone: larger than 100 bytes"):
			t.Errorf("%d bytes: got %v", n, err)
		}
	}
}

// TestParseGenerate checks that $GENERATE is supported, with the TTL in its
// template ($TTL does not apply to it).
func TestParseGenerate(t *testing.T) {
	_, err := Parse(strings.NewReader("$ORIGIN example.com.\n$TTL 60\n"+minimal+"$GENERATE 1-3 host$ A 192.0.2.$\n"), "", "f.zone", Options{})
	want := `f.zone:5: $GENERATE needs a TTL in its template (like "$GENERATE 1-9 host$ 300 A 192.0.2.$"); $TTL does not apply to it`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	z, err := Parse(strings.NewReader("$ORIGIN example.com.\n$TTL 60\n"+minimal+"$GENERATE 1-3 host$ 60 IN A 192.0.2.$\n"), "", "f.zone", Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := NewSet(z)
	var got []string
	for _, q := range []string{"host1.example.com.", "host2.example.com.", "host3.example.com."} {
		res, _ := s.Lookup(q, dns.TypeA)
		got = append(got, rrStrings(res.Answer)...)
	}
	if !slices.Equal(got, zoneText(t, []string{
		"host1.example.com. 60 IN A 192.0.2.1", "host2.example.com. 60 IN A 192.0.2.2", "host3.example.com. 60 IN A 192.0.2.3",
	})) {
		t.Errorf("got %v", got)
	}
}
