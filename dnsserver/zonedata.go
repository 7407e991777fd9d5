package dnsserver

import (
	"slices"

	"github.com/miekg/dns"

	"disco/registry"
	"disco/zones"
)

// The discovery zone as a zone transfer carries it: every name DNS answers
// with records, and at each name the records DNS answers, taken from one
// registry snapshot. The names come from the snapshot (services, their
// tags, their instances, the registered addresses); the records of each
// name come from the very code that answers queries (Config.answer), so the
// zone and the answers cannot drift apart.

// zoneTypes are the types asked at every registry name to collect its
// records. A type a name does not answer costs one empty answer.
var zoneTypes = [...]uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeTXT, dns.TypePTR}

// rrsAt appends to dst the records the registry part of the zone holds at
// name (canonical), as DNS answers them. Registry names (kinds service,
// instance and addr) are answered by Config.discovery alone, whatever the
// zone files (see Config.answer), so the name is parsed once and
// discovery asked per type, without the negative answers' SOA that answer
// would add.
func (c *Config) rrsAt(dst []dns.RR, name string, snap *registry.Snapshot, zs *zones.Set) []dns.RR {
	n, inDomain := parseName(name, c.Domain)
	registryName := inDomain && (n.kind == kindService || n.kind == kindInstance || n.kind == kindAddr)
	for _, t := range zoneTypes {
		q := query{name: name, canon: name, qtype: t}
		var r response
		if registryName {
			r = c.discovery(q, n, snap)
		} else {
			r = c.answer(q, snap, zs)
		}
		for _, rr := range r.answer {
			if h := rr.Header(); h.Rrtype == t && h.Name == name {
				dst = append(dst, rr)
			}
		}
	}
	return dst
}

// serviceNames returns the names of a service under service.D that may hold
// records: the service, its RFC 2782 forms (the _tcp one is also its
// DNS-SD service type), the same per tag of any of its instances, and
// the DNS-SD service instance name of each instance, each once.
func (c *Config) serviceNames(svc *registry.Service) []string {
	if svc == nil {
		return nil
	}
	base := serviceLabel + "." + c.Domain
	s := svc.Name()
	names := []string{s + "." + base, "_" + s + "._tcp." + base, "_" + s + "._udp." + base}
	var tags []string
	for _, in := range svc.Instances() {
		for _, t := range in.Tags {
			if !slices.Contains(tags, t) {
				tags = append(tags, t)
			}
		}
	}
	slices.Sort(tags)
	for _, t := range tags {
		for _, n := range [...]string{t + "." + s + "." + base, "_" + s + "._" + t + "." + base} {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	for _, in := range svc.Instances() {
		names = append(names, c.serviceInstanceName(in))
	}
	return names
}

// dnssdNames are the DNS-SD names of the zone that belong to no one
// service: the service type enumeration and the browsing domain.
func (c *Config) dnssdNames() []string {
	return []string{dnssdServices + "." + serviceLabel + "." + c.Domain, dnssdBrowse + "." + c.Domain}
}

// instanceName is <id>.<service>.instance.D.
func (c *Config) instanceName(service, id string) string {
	return id + "." + service + "." + instanceLabel + "." + c.Domain
}

// zoneSOA returns the discovery zone's SOA with serial: the synthesized one,
// or the one of a zone file for the domain.
func (c *Config) zoneSOA(snap *registry.Snapshot, zs *zones.Set, serial uint32) *dns.SOA {
	r := c.answer(query{name: c.Domain, canon: c.Domain, qtype: dns.TypeSOA}, snap, zs)
	for _, rr := range r.answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return withSerial(soa, serial)
		}
	}
	// Not reached: the apex always answers its SOA.
	return withSerial(c.soa(c.Domain, c.TTL).(*dns.SOA), serial)
}

// withSerial returns a copy of soa with the serial.
func withSerial(soa *dns.SOA, serial uint32) *dns.SOA {
	c := *soa
	c.Serial = serial
	return &c
}

// apexRecords returns the records of the zone outside the registry's
// subtrees, SOA excepted: the records of a zone file for the domain, or
// the synthesized apex NS and the addresses of its target.
func (c *Config) apexRecords(snap *registry.Snapshot, zs *zones.Set) []dns.RR {
	if d := c.domainZone(zs); d != nil {
		return d.RRs()[1:]
	}
	var out []dns.RR
	for _, q := range []query{
		{name: c.Domain, canon: c.Domain, qtype: dns.TypeNS},
		{name: c.nsName(), canon: c.nsName(), qtype: dns.TypeA},
		{name: c.nsName(), canon: c.nsName(), qtype: dns.TypeAAAA},
	} {
		out = append(out, c.answer(q, snap, zs).answer...)
	}
	return out
}

// walkZone calls emit with the records of the discovery zone, in batches
// (one per service, a few hundred addresses at a time): SOA first, then the
// apex, the services with their instances, the addresses, and the SOA
// again. It stops at the first error emit returns.
func (c *Config) walkZone(snap *registry.Snapshot, zs *zones.Set, serial uint32, emit func([]dns.RR) error) error {
	soa := c.zoneSOA(snap, zs, serial)
	first := append([]dns.RR{soa}, c.apexRecords(snap, zs)...)
	for _, name := range c.dnssdNames() {
		first = c.rrsAt(first, name, snap, zs)
	}
	if err := emit(first); err != nil {
		return err
	}
	var batch []dns.RR
	for _, svc := range snap.Services() {
		batch = batch[:0]
		for _, name := range c.serviceNames(svc) {
			batch = c.rrsAt(batch, name, snap, zs)
		}
		for _, in := range svc.Instances() {
			batch = c.rrsAt(batch, c.instanceName(svc.Name(), in.ID), snap, zs)
		}
		if err := emit(batch); err != nil {
			return err
		}
	}
	batch = batch[:0]
	for _, a := range snap.Addresses() {
		batch = c.rrsAt(batch, c.targetName(a), snap, zs)
		if len(batch) >= 256 {
			if err := emit(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return emit(append(batch, soa))
}

// diff returns the records deleted and added between two versions of the
// discovery zone, SOA excepted: those of the services that changed, of
// their changed instances and addresses, and of a zone file for the domain
// when it changed.
func (c *Config) diff(oldSnap, newSnap *registry.Snapshot, oldZones, newZones *zones.Set) (del, add []dns.RR) {
	var before, after []dns.RR
	changed := newSnap.ChangedSince(oldSnap)
	if len(changed) > 0 {
		// The service type enumeration lists every service serving an
		// instance.
		name := c.dnssdNames()[0]
		before = c.rrsAt(before, name, oldSnap, oldZones)
		after = c.rrsAt(after, name, newSnap, newZones)
	}
	for _, name := range changed {
		o, _ := oldSnap.Service(name)
		n, _ := newSnap.Service(name)
		var names []string
		for _, nm := range append(c.serviceNames(o), c.serviceNames(n)...) {
			if !slices.Contains(names, nm) {
				names = append(names, nm)
			}
		}
		changed := changedInstances(o, n)
		seen := make(map[string]bool)
		for _, in := range changed {
			if id := c.instanceName(name, in.ID); !seen[id] {
				seen[id] = true
				names = append(names, id)
			}
		}
		for _, in := range changed {
			if t := c.targetName(in.Address); !seen[t] {
				seen[t] = true
				names = append(names, t)
			}
		}
		for _, nm := range names {
			before = c.rrsAt(before, nm, oldSnap, oldZones)
			after = c.rrsAt(after, nm, newSnap, newZones)
		}
	}
	if c.domainZone(oldZones) != c.domainZone(newZones) {
		before = append(before, c.apexRecords(oldSnap, oldZones)...)
		after = append(after, c.apexRecords(newSnap, newZones)...)
	}
	return rrSetDiff(before, after)
}

// changedInstances returns the instances of o and n (either may be nil)
// that are not the same in both: added, removed or replaced, both versions
// of a replaced one. When the service's settings changed, every instance
// counts (its records carry the service's TTL).
func changedInstances(o, n *registry.Service) []*registry.Instance {
	var a, b []*registry.Instance
	if o != nil {
		a = o.Instances()
	}
	if n != nil {
		b = n.Instances()
	}
	if o == nil || n == nil || !sameSettings(o.Settings(), n.Settings()) {
		return append(slices.Clip(a), b...)
	}
	var out []*registry.Instance
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i].ID < b[j].ID):
			out = append(out, a[i])
			i++
		case i == len(a) || b[j].ID < a[i].ID:
			out = append(out, b[j])
			j++
		default:
			if a[i] != b[j] {
				out = append(out, a[i], b[j])
			}
			i++
			j++
		}
	}
	return out
}

func sameSettings(a, b registry.Settings) bool {
	eq := func(x, y *int) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return eq(a.DNSTTL, b.DNSTTL) && eq(a.MinHealthyPercent, b.MinHealthyPercent)
}

// rrSetDiff returns the records of before missing from after (deleted) and
// those of after missing from before (added), each once.
func rrSetDiff(before, after []dns.RR) (del, add []dns.RR) {
	keys := func(rrs []dns.RR) ([]string, map[string]bool) {
		ks := make([]string, len(rrs))
		set := make(map[string]bool, len(rrs))
		for i, rr := range rrs {
			ks[i] = rrKey(rr)
			set[ks[i]] = true
		}
		return ks, set
	}
	bk, bset := keys(before)
	ak, aset := keys(after)
	done := make(map[string]bool)
	for i, rr := range before {
		if k := bk[i]; !aset[k] && !done[k] {
			done[k] = true
			del = append(del, rr)
		}
	}
	for i, rr := range after {
		if k := ak[i]; !bset[k] && !done[k] {
			done[k] = true
			add = append(add, rr)
		}
	}
	return del, add
}

// rrKey identifies a record by its wire form: owner, type, class, TTL and
// data. It packs the record inside a message, which leaves the record as it
// is (dns.PackRR would set its Rdlength, a write to a record that other
// goroutines may be reading).
func rrKey(rr dns.RR) string {
	m := dns.Msg{Answer: []dns.RR{rr}}
	wire, err := m.PackBuffer(make([]byte, 12+dns.Len(rr)))
	if err != nil {
		return rr.String()
	}
	return string(wire[12:])
}
