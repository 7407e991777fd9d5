package dnsserver

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"disco/registry"
)

// Reverse zones: for each --reverse-zone prefix, disco is authoritative
// for its in-addr.arpa. or ip6.arpa. zone, with one PTR per registered
// instance at each address inside it:
//
//	1.0.0.10.in-addr.arpa. PTR web-1.web.instance.D.

// ReverseZoneName returns the in-addr.arpa. or ip6.arpa. zone of prefix p,
// or an error when p does not end on an octet (IPv4) or nibble (IPv6)
// boundary, or has bits set past its length.
func ReverseZoneName(p netip.Prefix) (string, error) {
	if !p.IsValid() {
		return "", fmt.Errorf("%q is not an address prefix", p)
	}
	if p.Masked() != p {
		return "", fmt.Errorf("%s has bits set past its length: the prefix is %s", p, p.Masked())
	}
	a := p.Addr()
	var labels []string
	if a.Is4() {
		if p.Bits()%8 != 0 {
			return "", fmt.Errorf("%s is not on an octet boundary: reverse zones of IPv4 prefixes need /0, /8, /16, /24 or /32", p)
		}
		b := a.As4()
		for i := p.Bits()/8 - 1; i >= 0; i-- {
			labels = append(labels, strconv.Itoa(int(b[i])))
		}
		return strings.Join(append(labels, "in-addr.arpa."), "."), nil
	}
	if p.Bits()%4 != 0 {
		return "", fmt.Errorf("%s is not on a nibble boundary: reverse zones of IPv6 prefixes need a length that is a multiple of 4", p)
	}
	b := a.As16()
	for i := p.Bits()/4 - 1; i >= 0; i-- {
		labels = append(labels, nibble(b, i))
	}
	return strings.Join(append(labels, "ip6.arpa."), "."), nil
}

// nibble returns the i-th hex digit of b, most significant first.
func nibble(b [16]byte, i int) string {
	v := b[i/2]
	if i%2 == 0 {
		v >>= 4
	}
	return strconv.FormatUint(uint64(v&0xf), 16)
}

// reverseZone is one served reverse zone.
type reverseZone struct {
	prefix netip.Prefix
	origin string // canonical
}

// reverseZones returns the zones of prefixes, longest origin first so that
// the first match is the most specific. Invalid prefixes are skipped
// (Config.Validate reports them).
func reverseZones(prefixes []netip.Prefix) []reverseZone {
	var out []reverseZone
	for _, p := range prefixes {
		origin, err := ReverseZoneName(p)
		if err != nil || slices.ContainsFunc(out, func(z reverseZone) bool { return z.origin == origin }) {
			continue
		}
		out = append(out, reverseZone{prefix: p, origin: origin})
	}
	slices.SortFunc(out, func(a, b reverseZone) int { return cmp.Compare(len(b.origin), len(a.origin)) })
	return out
}

// reverseZoneOf returns the most specific reverse zone at or above the
// canonical name qname, or nil.
func (c *Config) reverseZoneOf(qname string) *reverseZone {
	for i := range c.reverse {
		z := &c.reverse[i]
		if qname == z.origin || strings.HasSuffix(qname, "."+z.origin) {
			return z
		}
	}
	return nil
}

// reverseAnswer answers q in reverse zone z from snap.
func (c *Config) reverseAnswer(q query, z *reverseZone, snap *registry.Snapshot) response {
	r := response{aa: true}
	r.dependOnAll(snap)
	rel := strings.TrimSuffix(strings.TrimSuffix(q.canon, z.origin), ".")
	switch {
	case rel == "":
		c.apex(q, &r, c.reverseSOA(q.name, z, c.TTL))
	default:
		p, ok := reversePrefix(rel, z.prefix)
		switch {
		case !ok:
			r.rcode = dns.RcodeNameError
		case !p.IsSingleIP():
			if !c.addrs.within(snap, p) {
				r.rcode = dns.RcodeNameError // not even an empty non-terminal
			}
		default:
			ins := c.addrs.at(snap, p.Addr())
			if len(ins) == 0 {
				r.rcode = dns.RcodeNameError
				break
			}
			switch q.qtype {
			case dns.TypePTR:
				for _, in := range ins {
					r.answer = append(r.answer, &dns.PTR{Hdr: header(q.name, dns.TypePTR, c.TTL), Ptr: c.instanceName(in.Service, in.ID)})
				}
			case dns.TypeANY:
				r.answer = append(r.answer, hinfoRFC8482(q.name, c.TTL))
			}
		}
	}
	if len(r.answer) == 0 {
		r.ns = append(r.ns, c.reverseSOA(z.origin, z, min(c.TTL, c.NegativeTTL)))
	}
	return r
}

// reverseSOA is a reverse zone's synthesized SOA: the discovery domain's,
// at the zone's apex.
func (c *Config) reverseSOA(owner string, z *reverseZone, ttl uint32) dns.RR {
	return c.soa(owner, ttl)
}

// reversePrefix reads the labels rel below the reverse zone of zone (the
// part of a reverse name before the zone's origin) as the prefix they
// name: a single address when they complete it. Labels must be canonical:
// decimal octets without leading zeros, single lower-case hex nibbles.
func reversePrefix(rel string, zone netip.Prefix) (netip.Prefix, bool) {
	labels := strings.Split(rel, ".")
	slices.Reverse(labels)
	if zone.Addr().Is4() {
		b := zone.Addr().As4()
		at := zone.Bits() / 8
		if at+len(labels) > 4 {
			return netip.Prefix{}, false
		}
		for _, l := range labels {
			v, err := strconv.ParseUint(l, 10, 8)
			if err != nil || strconv.FormatUint(v, 10) != l {
				return netip.Prefix{}, false
			}
			b[at] = byte(v)
			at++
		}
		return netip.PrefixFrom(netip.AddrFrom4(b), at*8), true
	}
	b := zone.Addr().As16()
	at := zone.Bits() / 4
	if at+len(labels) > 32 {
		return netip.Prefix{}, false
	}
	for _, l := range labels {
		if len(l) != 1 || !(l[0] >= '0' && l[0] <= '9' || l[0] >= 'a' && l[0] <= 'f') {
			return netip.Prefix{}, false
		}
		v, _ := strconv.ParseUint(l, 16, 8)
		if at%2 == 0 {
			b[at/2] = byte(v) << 4
		} else {
			b[at/2] |= byte(v)
		}
		at++
	}
	return netip.PrefixFrom(netip.AddrFrom16(b), at*4), true
}

// addrIndex finds the instances registered at an address. It follows the
// registry's snapshots incrementally: moving to a newer snapshot costs
// the services that changed, not the registry. Only addresses inside the
// reverse zones are indexed.
type addrIndex struct {
	zones []netip.Prefix

	mu   sync.Mutex
	snap *registry.Snapshot
	// byAddr holds the instances at each address; under counts the
	// addresses under each octet or nibble boundary prefix, so that a
	// partial reverse name exists exactly when some address is below it.
	byAddr map[netip.Addr][]registry.Key
	under  map[netip.Prefix]int
}

func newAddrIndex(zones []reverseZone) *addrIndex {
	idx := &addrIndex{byAddr: map[netip.Addr][]registry.Key{}, under: map[netip.Prefix]int{}}
	for _, z := range zones {
		idx.zones = append(idx.zones, z.prefix)
	}
	return idx
}

// at returns the instances snap holds at address a, sorted by service and
// id.
func (x *addrIndex) at(snap *registry.Snapshot, a netip.Addr) []*registry.Instance {
	x.mu.Lock()
	x.follow(snap)
	keys := slices.Clone(x.byAddr[a])
	x.mu.Unlock()
	var out []*registry.Instance
	for _, k := range keys {
		// The index may be newer than snap: snap decides.
		if in, ok := snap.Instance(k.Service, k.ID); ok && in.Address == a {
			out = append(out, in)
		}
	}
	slices.SortFunc(out, func(a, b *registry.Instance) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// within reports whether some registered address lies inside p.
func (x *addrIndex) within(snap *registry.Snapshot, p netip.Prefix) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.follow(snap)
	return x.under[p] > 0
}

// follow brings the index up to snap, unless it is already there or
// newer. Called with x.mu held.
func (x *addrIndex) follow(snap *registry.Snapshot) {
	if x.snap != nil && x.snap.Version() >= snap.Version() {
		return
	}
	if x.snap == nil {
		for _, svc := range snap.Services() {
			x.addService(svc)
		}
		x.snap = snap
		return
	}
	for _, name := range snap.ChangedSince(x.snap) {
		if svc, ok := x.snap.Service(name); ok {
			for _, in := range svc.Instances() {
				x.remove(in)
			}
		}
		if svc, ok := snap.Service(name); ok {
			x.addService(svc)
		}
	}
	x.snap = snap
}

func (x *addrIndex) addService(svc *registry.Service) {
	for _, in := range svc.Instances() {
		x.add(in)
	}
}

func (x *addrIndex) indexed(a netip.Addr) bool {
	return slices.ContainsFunc(x.zones, func(p netip.Prefix) bool { return p.Contains(a) })
}

func (x *addrIndex) add(in *registry.Instance) {
	if !x.indexed(in.Address) {
		return
	}
	keys := x.byAddr[in.Address]
	x.byAddr[in.Address] = append(keys, in.Key())
	if len(keys) == 0 {
		x.count(in.Address, 1)
	}
}

func (x *addrIndex) remove(in *registry.Instance) {
	keys, ok := x.byAddr[in.Address]
	if !ok {
		return
	}
	keys = slices.DeleteFunc(keys, func(k registry.Key) bool { return k == in.Key() })
	if len(keys) > 0 {
		x.byAddr[in.Address] = keys
		return
	}
	delete(x.byAddr, in.Address)
	x.count(in.Address, -1)
}

// count adds d to the count of every boundary prefix strictly containing a.
func (x *addrIndex) count(a netip.Addr, d int) {
	step := 4
	if a.Is4() {
		step = 8
	}
	for bits := 0; bits < a.BitLen(); bits += step {
		p := netip.PrefixFrom(a, bits).Masked()
		if x.under[p] += d; x.under[p] <= 0 {
			delete(x.under, p)
		}
	}
}

// reverseName returns the in-addr.arpa. or ip6.arpa. name of address a.
func reverseName(a netip.Addr) string {
	var labels []string
	if a.Is4() {
		b := a.As4()
		for i := 3; i >= 0; i-- {
			labels = append(labels, strconv.Itoa(int(b[i])))
		}
		return strings.Join(append(labels, "in-addr.arpa."), ".")
	}
	b := a.As16()
	for i := 31; i >= 0; i-- {
		labels = append(labels, nibble(b, i))
	}
	return strings.Join(append(labels, "ip6.arpa."), ".")
}

// walkReverse calls emit with the records of reverse zone z as a zone
// transfer carries them, in batches: soa, the apex NS, the PTR records of
// every registered address inside the zone (as DNS answers them), and soa
// again. The zone shares the discovery zone's serial (in soa): it changes
// only when the registry does.
func (c *Config) walkReverse(snap *registry.Snapshot, z *reverseZone, soa *dns.SOA, emit func([]dns.RR) error) error {
	batch := []dns.RR{soa, &dns.NS{Hdr: header(z.origin, dns.TypeNS, c.TTL), Ns: c.nsName()}}
	for _, a := range snap.Addresses() {
		if !z.prefix.Contains(a) || c.reverseZoneOf(reverseName(a)) != z {
			continue // outside, or in a more specific reverse zone
		}
		name := reverseName(a)
		batch = append(batch, c.reverseAnswer(query{name: name, canon: name, qtype: dns.TypePTR}, z, snap).answer...)
		if len(batch) >= 256 {
			if err := emit(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return emit(append(batch, soa))
}
