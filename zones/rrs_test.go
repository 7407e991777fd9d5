package zones

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestRRs: a zone's records come back once each, SOA first, the same
// records the file holds.
func TestRRs(t *testing.T) {
	src := `$ORIGIN example.com.
$TTL 300
@       IN SOA ns1 hostmaster 7 3600 600 86400 60
@       IN NS  ns1
ns1     IN A   192.0.2.53
www     IN A   192.0.2.10
www     IN AAAA 2001:db8::10
*.wild  IN A   192.0.2.77
a.b.ent IN TXT "below an empty non-terminal"
sub     IN NS  ns.sub
ns.sub  IN A   192.0.2.99
`
	z, err := Parse(strings.NewReader(src), "example.com.", "example.com.zone", Options{})
	if err != nil {
		t.Fatal(err)
	}
	rrs := z.RRs()
	if _, ok := rrs[0].(*dns.SOA); !ok {
		t.Fatalf("first record %s, want the SOA", rrs[0])
	}
	got := rrStrings(rrs)
	slices.Sort(got)
	var want []string
	zp := dns.NewZoneParser(strings.NewReader(src), "example.com.", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		want = append(want, rr.String())
	}
	slices.Sort(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(rrs) != z.Records() {
		t.Errorf("%d records, Records() says %d", len(rrs), z.Records())
	}
}

// TestSetChanged: a reload closes the replaced Set's Changed channel.
func TestSetChanged(t *testing.T) {
	dir := t.TempDir()
	zone := "$ORIGIN example.com.\n@ 300 IN SOA ns1 host 1 3600 600 86400 60\n@ 300 IN NS ns1\nns1 300 IN A 192.0.2.1\n"
	if err := os.WriteFile(filepath.Join(dir, "example.com.zone"), []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	m := NewManager(dir, Options{}, nil)
	first := m.Current()
	if _, err := m.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-first.Changed():
	default:
		t.Fatal("the first Set's Changed is still open after a reload")
	}
	cur := m.Current()
	select {
	case <-cur.Changed():
		t.Fatal("the current Set's Changed is closed")
	default:
	}
	if z := cur.Zone("example.com."); z == nil || z.SOA().Serial != 1 {
		t.Fatalf("Zone(example.com.) = %v", z)
	}
	if cur.Zone("www.example.com.") != nil {
		t.Fatal("Zone found a zone for a name that is not an origin")
	}
}
