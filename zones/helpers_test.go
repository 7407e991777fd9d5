package zones

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

const fixtures = "../testdata/zones"

// discoReserved is what the server passes for the default discovery domain.
var discoReserved = Options{Reserved: []string{
	"service.disco.internal.", "addr.disco.internal.", "instance.disco.internal.",
}}

// goodFixtures returns the paths of the fixture zones that must load.
func goodFixtures(t testing.TB) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join(fixtures, "*.zone"))
	if err != nil {
		t.Fatal(err)
	}
	var good []string
	for _, f := range all {
		if !strings.HasSuffix(f, ".bad.zone") {
			good = append(good, f)
		}
	}
	if len(good) == 0 {
		t.Fatal("no good fixtures found")
	}
	return good
}

// fixtureSet loads every good fixture zone into one Set.
func fixtureSet(t testing.TB) *Set {
	t.Helper()
	var zs []*Zone
	for _, f := range goodFixtures(t) {
		z, err := ParseFile(f, discoReserved)
		if err != nil {
			t.Fatal(err)
		}
		zs = append(zs, z)
	}
	s, err := NewSet(zs...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rrStrings renders records as sorted zone-file lines.
func rrStrings(rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = rr.String()
	}
	slices.Sort(out)
	return out
}

// zoneText parses expected records written as zone-file lines and renders
// them the way rrStrings does, so that spacing in the tables does not matter.
func zoneText(t testing.TB, lines []string) []string {
	t.Helper()
	out := make([]string, len(lines))
	for i, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil || rr == nil {
			t.Fatalf("bad expected record %q: %v", l, err)
		}
		out[i] = rr.String()
	}
	slices.Sort(out)
	return out
}

// sameRecords reports a difference between got and the expected lines.
func sameRecords(t testing.TB, section string, got []dns.RR, want []string) {
	t.Helper()
	g, w := rrStrings(got), zoneText(t, want)
	if !slices.Equal(g, w) {
		t.Errorf("%s:\ngot:\n\t%s\nwant:\n\t%s", section, strings.Join(g, "\n\t"), strings.Join(w, "\n\t"))
	}
}
