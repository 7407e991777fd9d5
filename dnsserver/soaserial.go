package dnsserver

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

// Answers carry the discovery zone's SOA (the apex SOA, and the authority
// section of every negative answer) with the serial of the state they were
// computed from. The answer core builds SOAs without knowing the serial;
// stampSerial sets it on the way out. The UDP cache keeps the offsets of
// those serials in each packed answer and writes the current serial there
// on every hit, so that a new serial neither serves a stale SOA nor
// invalidates every cached negative answer.

// stampSerial replaces, in rrs, every SOA owned by the discovery domain
// with a copy carrying serial (records from zone files are shared and
// never modified).
func stampSerial(rrs []dns.RR, domain string, serial uint32) {
	for i, rr := range rrs {
		if soa, ok := rr.(*dns.SOA); ok && soa.Serial != serial && equalFold(soa.Hdr.Name, domain) {
			rrs[i] = withSerial(soa, serial)
		}
	}
}

// hasZoneSOA reports whether m carries an SOA of the discovery domain in
// its answer or authority section.
func hasZoneSOA(m *dns.Msg, domain string) bool {
	for _, sec := range [][]dns.RR{m.Answer, m.Ns} {
		for _, rr := range sec {
			if rr.Header().Rrtype == dns.TypeSOA && equalFold(rr.Header().Name, domain) {
				return true
			}
		}
	}
	return false
}

// soaSerialOffsets returns where the serials of the SOA records owned by
// domain sit in the packed message wire (answer and authority sections).
func soaSerialOffsets(wire []byte, domain string) []int {
	if len(wire) < 12 {
		return nil
	}
	qd := int(binary.BigEndian.Uint16(wire[4:]))
	rrs := int(binary.BigEndian.Uint16(wire[6:])) + int(binary.BigEndian.Uint16(wire[8:]))
	off := 12
	var err error
	for range qd {
		if _, off, err = dns.UnpackDomainName(wire, off); err != nil || off+4 > len(wire) {
			return nil
		}
		off += 4
	}
	var offs []int
	for range rrs {
		var owner string
		if owner, off, err = dns.UnpackDomainName(wire, off); err != nil || off+10 > len(wire) {
			return offs
		}
		rrtype := binary.BigEndian.Uint16(wire[off:])
		rdlen := int(binary.BigEndian.Uint16(wire[off+8:]))
		rdata := off + 10
		if rdata+rdlen > len(wire) {
			return offs
		}
		if rrtype == dns.TypeSOA && equalFold(owner, domain) {
			p := rdata
			for range 2 { // MNAME, RNAME
				if _, p, err = dns.UnpackDomainName(wire, p); err != nil {
					return offs
				}
			}
			if p+4 <= rdata+rdlen {
				offs = append(offs, p)
			}
		}
		off = rdata + rdlen
	}
	return offs
}

// equalFold compares two domain names ignoring ASCII case.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
