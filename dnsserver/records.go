package dnsserver

import (
	"net/netip"
	"strings"

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

// targetName is the SRV target of an instance: <hex>.addr.D, where <hex>
// is the address in hex: 8 digits for IPv4, 32 for IPv6 (see
// parseAddrLabel).
func (c *Config) targetName(a netip.Addr) string {
	const digits = "0123456789abcdef"
	raw := a.As16()
	v := raw[:]
	if a.Is4() {
		v = v[12:]
	}
	var b strings.Builder // one allocation
	b.Grow(2*len(v) + len(addrLabel) + 2 + len(c.Domain))
	for _, x := range v {
		b.WriteByte(digits[x>>4])
		b.WriteByte(digits[x&0xf])
	}
	b.WriteByte('.')
	b.WriteString(addrLabel)
	b.WriteByte('.')
	b.WriteString(c.Domain)
	return b.String()
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
		out = append(out, &dns.TXT{Hdr: header(owner, dns.TypeTXT, ttl), Txt: []string{txtEscape(k + "=" + in.Meta[k])}})
	}
	return out
}

// hinfoRFC8482 is the minimal answer to an ANY query (RFC 8482 section 4.2).
func hinfoRFC8482(owner string, ttl uint32) dns.RR {
	return &dns.HINFO{Hdr: header(owner, dns.TypeHINFO, ttl), Cpu: "RFC8482", Os: ""}
}

// txtEscape turns a TXT character-string into the form miekg/dns packs
// byte for byte: a backslash would otherwise start an escape.
func txtEscape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	return strings.ReplaceAll(s, `\`, `\\`)
}

// txtUnescape turns a TXT character-string as miekg/dns unpacks it
// (presentation form: \", \\ and \DDD escapes) into its bytes.
func txtUnescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		if i+2 < len(s) && isDigit(s[i]) && isDigit(s[i+1]) && isDigit(s[i+2]) {
			b.WriteByte(byte((int(s[i]-'0')*100 + int(s[i+1]-'0')*10 + int(s[i+2]-'0')) & 0xff))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
