package registry_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"disco/registry"
)

// BenchmarkHasAddress measures the lookup DNS makes for every SRV target
// name: a hash of the address to its shard and one map lookup.
func BenchmarkHasAddress(b *testing.B) {
	reg := registry.New(registry.Config{})
	for i := range 1000 {
		in, err := registry.NewInstance("web", fmt.Sprintf("w%d", i), registry.Registration{
			Address: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).String(), Port: 80})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := reg.Register(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
	snap := reg.Snapshot()
	addrs := []netip.Addr{netip.MustParseAddr("10.0.1.7"), netip.MustParseAddr("fd00::3e8"), netip.MustParseAddr("192.0.2.1")}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		snap.HasAddress(addrs[i%len(addrs)])
	}
}
