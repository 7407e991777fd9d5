package cluster

import (
	"fmt"
	"testing"

	"disco/registry"
)

func keysN(n int) []registry.Key {
	out := make([]registry.Key, n)
	for i := range out {
		out[i] = registry.Key{Service: fmt.Sprintf("svc%d", i%50), ID: fmt.Sprintf("inst-%d", i)}
	}
	return out
}

// TestOwnerSpread: the instances spread evenly over the members, whatever
// order the members are listed in.
func TestOwnerSpread(t *testing.T) {
	for _, members := range [][]string{
		{"a", "b", "c"},
		{"disco-1-5f3a", "disco-2-91bc", "disco-3-0d27", "disco-4-77e1", "disco-5-c402"},
	} {
		t.Run(fmt.Sprint(len(members)), func(t *testing.T) {
			keys := keysN(30000)
			count := map[string]int{}
			reversed := make([]string, len(members))
			for i, m := range members {
				reversed[len(members)-1-i] = m
			}
			for _, k := range keys {
				o := Owner(members, k)
				if o2 := Owner(reversed, k); o2 != o {
					t.Fatalf("%s: owner %s, or %s with the members reversed", k, o, o2)
				}
				count[o]++
			}
			fair := len(keys) / len(members)
			for _, m := range members {
				if c := count[m]; c < fair*9/10 || c > fair*11/10 {
					t.Errorf("member %s owns %d of %d instances, want about %d", m, c, len(keys), fair)
				}
			}
		})
	}
}

// TestOwnerMoves: when a member leaves, only its instances move, and they
// spread over all the others; when one joins, it takes instances only.
func TestOwnerMoves(t *testing.T) {
	keys := keysN(30000)
	before := []string{"a", "b", "c", "d"}
	after := []string{"a", "b", "d"}
	got := map[string]int{}
	for _, k := range keys {
		o1, o2 := Owner(before, k), Owner(after, k)
		if o1 != "c" && o1 != o2 {
			t.Fatalf("%s moved from %s to %s though %s stayed", k, o1, o2, o1)
		}
		if o1 == "c" {
			got[o2]++
		}
	}
	moved := got["a"] + got["b"] + got["d"]
	for _, m := range after {
		if c := got[m]; c < moved/3*8/10 || c > moved/3*12/10 {
			t.Errorf("%s took %d of the %d instances c left, want about a third", m, c, moved)
		}
	}
	// Joining is the same move backwards.
	for _, k := range keys {
		if o1, o2 := Owner(after, k), Owner(before, k); o1 != o2 && o2 != "c" {
			t.Fatalf("%s moved from %s to %s when c joined", k, o1, o2)
		}
	}
}

func TestOwnerNone(t *testing.T) {
	if o := Owner(nil, registry.Key{Service: "web", ID: "a"}); o != "" {
		t.Errorf("Owner of no members = %q", o)
	}
	if o := Owner([]string{"x"}, registry.Key{Service: "web", ID: "a"}); o != "x" {
		t.Errorf("Owner of one member = %q", o)
	}
}

func BenchmarkOwner(b *testing.B) {
	b.ReportAllocs()
	members := []string{"disco-1", "disco-2", "disco-3"}
	k := registry.Key{Service: "web", ID: "web-17"}
	for b.Loop() {
		Owner(members, k)
	}
}
