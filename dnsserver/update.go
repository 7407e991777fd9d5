package dnsserver

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"disco/registry"
	"disco/zones"
)

// DNS UPDATE (RFC 2136) of the discovery domain registers and deregisters
// instances. The only names it writes are instance names, and the only
// records there are the ones a registration maps onto:
//
//	<id>.<service>.instance.D  A or AAAA  the address (one)
//	<id>.<service>.instance.D  SRV        priority, weight, port; target the same name (one)
//	<id>.<service>.instance.D  TXT        "key=value" strings: the meta
//
// Deleting every RRset of the name deregisters the instance. An instance
// that keeps a registration's other fields (tags, checks, maintenance)
// keeps them. One message is planned against the registry's head and
// written as one atomic, durable batch, or refused whole.

// MaxUpdateRecords is the most prerequisite and update records one UPDATE
// may carry: a batch of a few dozen instances, each with some meta.
const MaxUpdateRecords = 500

// updateError is why an UPDATE is refused: its rcode, and an Extended DNS
// Error (RFC 8914) that says what is wrong and what is allowed.
type updateError struct {
	rcode int
	ede   uint16
	text  string
}

func (e *updateError) Error() string {
	return fmt.Sprintf("%s: %s", dns.RcodeToString[e.rcode], e.text)
}

func refuse(rcode int, ede uint16, format string, args ...any) *updateError {
	return &updateError{rcode: rcode, ede: ede, text: fmt.Sprintf(format, args...)}
}

// mappingHelp says what UPDATE may write; it ends the EDE text of names
// and types outside the mapping.
const mappingHelp = "UPDATE writes only <id>.<service>.instance.%s: A or AAAA (address), SRV (port, priority, weight; target the same name), TXT \"key=value\" (meta)"

// checkUpdate applies the checks that need no registry state: the zone
// section (RFC 2136 section 3.1), who signed the request (key, the TSIG
// key that validly signed it, "" for none; allowed lists the keys that may
// update) and the size.
func (c *Config) checkUpdate(req *dns.Msg, key string, allowed []string, zs *zones.Set) *updateError {
	if len(req.Question) != 1 || req.Question[0].Qtype != dns.TypeSOA {
		return refuse(dns.RcodeFormatError, dns.ExtendedErrorCodeOther,
			"the zone section must hold one record of type SOA naming the zone (%s)", c.Domain)
	}
	zone := dns.CanonicalName(req.Question[0].Name)
	switch {
	case req.Question[0].Qclass != dns.ClassINET:
		return refuse(dns.RcodeNotAuth, dns.ExtendedErrorCodeNotAuthoritative,
			"disco serves class IN only; updates go to %s IN", c.Domain)
	case zone == c.Domain:
	case c.servesZone(zone, zs):
		return refuse(dns.RcodeRefused, dns.ExtendedErrorCodeProhibited,
			"zone %s is served but not updatable: only %s takes updates", zone, c.Domain)
	default:
		return refuse(dns.RcodeNotAuth, dns.ExtendedErrorCodeNotAuthoritative,
			"disco is not authoritative for zone %s; updates go to %s", zone, c.Domain)
	}
	switch {
	case key == "":
		return refuse(dns.RcodeRefused, dns.ExtendedErrorCodeProhibited,
			"UPDATE of %s must be signed (TSIG) with a key allowed by --update-allow", c.Domain)
	case !slices.Contains(allowed, key):
		return refuse(dns.RcodeRefused, dns.ExtendedErrorCodeProhibited,
			"key %s may not update %s (it is not in --update-allow)", key, c.Domain)
	}
	if n := len(req.Answer) + len(req.Ns); n > MaxUpdateRecords {
		return refuse(dns.RcodeRefused, dns.ExtendedErrorCodeOther,
			"UPDATE carries %d records, at most %d are allowed in one message: split it", n, MaxUpdateRecords)
	}
	return nil
}

// servesZone reports whether zone is the apex of a zone disco serves
// besides the discovery domain.
func (c *Config) servesZone(zone string, zs *zones.Set) bool {
	if z := c.reverseZoneOf(zone); z != nil && z.origin == zone {
		return true
	}
	if zs == nil {
		return false
	}
	z := zs.Find(zone)
	return z != nil && z.Origin() == zone
}

// planUpdate evaluates the prerequisites of an UPDATE that passed
// checkUpdate against head (RFC 2136 section 3.2), checks its update
// section (section 3.4.1) and maps it onto the registry: the batch to
// write, or why the whole message is refused.
func (c *Config) planUpdate(req *dns.Msg, head *registry.Snapshot, zs *zones.Set) (registry.Batch, *updateError) {
	if err := c.prerequisites(req.Answer, head, zs); err != nil {
		return registry.Batch{}, err
	}
	drafts, err := c.updates(req.Ns, head)
	if err != nil {
		return registry.Batch{}, err
	}
	var b registry.Batch
	for _, d := range drafts {
		in, del, err := d.result()
		switch {
		case err != nil:
			return registry.Batch{}, err
		case del:
			b.Delete = append(b.Delete, d.key)
		case in != nil:
			b.Put = append(b.Put, in)
		}
	}
	return b, nil
}

// inZone reports whether the canonical name is at or under the discovery
// domain.
func (c *Config) inZone(name string) bool {
	return name == c.Domain || strings.HasSuffix(name, "."+c.Domain)
}

// prerequisites checks the prerequisite section in order, then the
// value-dependent RRsets together.
func (c *Config) prerequisites(rrs []dns.RR, head *registry.Snapshot, zs *zones.Set) *updateError {
	type rrsetKey struct {
		name  string
		rtype uint16
	}
	values := map[rrsetKey][]dns.RR{}
	var order []rrsetKey
	for _, rr := range rrs {
		h := rr.Header()
		name := dns.CanonicalName(h.Name)
		rtype := h.Rrtype
		if h.Ttl != 0 {
			return refuse(dns.RcodeFormatError, dns.ExtendedErrorCodeOther, "prerequisite %s has TTL %d; prerequisites carry TTL 0", name, h.Ttl)
		}
		if !c.inZone(name) {
			return refuse(dns.RcodeNotZone, dns.ExtendedErrorCodeOther, "prerequisite name %s is outside zone %s", name, c.Domain)
		}
		switch h.Class {
		case dns.ClassANY, dns.ClassNONE:
			if h.Rdlength != 0 {
				return refuse(dns.RcodeFormatError, dns.ExtendedErrorCodeOther, "prerequisite %s of class %s has data; it must have none", name, dns.ClassToString[h.Class])
			}
			exists := false
			if rtype == dns.TypeANY {
				exists = c.nameInUse(name, head, zs)
			} else {
				exists = len(c.zoneRRset(name, rtype, head, zs)) > 0
			}
			switch {
			case h.Class == dns.ClassANY && rtype == dns.TypeANY && !exists:
				return refuse(dns.RcodeNameError, dns.ExtendedErrorCodeOther, "prerequisite failed: %s does not exist", name)
			case h.Class == dns.ClassANY && !exists:
				return refuse(dns.RcodeNXRrset, dns.ExtendedErrorCodeOther, "prerequisite failed: %s has no %s records", name, dns.TypeToString[rtype])
			case h.Class == dns.ClassNONE && rtype == dns.TypeANY && exists:
				return refuse(dns.RcodeYXDomain, dns.ExtendedErrorCodeOther, "prerequisite failed: %s exists", name)
			case h.Class == dns.ClassNONE && exists:
				return refuse(dns.RcodeYXRrset, dns.ExtendedErrorCodeOther, "prerequisite failed: %s has %s records", name, dns.TypeToString[rtype])
			}
		case dns.ClassINET:
			k := rrsetKey{name, rtype}
			if _, ok := values[k]; !ok {
				order = append(order, k)
			}
			values[k] = append(values[k], rr)
		default:
			return refuse(dns.RcodeFormatError, dns.ExtendedErrorCodeOther, "prerequisite %s has class %s; want IN, ANY or NONE", name, dns.ClassToString[h.Class])
		}
	}
	for _, k := range order {
		if !sameRRset(values[k], c.zoneRRset(k.name, k.rtype, head, zs)) {
			return refuse(dns.RcodeNXRrset, dns.ExtendedErrorCodeOther, "prerequisite failed: the %s records of %s differ", dns.TypeToString[k.rtype], k.name)
		}
	}
	return nil
}

// sameRRset reports whether a and b hold the same records, TTLs aside
// (RFC 2136 section 3.2.3).
func sameRRset(a, b []dns.RR) bool {
	in := func(rr dns.RR, set []dns.RR) bool {
		return slices.ContainsFunc(set, func(x dns.RR) bool { return dns.IsDuplicate(rr, x) })
	}
	for _, rr := range a {
		if !in(rr, b) {
			return false
		}
	}
	for _, rr := range b {
		if !in(rr, a) {
			return false
		}
	}
	return true
}

// nameInUse reports whether some record is owned by name: an instance
// name when the instance is registered, any other name when DNS answers
// it with data.
func (c *Config) nameInUse(name string, head *registry.Snapshot, zs *zones.Set) bool {
	if n, _ := parseName(name, c.Domain); n.kind == kindInstance {
		_, ok := head.Instance(n.service, n.id)
		return ok
	}
	r := c.answer(query{name: name, canon: name, qtype: dns.TypeANY}, head, zs)
	return r.rcode == dns.RcodeSuccess && len(r.answer) > 0
}

// zoneRRset returns the records of type rtype owned by name: at an
// instance name, the records UPDATE maps the instance onto; elsewhere,
// what DNS answers.
func (c *Config) zoneRRset(name string, rtype uint16, head *registry.Snapshot, zs *zones.Set) []dns.RR {
	if n, _ := parseName(name, c.Domain); n.kind == kindInstance {
		in, ok := head.Instance(n.service, n.id)
		if !ok {
			return nil
		}
		d := newDraft(c, name, in.Key(), in)
		return d.records(rtype)
	}
	r := c.answer(query{name: name, canon: name, qtype: rtype}, head, zs)
	var out []dns.RR
	for _, rr := range r.answer {
		if rr.Header().Rrtype == rtype && dns.CanonicalName(rr.Header().Name) == name {
			out = append(out, rr)
		}
	}
	return out
}

// metaType reports whether t is a query meta-type, which no record has.
func metaType(t uint16) bool {
	switch t {
	case dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeMAILA, dns.TypeMAILB, dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY:
		return true
	}
	return false
}

// updates prescans the update section (RFC 2136 section 3.4.1), checks
// that every record lies in the instance mapping, and applies the records
// in order to drafts of the instances they name.
func (c *Config) updates(rrs []dns.RR, head *registry.Snapshot) ([]*draft, *updateError) {
	for _, rr := range rrs {
		h := rr.Header()
		name := dns.CanonicalName(h.Name)
		if !c.inZone(name) {
			return nil, refuse(dns.RcodeNotZone, dns.ExtendedErrorCodeOther, "update name %s is outside zone %s", name, c.Domain)
		}
		switch h.Class {
		case dns.ClassINET:
			if metaType(h.Rrtype) {
				return nil, refuse(dns.RcodeFormatError, dns.ExtendedErrorCodeOther, "cannot add a record of meta-type %s", dns.TypeToString[h.Rrtype])
			}
		case dns.ClassANY:
			if h.Ttl != 0 || h.Rdlength != 0 || (metaType(h.Rrtype) && h.Rrtype != dns.TypeANY) {
				return nil, refuse(dns.RcodeFormatError, dns.ExtendedErrorCodeOther, "a delete of %s %s must have TTL 0 and no data", name, dns.TypeToString[h.Rrtype])
			}
		case dns.ClassNONE:
			if h.Ttl != 0 || metaType(h.Rrtype) {
				return nil, refuse(dns.RcodeFormatError, dns.ExtendedErrorCodeOther, "a delete of one %s record of %s must have TTL 0", dns.TypeToString[h.Rrtype], name)
			}
		default:
			return nil, refuse(dns.RcodeFormatError, dns.ExtendedErrorCodeOther, "update of %s has class %s; want IN, ANY or NONE", name, dns.ClassToString[h.Class])
		}
	}
	byName := map[string]*draft{}
	var drafts []*draft
	for _, rr := range rrs {
		h := rr.Header()
		name := dns.CanonicalName(h.Name)
		n, _ := parseName(name, c.Domain)
		if n.kind != kindInstance {
			return nil, refuse(dns.RcodeRefused, dns.ExtendedErrorCodeProhibited, "%s is not an instance name: "+mappingHelp, name, c.Domain)
		}
		switch h.Rrtype {
		case dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeTXT:
		case dns.TypeANY:
			// Only as a delete (class ANY), checked above.
		default:
			return nil, refuse(dns.RcodeRefused, dns.ExtendedErrorCodeProhibited, "%s records are not part of a registration: "+mappingHelp, dns.TypeToString[h.Rrtype], c.Domain)
		}
		d := byName[name]
		if d == nil {
			k := registry.Key{Service: n.service, ID: n.id}
			base, _ := head.Instance(n.service, n.id)
			d = newDraft(c, name, k, base)
			byName[name] = d
			drafts = append(drafts, d)
		}
		if err := d.apply(rr); err != nil {
			return nil, err
		}
	}
	return drafts, nil
}

// srvData is the data of an SRV record at an instance name.
type srvData struct {
	priority, weight, port uint16
}

// draft is an instance name's records as an UPDATE changes them: the
// records of the registered instance (base, nil for none), then each
// update applied in turn.
type draft struct {
	c     *Config
	owner string // the canonical instance name
	key   registry.Key
	base  *registry.Instance
	addrs []netip.Addr
	srvs  []srvData
	meta  []string // "key=value", as bytes
}

func newDraft(c *Config, owner string, k registry.Key, base *registry.Instance) *draft {
	d := &draft{c: c, owner: owner, key: k, base: base}
	if base != nil {
		d.addrs = []netip.Addr{base.Address}
		d.srvs = []srvData{{base.Priority, base.Weight, base.Port}}
		for _, mk := range slices.Sorted(maps.Keys(base.Meta)) {
			d.meta = append(d.meta, mk+"="+base.Meta[mk])
		}
	}
	return d
}

// records returns the draft's records of type t (all of them for ANY), as
// UPDATE writes them, with TTL 0.
func (d *draft) records(t uint16) []dns.RR {
	var out []dns.RR
	for _, a := range d.addrs {
		if t == dns.TypeANY || t == addrType(a) {
			out = append(out, addressRecord(d.owner, a, 0))
		}
	}
	if t == dns.TypeANY || t == dns.TypeSRV {
		for _, s := range d.srvs {
			out = append(out, &dns.SRV{Hdr: header(d.owner, dns.TypeSRV, 0), Priority: s.priority, Weight: s.weight, Port: s.port, Target: d.owner})
		}
	}
	if t == dns.TypeANY || t == dns.TypeTXT {
		for _, m := range d.meta {
			out = append(out, &dns.TXT{Hdr: header(d.owner, dns.TypeTXT, 0), Txt: []string{txtEscape(m)}})
		}
	}
	return out
}

// apply applies one update record (RFC 2136 section 3.4.2) to the draft.
func (d *draft) apply(rr dns.RR) *updateError {
	h := rr.Header()
	switch h.Class {
	case dns.ClassANY: // delete an RRset, or all of them
		switch h.Rrtype {
		case dns.TypeANY:
			d.addrs, d.srvs, d.meta = nil, nil, nil
		case dns.TypeA, dns.TypeAAAA:
			d.addrs = slices.DeleteFunc(d.addrs, func(a netip.Addr) bool { return addrType(a) == h.Rrtype })
		case dns.TypeSRV:
			d.srvs = nil
		case dns.TypeTXT:
			d.meta = nil
		}
		return nil
	case dns.ClassNONE: // delete one record
		switch rr := rr.(type) {
		case *dns.A, *dns.AAAA:
			a, err := d.address(rr)
			if err != nil {
				return err
			}
			d.addrs = slices.DeleteFunc(d.addrs, func(x netip.Addr) bool { return x == a })
		case *dns.SRV:
			if s, ok := d.srv(rr); ok {
				d.srvs = slices.DeleteFunc(d.srvs, func(x srvData) bool { return x == s })
			}
		case *dns.TXT:
			for _, s := range rr.Txt {
				s = txtUnescape(s)
				d.meta = slices.DeleteFunc(d.meta, func(x string) bool { return x == s })
			}
		}
		return nil
	}
	switch rr := rr.(type) { // add
	case *dns.A, *dns.AAAA:
		a, err := d.address(rr)
		if err != nil {
			return err
		}
		if !slices.Contains(d.addrs, a) {
			d.addrs = append(d.addrs, a)
		}
	case *dns.SRV:
		s, ok := d.srv(rr)
		if !ok {
			return refuse(dns.RcodeRefused, dns.ExtendedErrorCodeOther,
				"the SRV target of %s must be the same name (its A or AAAA give the address), not %s", d.owner, rr.Target)
		}
		if !slices.Contains(d.srvs, s) {
			d.srvs = append(d.srvs, s)
		}
	case *dns.TXT:
		for _, s := range rr.Txt {
			if err := d.addMeta(txtUnescape(s)); err != nil {
				return err
			}
		}
	}
	return nil
}

// address reads an A or AAAA record's address.
func (d *draft) address(rr dns.RR) (netip.Addr, *updateError) {
	var ip []byte
	switch rr := rr.(type) {
	case *dns.A:
		ip = rr.A.To4()
	case *dns.AAAA:
		ip = rr.AAAA.To16()
		if a, ok := netip.AddrFromSlice(ip); ok && a.Is4In6() {
			return netip.Addr{}, refuse(dns.RcodeRefused, dns.ExtendedErrorCodeOther,
				"%s: AAAA %s is an IPv4-mapped address; give it as an A record", d.owner, a)
		}
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}, refuse(dns.RcodeFormatError, dns.ExtendedErrorCodeOther, "%s: the %s record has no address", d.owner, dns.TypeToString[rr.Header().Rrtype])
	}
	return a, nil
}

// srv reads an SRV record at the instance name; ok is false when its
// target is another name.
func (d *draft) srv(rr *dns.SRV) (srvData, bool) {
	return srvData{rr.Priority, rr.Weight, rr.Port}, dns.CanonicalName(rr.Target) == d.owner
}

// addMeta adds one TXT string; it must be key=value (RFC 6763 section 6),
// and a key may hold one value.
func (d *draft) addMeta(s string) *updateError {
	k, _, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return refuse(dns.RcodeRefused, dns.ExtendedErrorCodeOther, "%s: TXT string %q is not key=value (the meta of the instance)", d.owner, s)
	}
	for _, m := range d.meta {
		if m == s {
			return nil
		}
		if mk, _, _ := strings.Cut(m, "="); mk == k {
			return refuse(dns.RcodeRefused, dns.ExtendedErrorCodeOther,
				"%s: meta key %q is already set (TXT %q); delete that record in the same UPDATE to change it", d.owner, k, m)
		}
	}
	d.meta = append(d.meta, s)
	return nil
}

// result says what the draft writes: an instance to put, a delete (del),
// or nothing; or why it is refused.
func (d *draft) result() (in *registry.Instance, del bool, _ *updateError) {
	if len(d.addrs) == 0 && len(d.srvs) == 0 && len(d.meta) == 0 {
		return nil, d.base != nil, nil
	}
	if len(d.addrs) != 1 || len(d.srvs) != 1 {
		return nil, false, refuse(dns.RcodeRefused, dns.ExtendedErrorCodeOther,
			"%s: a registration needs one address (A or AAAA) and one SRV; this UPDATE leaves it %s and %s",
			d.owner, count(len(d.addrs), "address", "addresses"), count(len(d.srvs), "SRV", "SRVs"))
	}
	s := d.srvs[0]
	reg := registry.Registration{Address: d.addrs[0].String(), Port: int(s.port),
		Weight: ptr(int(s.weight)), Priority: ptr(int(s.priority)), Meta: map[string]string{}}
	for _, m := range d.meta {
		k, v, _ := strings.Cut(m, "=")
		reg.Meta[k] = v
	}
	if d.base != nil {
		reg.Tags, reg.Checks = d.base.Tags, d.base.Checks
	}
	in, err := registry.NewInstance(d.key.Service, d.key.ID, reg)
	if err != nil {
		return nil, false, refuse(dns.RcodeRefused, dns.ExtendedErrorCodeOther, "%s: %s", d.owner, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	if d.base != nil && sameRegistration(d.base, in) {
		return nil, false, nil // nothing changes
	}
	return in, false, nil
}

// sameRegistration reports whether b, made from a's tags and checks,
// registers what a does.
func sameRegistration(a, b *registry.Instance) bool {
	return a.Address == b.Address && a.Port == b.Port && a.Weight == b.Weight && a.Priority == b.Priority &&
		maps.Equal(a.Meta, b.Meta)
}

func count(n int, one, many string) string {
	switch n {
	case 0:
		return "no " + one
	case 1:
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func ptr[T any](v T) *T { return &v }
