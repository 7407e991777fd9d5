package dnsserver

import (
	"slices"
	"strings"

	"github.com/miekg/dns"

	"disco/registry"
)

// DNS-SD (RFC 6763) under service.D, for the instances DNS serves:
//
//	_services._dns-sd._udp.service.D PTR _<svc>._tcp.service.D   (one per service serving an instance)
//	_<svc>._tcp.service.D            PTR <id>._<svc>._tcp.service.D (one per served instance)
//	<id>._<svc>._tcp.service.D       SRV prio weight port <id>.<svc>.instance.D
//	<id>._<svc>._tcp.service.D       TXT "key=value" ... (the instance's meta)
//	b._dns-sd._udp.D                 PTR service.D

// serviceTypes answers the service type enumeration: one PTR per service
// that has an instance DNS serves. The answer depends on every service.
func (c *Config) serviceTypes(q query, snap *registry.Snapshot, r *response) {
	r.dependOnAll(snap)
	switch q.qtype {
	case dns.TypePTR:
		for _, svc := range snap.Services() {
			if len(c.Policy.Select(svc, "").Instances) > 0 {
				r.answer = append(r.answer, &dns.PTR{Hdr: header(q.name, dns.TypePTR, c.TTL), Ptr: c.serviceType(svc.Name())})
			}
		}
	case dns.TypeANY:
		r.answer = append(r.answer, hinfoRFC8482(q.name, c.TTL))
	}
}

// serviceType is the DNS-SD service type name of a service.
func (c *Config) serviceType(service string) string {
	return "_" + service + "." + dnssdTCP + "." + serviceLabel + "." + c.Domain
}

// serviceInstanceName is the DNS-SD service instance name of an instance.
func (c *Config) serviceInstanceName(in *registry.Instance) string {
	return in.ID + "." + c.serviceType(in.Service)
}

// browse answers the service instance enumeration of _svc._tcp.service.D:
// one PTR per served instance, with their SRV, TXT and addresses as
// additional records (RFC 6763 section 12.1).
func (c *Config) browse(owner string, sel registry.Selection, ttl uint32, r *response) {
	for _, in := range sel.Instances {
		inst := c.serviceInstanceName(in)
		r.answer = append(r.answer, &dns.PTR{Hdr: header(owner, dns.TypePTR, ttl), Ptr: inst})
		r.extra = append(r.extra, c.dnssdSRV(inst, in, ttl), dnssdTXT(inst, in, ttl))
		r.extra = append(r.extra, addressRecord(c.instanceName(in.Service, in.ID), in.Address, ttl))
	}
}

// serviceInstance answers id._svc._tcp.service.D for an instance DNS
// serves: SRV (with the target's address as additional record, RFC 6763
// section 12.2) and TXT.
func (c *Config) serviceInstance(q query, n name, snap *registry.Snapshot, r *response) {
	svc, ok := r.dependOn(snap, n.service)
	if !ok {
		r.rcode = dns.RcodeNameError
		return
	}
	var in *registry.Instance
	for _, s := range c.Policy.Select(svc, "").Instances {
		if s.ID == n.id {
			in = s
			break
		}
	}
	if in == nil {
		r.rcode = dns.RcodeNameError
		return
	}
	ttl := c.ttlOf(svc, r)
	switch q.qtype {
	case dns.TypeSRV:
		r.answer = append(r.answer, c.dnssdSRV(q.name, in, ttl))
		r.extra = append(r.extra, addressRecord(c.instanceName(in.Service, in.ID), in.Address, ttl))
	case dns.TypeTXT:
		r.answer = append(r.answer, dnssdTXT(q.name, in, ttl))
	case dns.TypeANY:
		r.answer = append(r.answer, hinfoRFC8482(q.name, ttl))
	}
}

func (c *Config) dnssdSRV(owner string, in *registry.Instance, ttl uint32) dns.RR {
	return srvRecord(owner, in, c.instanceName(in.Service, in.ID), ttl)
}

// dnssdTXT is the DNS-SD TXT record of an instance (RFC 6763 section 6):
// one record, one "key=value" string per meta entry sorted by key, a key
// that differs from an earlier one only in case left out (keys are
// case-insensitive; section 6.4), and a single empty string when there is
// no meta (section 6.1).
func dnssdTXT(owner string, in *registry.Instance, ttl uint32) dns.RR {
	txt := make([]string, 0, len(in.Meta))
	var seen []string
	for _, k := range sortedKeys(in.Meta) {
		lk := strings.ToLower(k)
		if slices.Contains(seen, lk) {
			continue
		}
		seen = append(seen, lk)
		txt = append(txt, txtEscape(k+"="+in.Meta[k]))
	}
	if len(txt) == 0 {
		txt = []string{""}
	}
	return &dns.TXT{Hdr: header(owner, dns.TypeTXT, ttl), Txt: txt}
}

// browseDomain answers b._dns-sd._udp.D: browse service.D.
func (c *Config) browseDomain(q query, r *response) {
	switch q.qtype {
	case dns.TypePTR:
		r.answer = append(r.answer, &dns.PTR{Hdr: header(q.name, dns.TypePTR, c.TTL), Ptr: serviceLabel + "." + c.Domain})
	case dns.TypeANY:
		r.answer = append(r.answer, hinfoRFC8482(q.name, c.TTL))
	}
}
