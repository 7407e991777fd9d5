package dnsserver

import (
	"net/netip"

	"github.com/miekg/dns"

	"disco/registry"
)

// SOA timers of the discovery domain's synthesized SOA.
const (
	soaRefresh = 3600
	soaRetry   = 600
	soaExpire  = 86400
)

func header(owner string, rrtype uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: owner, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

// addressRecord returns the A or AAAA record for a.
func addressRecord(owner string, a netip.Addr, ttl uint32) dns.RR {
	if a.Is4() {
		return &dns.A{Hdr: header(owner, dns.TypeA, ttl), A: a.AsSlice()}
	}
	return &dns.AAAA{Hdr: header(owner, dns.TypeAAAA, ttl), AAAA: a.AsSlice()}
}

// addrType returns the record type that carries a.
func addrType(a netip.Addr) uint16 {
	if a.Is4() {
		return dns.TypeA
	}
	return dns.TypeAAAA
}

// targetName is the SRV target of an instance: <hex>.addr.D.
func (c *Config) targetName(a netip.Addr) string {
	return addrLabelOf(a) + "." + addrLabel + "." + c.Domain
}

func srvRecord(owner string, in *registry.Instance, target string, ttl uint32) dns.RR {
	return &dns.SRV{Hdr: header(owner, dns.TypeSRV, ttl),
		Priority: in.Priority, Weight: in.Weight, Port: in.Port, Target: target}
}

// metaRecords returns one TXT record per metadata entry, "key=value",
// sorted by key.
func metaRecords(owner string, in *registry.Instance, ttl uint32) []dns.RR {
	out := make([]dns.RR, 0, len(in.Meta))
	for _, k := range sortedKeys(in.Meta) {
		out = append(out, &dns.TXT{Hdr: header(owner, dns.TypeTXT, ttl), Txt: []string{k + "=" + in.Meta[k]}})
	}
	return out
}

// hinfoRFC8482 is the minimal answer to an ANY query (RFC 8482 section 4.2).
func hinfoRFC8482(owner string, ttl uint32) dns.RR {
	return &dns.HINFO{Hdr: header(owner, dns.TypeHINFO, ttl), Cpu: "RFC8482", Os: ""}
}
