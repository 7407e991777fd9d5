package dnsserver

import (
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"disco/registry"
	"disco/zones"
)

// query is the question the pure core answers.
type query struct {
	name  string // as sent, for owner names (case echoed)
	canon string // lower-case, fully qualified
	qtype uint16
}

// response is the pure core's answer, before EDNS, truncation and packing.
type response struct {
	rcode  int
	aa     bool
	answer []dns.RR
	ns     []dns.RR
	extra  []dns.RR
	// ede, when not empty, is the extra text of an Extended DNS Error
	// (RFC 8914) that explains an empty or fail-open answer.
	ede string
	dep dependency

	// What an explanation reports (see explain.go). Setting them costs no
	// allocation.
	zone    string             // origin of the zone that answered ("" when none)
	ttlFrom ttlSource          // where the answer's TTL came from
	name    name               // the discovery name, when the registry answered
	sel     registry.Selection // the policy's selection, for service names
	inst    *registry.Instance // the instance, for instance names
}

// ttlSource tells where an answer's TTLs come from.
type ttlSource uint8

const (
	ttlNone     ttlSource = iota
	ttlServer             // --dns-ttl
	ttlService            // the service's dns_ttl
	ttlZoneFile           // a static zone's records
)

// answer answers q from one registry snapshot and one set of zones (nil:
// none). It is pure: the same inputs give the same records (before the
// handler shuffles them).
func (c *Config) answer(q query, snap *registry.Snapshot, zs *zones.Set) response {
	n, inDomain := parseName(q.canon, c.Domain)
	if !inDomain {
		if z := c.reverseZoneOf(q.canon); z != nil && !staticBelow(zs, q.canon, z.origin) {
			return c.reverseAnswer(q, z, snap)
		}
		return c.fromZones(q, snap, zs)
	}
	d := c.domainZone(zs)
	if d != nil && (n.kind == kindApex || n.kind == kindNS || n.kind == kindStatic) {
		// A zone file for the discovery domain (or a child of it) answers
		// the apex and every name outside the registry's subtrees.
		return c.fromZones(q, snap, zs)
	}
	if d == nil && zs != nil && n.kind == kindStatic {
		if z := zs.Find(q.canon); z != nil && strings.HasSuffix(z.Origin(), "."+c.Domain) {
			return c.fromZones(q, snap, zs) // a child zone under D
		}
	}
	r := c.discovery(q, n, snap)
	r.zone = c.Domain
	if len(r.answer) == 0 {
		// NXDOMAIN or NODATA: the SOA tells resolvers how long to cache it.
		r.ns = append(r.ns, c.negativeSOA(d))
	}
	return r
}

// staticBelow reports whether a static zone below origin holds qname: it
// answers its own names rather than the reverse zone around it.
func staticBelow(zs *zones.Set, qname, origin string) bool {
	if zs == nil {
		return false
	}
	z := zs.Find(qname)
	return z != nil && len(z.Origin()) > len(origin)
}

// domainZone returns the zone file for the discovery domain itself, or nil.
func (c *Config) domainZone(zs *zones.Set) *zones.Zone {
	if zs == nil {
		return nil
	}
	if z := zs.Find(c.Domain); z != nil && z.Origin() == c.Domain {
		return z
	}
	return nil
}

// fromZones answers q from the static zones: REFUSED outside them. A CNAME
// that leads into the registry's names is followed there.
func (c *Config) fromZones(q query, snap *registry.Snapshot, zs *zones.Set) response {
	if zs == nil {
		return response{rcode: dns.RcodeRefused}
	}
	res, ok := zs.Lookup(q.canon, q.qtype)
	if !ok {
		return response{rcode: dns.RcodeRefused}
	}
	r := response{rcode: res.Rcode, aa: res.Authoritative, answer: res.Answer, ns: res.Ns, extra: res.Extra, ttlFrom: ttlZoneFile}
	if res.Zone != nil {
		r.zone = res.Zone.Origin()
	}
	if q.qtype == dns.TypeANY && res.Rcode == dns.RcodeSuccess && res.Authoritative && len(res.Answer) == 0 {
		ttl := uint32(dns.DefaultMsgSize)
		if soa := res.Zone.SOA(); soa != nil {
			ttl = min(soa.Hdr.Ttl, soa.Minttl)
		}
		return response{aa: true, answer: []dns.RR{hinfoRFC8482(q.name, ttl)}, zone: r.zone, ttlFrom: ttlZoneFile}
	}
	if len(res.Answer) == 0 {
		return r
	}
	cname, ok := res.Answer[len(res.Answer)-1].(*dns.CNAME)
	if !ok || q.qtype == dns.TypeCNAME {
		return r
	}
	target := dns.CanonicalName(cname.Target)
	n, inDomain := parseName(target, c.Domain)
	switch {
	case !inDomain:
		return r
	case n.kind == kindApex || n.kind == kindNS || n.kind == kindStatic:
		return r // static names were chased by the zones already
	}
	// RFC 6604: the rcode is the one of the last name in the chain.
	t := c.discovery(query{name: target, canon: target, qtype: q.qtype}, n, snap)
	r.rcode = t.rcode
	r.answer = append(slices.Clip(r.answer), t.answer...)
	r.extra = append(slices.Clip(r.extra), t.extra...)
	r.dep = t.dep
	r.ede = t.ede
	r.name, r.sel, r.inst = t.name, t.sel, t.inst
	if len(t.answer) == 0 {
		r.ns = []dns.RR{c.negativeSOA(c.domainZone(zs))}
	}
	return r
}

// discovery answers a name in the registry's part of the discovery domain,
// without the authority SOA of negative answers.
func (c *Config) discovery(q query, n name, snap *registry.Snapshot) response {
	r := response{aa: true, name: n, ttlFrom: ttlServer}
	switch n.kind {
	case kindApex:
		c.apex(q, &r, c.soa(q.name, c.TTL))
	case kindNS:
		for _, a := range c.NSAddrs {
			if addrType(a) == q.qtype {
				r.answer = append(r.answer, addressRecord(q.name, a, c.TTL))
			}
		}
		if q.qtype == dns.TypeANY {
			r.answer = append(r.answer, hinfoRFC8482(q.name, c.TTL))
		}
	case kindEmpty:
	case kindService:
		c.service(q, n, snap, &r)
	case kindServiceTypes:
		c.serviceTypes(q, snap, &r)
	case kindServiceInstance:
		c.serviceInstance(q, n, snap, &r)
	case kindBrowse:
		c.browseDomain(q, &r)
	case kindInstanceZone:
		if _, ok := r.dependOn(snap, n.service); !ok {
			r.rcode = dns.RcodeNameError
		}
	case kindInstance:
		c.instance(q, n, snap, &r)
	case kindAddr:
		// Only registered addresses: the zone stays finite, so a
		// transfer carries every name DNS answers.
		r.dep = dependency{addr: n.addr, hasAddr: snap.HasAddress(n.addr)}
		if !r.dep.hasAddr {
			r.rcode = dns.RcodeNameError
		} else if addrType(n.addr) == q.qtype {
			r.answer = append(r.answer, addressRecord(q.name, n.addr, c.TTL))
		} else if q.qtype == dns.TypeANY {
			r.answer = append(r.answer, hinfoRFC8482(q.name, c.TTL))
		}
	default:
		r.rcode = dns.RcodeNameError
	}
	return r
}

// apex answers q at a zone apex whose SOA record is soa: the SOA, the NS
// set with its addresses, or the RFC 8482 answer to ANY.
func (c *Config) apex(q query, r *response, soa dns.RR) {
	switch q.qtype {
	case dns.TypeSOA:
		r.answer = append(r.answer, soa)
	case dns.TypeNS:
		r.answer = append(r.answer, &dns.NS{Hdr: header(q.name, dns.TypeNS, c.TTL), Ns: c.nsName()})
		for _, a := range c.NSAddrs {
			r.extra = append(r.extra, addressRecord(c.nsName(), a, c.TTL))
		}
	case dns.TypeANY:
		r.answer = append(r.answer, hinfoRFC8482(q.name, c.TTL))
	}
}

func (c *Config) nsName() string { return nsLabel + "." + c.Domain }

// soa returns the discovery domain's synthesized SOA.
func (c *Config) soa(owner string, ttl uint32) dns.RR {
	return &dns.SOA{Hdr: header(owner, dns.TypeSOA, ttl),
		Ns: c.nsName(), Mbox: "hostmaster." + c.Domain,
		Serial: c.Serial, Refresh: soaRefresh, Retry: soaRetry,
		Expire: soaExpire, Minttl: c.NegativeTTL}
}

// negativeSOA is the SOA for the authority section of a negative answer,
// with TTL min(SOA TTL, minimum) as RFC 2308 asks.
// A zone file for the discovery domain (d, when not nil) supplies it. The
// record is shared (see Config.negSOA) and must not be modified.
func (c *Config) negativeSOA(d *zones.Zone) dns.RR {
	if d != nil {
		return d.NegativeSOA()
	}
	if c.negSOA != nil {
		return c.negSOA
	}
	return c.soa(c.Domain, min(c.TTL, c.NegativeTTL))
}

// ttlOf returns the TTL of a service's records and records where it came
// from.
func (c *Config) ttlOf(svc *registry.Service, r *response) uint32 {
	if t := svc.Settings().DNSTTL; t != nil {
		r.ttlFrom = ttlService
		return uint32(*t)
	}
	return c.TTL
}

// service answers [tag.]svc.service.D and its RFC 2782 forms.
func (c *Config) service(q query, n name, snap *registry.Snapshot, r *response) {
	svc, ok := r.dependOn(snap, n.service)
	if !ok {
		if !n.ent {
			r.rcode = dns.RcodeNameError
		}
		return
	}
	sel := c.Policy.Select(svc, n.tag)
	r.sel = sel
	if !sel.Exists {
		r.rcode = dns.RcodeNameError
		return
	}
	ttl := c.ttlOf(svc, r)
	switch q.qtype {
	case dns.TypeA, dns.TypeAAAA:
		var buf [16]netip.Addr
		seen := buf[:0]
		for _, in := range sel.Instances {
			if addrType(in.Address) != q.qtype || slices.Contains(seen, in.Address) {
				continue
			}
			seen = append(seen, in.Address)
			r.answer = append(r.answer, addressRecord(q.name, in.Address, ttl))
		}
	case dns.TypeSRV:
		c.srv(q.name, sel.Instances, ttl, r)
	case dns.TypePTR:
		if n.dnssd {
			c.browse(q.name, sel, ttl, r)
		}
	case dns.TypeTXT:
		if len(sel.Instances) == 0 {
			// The name exists but serves no instance: one TXT says why,
			// as the EDE does. It keeps the name in the zone that
			// secondaries transfer (a zone cannot hold a name with
			// nothing at or below it), so they answer NODATA as we do.
			r.answer = append(r.answer, &dns.TXT{Hdr: header(q.name, dns.TypeTXT, ttl), Txt: []string{txtEscape(sel.Summary())}})
		}
	case dns.TypeANY:
		r.answer = append(r.answer, hinfoRFC8482(q.name, ttl))
	}
	if sel.FailOpen || len(sel.Instances) == 0 {
		r.ede = sel.Summary()
	}
}

// srv appends one SRV per instance, and the targets' addresses as
// additional records. Instances with the same address and port give one
// record.
func (c *Config) srv(owner string, instances []*registry.Instance, ttl uint32, r *response) {
	type endpoint struct {
		addr netip.Addr
		port uint16
	}
	var seenBuf [16]endpoint
	var targetBuf [16]netip.Addr
	seen, targets := seenBuf[:0], targetBuf[:0]
	for _, in := range instances {
		e := endpoint{in.Address, in.Port}
		if slices.Contains(seen, e) {
			continue
		}
		seen = append(seen, e)
		target := c.targetName(in.Address)
		r.answer = append(r.answer, srvRecord(owner, in, target, ttl))
		if !slices.Contains(targets, in.Address) {
			targets = append(targets, in.Address)
			r.extra = append(r.extra, addressRecord(target, in.Address, ttl))
		}
	}
}

func (c *Config) instance(q query, n name, snap *registry.Snapshot, r *response) {
	svc, ok := r.dependOn(snap, n.service)
	if !ok {
		r.rcode = dns.RcodeNameError
		return
	}
	in, ok := svc.Instance(n.id)
	if !ok {
		r.rcode = dns.RcodeNameError
		return
	}
	r.inst = in
	ttl := c.ttlOf(svc, r)
	switch q.qtype {
	case dns.TypeA, dns.TypeAAAA:
		if addrType(in.Address) == q.qtype {
			r.answer = append(r.answer, addressRecord(q.name, in.Address, ttl))
		}
	case dns.TypeSRV:
		c.srv(q.name, []*registry.Instance{in}, ttl, r)
	case dns.TypeTXT:
		r.answer = append(r.answer, metaRecords(q.name, in, ttl)...)
	case dns.TypeANY:
		r.answer = append(r.answer, hinfoRFC8482(q.name, ttl))
	}
}

// dependOn looks a service up and records that the answer depends on it.
func (r *response) dependOn(snap *registry.Snapshot, service string) (*registry.Service, bool) {
	svc, ok := snap.Service(service)
	r.dep = dependency{service: service, svc: svc}
	return svc, ok
}

// dependOnAll records that the answer depends on the whole registry.
func (r *response) dependOnAll(snap *registry.Snapshot) {
	r.dep = dependency{all: true, version: snap.Version()}
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
