package zones

import (
	"cmp"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/miekg/dns"
)

// MaxChain bounds the CNAME records followed for one answer, so that a
// chain that loops or runs long ends with what was found so far.
const MaxChain = 8

// maxLabels is more labels than a valid name can have (127).
const maxLabels = 128

// generations numbers Sets. It is shared by the process, not per Manager,
// so that any two Sets differ even when they come from different managers
// (a cache keyed by generation can never confuse them).
var generations atomic.Uint64

// Set is an immutable set of zones answered together, with longest-suffix
// matching: a zone may be the child of another.
type Set struct {
	zones    []*Zone // sorted by origin
	byOrigin map[string]*Zone
	gen      uint64
	// changed is closed when a Manager replaces this Set.
	changed chan struct{}
}

// NewSet returns a Set of zones. Two zones with the same origin are an
// error.
func NewSet(zones ...*Zone) (*Set, error) {
	s := &Set{
		zones:    slices.Clone(zones),
		byOrigin: make(map[string]*Zone, len(zones)),
		gen:      generations.Add(1),
		changed:  make(chan struct{}),
	}
	for _, z := range zones {
		if prev := s.byOrigin[z.origin]; prev != nil {
			return nil, fmt.Errorf("zone %s from %s is already loaded from %s", z.origin, z.file, prev.file)
		}
		s.byOrigin[z.origin] = z
	}
	slices.SortFunc(s.zones, func(a, b *Zone) int { return cmp.Compare(a.origin, b.origin) })
	return s, nil
}

// emptySet returns a Set with no zones.
func emptySet() *Set {
	s, _ := NewSet()
	return s
}

// Zones returns the zones sorted by origin. The slice is the caller's.
func (s *Set) Zones() []*Zone { return slices.Clone(s.zones) }

// Len returns the number of zones.
func (s *Set) Len() int { return len(s.zones) }

// Generation identifies this Set: it differs between any two Sets made in
// the process, so it can key a response cache.
func (s *Set) Generation() uint64 { return s.gen }

// Changed is closed when the Manager that serves this Set replaces it with
// a newer one (a Set made by NewSet alone never changes).
func (s *Set) Changed() <-chan struct{} { return s.changed }

// Zone returns the zone whose origin is exactly origin (canonical), or nil.
func (s *Set) Zone(origin string) *Zone { return s.byOrigin[origin] }

// Find returns the zone with the longest origin that is qname or one of
// its ancestors, or nil when qname is in no zone. qname must be canonical.
func (s *Set) Find(qname string) *Zone {
	if len(s.byOrigin) == 0 {
		return nil
	}
	for off := 0; ; {
		if z := s.byOrigin[qname[off:]]; z != nil {
			return z
		}
		next, end := dns.NextLabel(qname, off)
		if end {
			break
		}
		off = next
	}
	if qname == "." {
		return nil
	}
	return s.byOrigin["."]
}

// Result is the answer to one question from a Set. Its slices belong to the
// caller; the records in them are shared and must not be modified.
type Result struct {
	// Rcode is dns.RcodeSuccess or dns.RcodeNameError (the last name of a
	// CNAME chain does not exist, RFC 6604).
	Rcode int
	// Authoritative is false for referrals.
	Authoritative bool
	// Answer holds the records that answer the question, CNAMEs first.
	// It is empty for NODATA, NXDOMAIN, referrals, and for qtype ANY at a
	// name that exists (the caller synthesizes the RFC 8482 answer).
	Answer []dns.RR
	// Ns holds the zone's negative SOA for NODATA and NXDOMAIN, or the
	// delegation's NS records for a referral.
	Ns []dns.RR
	// Extra holds glue for a referral, and A and AAAA records of in-zone
	// targets of MX, SRV and NS answers.
	Extra []dns.RR
	// Zone is the zone that holds qname (for DS at a zone apex, its
	// parent when that is in the Set).
	Zone *Zone
}

// Lookup answers qname and qtype from the zones; ok is false when qname is
// in no zone. qname must be canonical (lower-case, fully qualified).
//
// CNAMEs are followed inside the zone and into the other zones of the Set,
// at most MaxChain of them, and never twice to the same name. Names below
// a delegation, and NS questions at the delegation point, get a referral;
// DS at a delegation point is answered by the parent.
func (s *Set) Lookup(qname string, qtype uint16) (res Result, ok bool) {
	z := s.Find(qname)
	if z == nil {
		return Result{}, false
	}
	if qtype == dns.TypeDS && qname == z.origin {
		if p := parent(qname); p != "" {
			if pz := s.Find(p); pz != nil {
				z = pz
			}
		}
	}
	res.Zone = z
	res.Authoritative = true
	var seen [MaxChain]string
	name := qname
	for hop := 0; ; hop++ {
		st := z.lookup(name, qtype)
		switch st.kind {
		case kindReferral:
			if hop == 0 {
				res.Authoritative = false
				res.Ns = append(res.Ns, st.rrs...)
				res.Extra = append(res.Extra, st.extra...)
			}
			return res, true
		case kindAnswer:
			res.Answer = append(res.Answer, st.rrs...)
			res.Extra = append(res.Extra, st.extra...)
			return res, true
		case kindNoData:
			res.Ns = append(res.Ns, z.negSOA)
			return res, true
		case kindNXDomain:
			res.Rcode = dns.RcodeNameError
			res.Ns = append(res.Ns, z.negSOA)
			return res, true
		}
		// kindCNAME
		res.Answer = append(res.Answer, st.rrs...)
		seen[hop] = name
		if hop+1 == MaxChain || slices.Contains(seen[:hop+1], st.target) {
			return res, true
		}
		next := s.Find(st.target)
		if next == nil {
			return res, true
		}
		z, name = next, st.target
	}
}

type kind uint8

const (
	kindAnswer kind = iota
	kindCNAME
	kindNoData
	kindNXDomain
	kindReferral
)

// step is the answer of one zone for one name.
type step struct {
	kind   kind
	rrs    []dns.RR // answer, CNAME, or the delegation's NS
	extra  []dns.RR
	target string // CNAME target
}

// lookup answers qname, which must be at or under the zone's origin, from
// this zone alone.
func (z *Zone) lookup(qname string, qtype uint16) step {
	var offs [maxLabels]int
	n := labelOffsets(qname, &offs)
	if n < z.labels {
		return step{kind: kindNXDomain}
	}
	// Walk down from the apex: the first delegation point on the way
	// refers; the deepest existing name is the closest encloser.
	ce := z.apex
	for i := n - z.labels - 1; i >= 0; i-- {
		nd := z.nodes[qname[offs[i]:]]
		if nd == nil {
			if ce.wild != nil {
				return ce.wild.answer(qname, qtype, true)
			}
			return step{kind: kindNXDomain}
		}
		if nd.cut && (i > 0 || qtype != dns.TypeDS) {
			return step{kind: kindReferral, rrs: nd.set(dns.TypeNS).rrs, extra: nd.glue}
		}
		ce = nd
	}
	return ce.answer(qname, qtype, false)
}

// answer answers qtype from node n; synth means n is a wildcard standing
// in for qname (RFC 4592), so the records get qname as their owner.
func (n *node) answer(qname string, qtype uint16, synth bool) step {
	if qtype == dns.TypeANY {
		return step{kind: kindAnswer}
	}
	if n.cname != nil && qtype != dns.TypeCNAME {
		st := step{kind: kindCNAME, rrs: n.set(dns.TypeCNAME).rrs, target: n.target}
		if synth {
			st.rrs = synthesize(st.rrs, qname)
		}
		return st
	}
	s := n.set(qtype)
	if s == nil {
		return step{kind: kindNoData}
	}
	if synth {
		return step{kind: kindAnswer, rrs: synthesize(s.rrs, qname), extra: s.extra}
	}
	return step{kind: kindAnswer, rrs: s.rrs, extra: s.extra}
}

// synthesize copies a wildcard's records with owner as their name.
func synthesize(rrs []dns.RR, owner string) []dns.RR {
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		c := dns.Copy(rr)
		c.Header().Name = owner
		out[i] = c
	}
	return out
}

// labelOffsets stores where each label of name starts and returns how many
// there are, or -1 for more than a name can have.
func labelOffsets(name string, offs *[maxLabels]int) int {
	if name == "." || name == "" {
		return 0
	}
	n := 0
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		if n == maxLabels {
			return -1
		}
		offs[n] = off
		n++
	}
	return n
}
