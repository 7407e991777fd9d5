package registry

import (
	"hash/fnv"
	"net/netip"
	"slices"
)

// The address index counts, for every address, the instances that have it
// in any service and whatever their status. It answers "is this address
// registered?" in one lookup (DNS names an SRV target after its address and
// answers that name only for registered addresses) and lists the addresses
// in order. It is sharded like the service index, so a write copies only
// the shards of the addresses it touched.

// addrShard is one part of the address index.
type addrShard struct {
	m map[netip.Addr]int
}

// addrShardOf hashes an address (FNV-1a over its 16-byte form) to its
// shard.
func addrShardOf(a netip.Addr) int {
	b := a.As16()
	h := fnv.New32a()
	h.Write(b[:])
	return int(h.Sum32() % shards)
}

// HasAddress reports whether an instance of any service, whatever its
// status, has address a.
func (s *Snapshot) HasAddress(a netip.Addr) bool {
	sh := s.addrs[addrShardOf(a)]
	return sh != nil && sh.m[a] > 0
}

// Addresses returns the addresses of every registered instance, each once,
// sorted.
func (s *Snapshot) Addresses() []netip.Addr {
	var out []netip.Addr
	for _, sh := range s.addrs {
		if sh == nil {
			continue
		}
		for a := range sh.m {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// countAddr records that one more (d=1) or one fewer (d=-1) instance has
// address a in the snapshot being built.
func (b *builder) countAddr(a netip.Addr, d int) {
	if b.addrDelta == nil {
		b.addrDelta = make(map[netip.Addr]int)
	}
	b.addrDelta[a] += d
}

// buildAddrs applies the counted changes to n's address index, copying each
// shard they touch once.
func (b *builder) buildAddrs(n *Snapshot) {
	var copied [shards]bool
	for a, d := range b.addrDelta {
		if d == 0 {
			continue
		}
		i := addrShardOf(a)
		if !copied[i] {
			old := n.addrs[i]
			sh := &addrShard{m: make(map[netip.Addr]int)}
			if old != nil {
				sh.m = make(map[netip.Addr]int, len(old.m)+1)
				for k, v := range old.m {
					sh.m[k] = v
				}
			}
			n.addrs[i] = sh
			copied[i] = true
		}
		if c := n.addrs[i].m[a] + d; c > 0 {
			n.addrs[i].m[a] = c
		} else {
			delete(n.addrs[i].m, a)
		}
	}
	b.addrDelta = nil
}
