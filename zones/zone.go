// Package zones loads static RFC 1035 zone files and answers queries from
// them authoritatively: exact matches, CNAME chains across the loaded zones,
// RFC 4592 wildcards, delegations as referrals with glue, and NXDOMAIN or
// NODATA with the zone's SOA.
//
// A Zone is parsed and validated once and never changes afterwards; a Set
// holds the zones that are served together and answers with longest-suffix
// matching; a Manager keeps the current Set for a directory and swaps in a
// new one atomically on Reload, keeping the last good version of any file
// that fails to load.
//
// Names passed to Find and Lookup must be canonical: lower-case and fully
// qualified (dns.CanonicalName). Records returned by this package are shared
// with the zone and must not be modified; the slices in a Result are the
// caller's own.
package zones

import (
	"slices"

	"github.com/miekg/dns"
)

// Zone is one parsed and validated zone. It is immutable.
type Zone struct {
	origin  string
	file    string
	soaLine int
	labels  int // labels in origin
	soa     *dns.SOA
	negSOA  *dns.SOA // soa with TTL min(TTL, Minttl), for negative answers
	ns      []dns.RR
	nodes   map[string]*node
	apex    *node
	records int
}

// node is one name in a zone: a name with records, an empty non-terminal,
// or a name below a delegation (glue).
type node struct {
	name string
	sets []rrset
	// cname is the name's CNAME record and target its canonical target.
	cname  *dns.CNAME
	target string
	// cut marks a delegation point: a name below the apex with NS records.
	cut bool
	// glue holds the A and AAAA records of a delegation's in-zone name
	// servers.
	glue []dns.RR
	// wild is the "*." child of this name, the source of synthesis for
	// names below it that do not exist.
	wild *node
}

// rrset is the records of one type at one name.
type rrset struct {
	rrtype uint16
	rrs    []dns.RR
	// extra holds the A and AAAA records, from this zone, of the names the
	// records point to (MX exchanges, SRV targets, NS hosts).
	extra []dns.RR
}

func (n *node) set(t uint16) *rrset {
	for i := range n.sets {
		if n.sets[i].rrtype == t {
			return &n.sets[i]
		}
	}
	return nil
}

// Origin returns the zone's apex as a canonical lower-case FQDN.
func (z *Zone) Origin() string { return z.origin }

// File returns the path or name the zone was read from.
func (z *Zone) File() string { return z.file }

// SOA returns the zone's SOA record. It is shared and must not be modified.
func (z *Zone) SOA() *dns.SOA { return z.soa }

// NegativeSOA returns the SOA record for negative answers: its TTL is the
// lower of the SOA's own TTL and its MINIMUM field (RFC 2308). It is shared
// and must not be modified.
func (z *Zone) NegativeSOA() *dns.SOA { return z.negSOA }

// NS returns the apex NS RRset. The slice is the caller's; the records are
// shared and must not be modified.
func (z *Zone) NS() []dns.RR { return append([]dns.RR(nil), z.ns...) }

// Records returns the number of records in the zone (duplicates removed).
func (z *Zone) Records() int { return z.records }

// RRs returns every record of the zone, as a zone transfer carries it: the
// SOA first, then the other records name by name (names in sorted order,
// types in the order of the file). The slice is the caller's; the records
// are shared and must not be modified.
func (z *Zone) RRs() []dns.RR {
	names := make([]string, 0, len(z.nodes))
	for name := range z.nodes {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]dns.RR, 0, z.records)
	out = append(out, z.soa)
	for _, name := range names {
		for _, set := range z.nodes[name].sets {
			if set.rrtype == dns.TypeSOA && name == z.origin {
				continue
			}
			out = append(out, set.rrs...)
		}
	}
	return out
}
