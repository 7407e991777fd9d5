package cluster

import (
	"hash/fnv"

	"disco/registry"
)

// Owner returns the member among members that checks instance k: the one
// with the highest score for k (rendezvous hashing). Every server that
// knows the same members picks the same owner; when a member leaves, only
// its instances move, spread evenly over the others, and a member that
// joins takes an even share from all. It returns "" when members is empty.
func Owner(members []string, k registry.Key) string {
	kh := hashKey(k)
	best, bestScore := "", uint64(0)
	for _, m := range members {
		if s := score(hashString(m), kh); best == "" || s > bestScore || (s == bestScore && m < best) {
			best, bestScore = m, s
		}
	}
	return best
}

// score mixes a member's and a key's hashes (the splitmix64 finalizer), so
// that each member ranks the keys independently of the others.
func score(member, key uint64) uint64 {
	z := member ^ key
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// hashKey is FNV-1a (64 bit) of "service/id".
func hashKey(k registry.Key) uint64 {
	h := fnv.New64a()
	h.Write([]byte(k.Service))
	h.Write([]byte{'/'})
	h.Write([]byte(k.ID))
	return h.Sum64()
}

// hashString is FNV-1a (64 bit) of s.
func hashString(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}
