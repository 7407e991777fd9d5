package dnsserver

import (
	"encoding/hex"
	"net/netip"
	"strings"
)

// kind is what a name under the discovery domain refers to.
type kind uint8

const (
	kindNone            kind = iota // no such name
	kindApex                        // D
	kindNS                          // ns1.D, the apex NS target
	kindEmpty                       // an empty non-terminal: service.D, addr.D, instance.D, _x.service.D
	kindService                     // [tag.]svc.service.D, _svc._proto|_tag.service.D
	kindInstanceZone                // svc.instance.D: exists when svc does
	kindInstance                    // id.svc.instance.D
	kindAddr                        // hex.addr.D
	kindStatic                      // another name under D, left to a zone file for D
	kindServiceTypes                // _services._dns-sd._udp.service.D (RFC 6763 section 9)
	kindServiceInstance             // id._svc._tcp.service.D, a DNS-SD service instance
	kindBrowse                      // b._dns-sd._udp.D, the browsing domain (RFC 6763 section 11)
)

// nsLabel is the first label of the apex NS target, ns1.D.
const nsLabel = "ns1"

// Subtrees of the discovery domain that belong to the registry.
const (
	serviceLabel  = "service"
	addrLabel     = "addr"
	instanceLabel = "instance"
)

// DNS-SD labels (RFC 6763).
const (
	dnssdTCP      = "_tcp"
	dnssdServices = "_services._dns-sd._udp"
	dnssdBrowse   = "b._dns-sd._udp"
)

// name is a parsed discovery name. Its strings are slices of the canonical
// query name, so parsing allocates nothing.
type name struct {
	kind    kind
	service string
	tag     string
	id      string
	addr    netip.Addr
	// dnssd marks _svc._tcp.service.D, which also answers the DNS-SD
	// instance enumeration (PTR).
	dnssd bool
	// ent marks _dns-sd._udp.service.D: the parent of the service type
	// enumeration, so an empty non-terminal when no service dns-sd exists.
	ent bool
}

// parseName interprets qname, a canonical (lower-case, fully qualified)
// name, relative to the canonical domain. inDomain is false when qname is
// not at or under domain.
func parseName(qname, domain string) (n name, inDomain bool) {
	if qname == domain {
		return name{kind: kindApex}, true
	}
	if len(qname) <= len(domain) || !strings.HasSuffix(qname, domain) || qname[len(qname)-len(domain)-1] != '.' {
		return name{}, false
	}
	rel := qname[:len(qname)-len(domain)-1] // "web.service"
	rest, last := cutLast(rel)
	switch last {
	case serviceLabel:
		return parseService(rest), true
	case addrLabel:
		if rest == "" {
			return name{kind: kindEmpty}, true
		}
		if a, ok := parseAddrLabel(rest); ok {
			return name{kind: kindAddr, addr: a}, true
		}
		return name{}, true
	case instanceLabel:
		if rest == "" {
			return name{kind: kindEmpty}, true
		}
		rest, svc := cutLast(rest)
		switch {
		case rest == "":
			return name{kind: kindInstanceZone, service: svc}, true
		case !strings.Contains(rest, "."):
			return name{kind: kindInstance, service: svc, id: rest}, true
		}
		return name{}, true
	case nsLabel:
		if rest == "" {
			return name{kind: kindNS}, true
		}
	case "_udp":
		switch rel {
		case dnssdBrowse:
			return name{kind: kindBrowse}, true
		case "_udp", "_dns-sd._udp":
			return name{kind: kindEmpty}, true // parents of the browsing domain name
		}
	}
	return name{kind: kindStatic}, true
}

// parseService interprets the labels before "service.D".
func parseService(rest string) name {
	if rest == "" {
		return name{kind: kindEmpty}
	}
	first, second, two := strings.Cut(rest, ".")
	if !two {
		if strings.HasPrefix(first, "_") {
			// _tcp.service.D and _tag.service.D are parents of RFC 2782 names.
			return name{kind: kindEmpty}
		}
		return name{kind: kindService, service: first}
	}
	if strings.Contains(second, ".") {
		return parseDNSSD(rest, first, second)
	}
	u1, u2 := strings.HasPrefix(first, "_"), strings.HasPrefix(second, "_")
	switch {
	case u1 && u2: // _svc._tcp, _svc._udp, _svc._tag
		n := name{kind: kindService, service: first[1:], dnssd: second == dnssdTCP, ent: rest == "_dns-sd._udp"}
		if second != dnssdTCP && second != "_udp" {
			n.tag = second[1:]
		}
		return n
	case !u1 && !u2: // tag.svc
		return name{kind: kindService, service: second, tag: first}
	}
	return name{}
}

// parseDNSSD interprets three labels before "service.D": the service type
// enumeration and DNS-SD service instance names.
func parseDNSSD(rest, first, second string) name {
	if rest == dnssdServices {
		return name{kind: kindServiceTypes}
	}
	svc, proto, ok := strings.Cut(second, ".")
	if !ok || proto != dnssdTCP || !strings.HasPrefix(svc, "_") || strings.HasPrefix(first, "_") {
		return name{}
	}
	return name{kind: kindServiceInstance, service: svc[1:], id: first}
}

// cutLast splits s at its last dot: "a.b.c" -> "a.b", "c".
func cutLast(s string) (rest, last string) {
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return "", s
}

// parseAddrLabel decodes an addr label: 8 hex digits for IPv4, 32 for IPv6.
func parseAddrLabel(s string) (netip.Addr, bool) {
	var buf [16]byte
	switch len(s) {
	case 8:
		if _, err := hex.Decode(buf[:4], []byte(s)); err != nil {
			return netip.Addr{}, false
		}
		return netip.AddrFrom4([4]byte(buf[:4])), true
	case 32:
		if _, err := hex.Decode(buf[:], []byte(s)); err != nil {
			return netip.Addr{}, false
		}
		a := netip.AddrFrom16(buf)
		if a.Is4In6() {
			return netip.Addr{}, false // written as 8 digits
		}
		return a, true
	}
	return netip.Addr{}, false
}
