package dnsserver

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"disco/registry"
	"disco/zones"
)

// Explanation is the answer DNS gives to one question now, and why. It is
// computed by the same code that answers queries, from one registry
// snapshot and one set of zones.
type Explanation struct {
	// Msg is the response, as a query with EDNS over TCP gets it: neither
	// shuffled nor truncated.
	Msg *dns.Msg
	// Version is the version of the registry snapshot answered from.
	Version uint64
	// Zone is the origin of the zone that answered; empty when none did.
	Zone string
	// Reason says in a sentence why the answer is what it is.
	Reason string
	// TTL is the TTL of the answer's records (of the SOA of a negative
	// answer) and TTLSource where it comes from; TTLSource is empty when
	// the answer has no record.
	TTL       uint32
	TTLSource string
	// Service is the service a service or instance name is about, when it
	// is registered.
	Service *registry.Service
	// Selection is what the serving policy selected for a service name.
	Selection *registry.Selection
	// Instance is the instance an instance name is about.
	Instance *registry.Instance
}

// Explain answers name and qtype as a query with EDNS would be answered now,
// and says why. name need not be fully qualified.
func (h *Handler) Explain(name string, qtype uint16) Explanation {
	st := h.zone.current()
	snap, zs := st.snap, st.zs
	req := new(dns.Msg)
	req.SetQuestion(dns.Fqdn(name), qtype)
	req.RecursionDesired = false
	req.SetEdns0(UDPSize, false)
	m, _ := h.reply(req, st)
	e := Explanation{Msg: m, Version: snap.Version()}
	if m.Rcode == dns.RcodeServerFailure {
		e.Reason = "an internal error while answering (logged by the server)"
		return e
	}
	q := req.Question[0]
	// The pure core again, for what it knows beyond the message; it is
	// deterministic, so it gives what reply gave.
	r := h.cfg.answer(query{name: q.Name, canon: registry.Fold(q.Name), qtype: qtype}, snap, zs)
	if m.Rcode != r.rcode {
		// The guards answered before any zone was consulted.
		e.Reason = fmt.Sprintf("%s queries get %s before any name is looked at", dns.TypeToString[qtype], dns.RcodeToString[m.Rcode])
		return e
	}
	e.Zone, e.Service = r.zone, r.dep.svc
	if r.name.kind == kindService && e.Service != nil {
		sel := r.sel
		e.Selection = &sel
	}
	e.Instance = r.inst
	e.TTL, e.TTLSource = h.ttlSource(m, r, zs)
	e.Reason = h.reason(q.Name, qtype, m, r, zs)
	return e
}

// ttlSource returns the TTL of the answer and where it comes from.
func (h *Handler) ttlSource(m *dns.Msg, r response, zs *zones.Set) (uint32, string) {
	if len(m.Answer) > 0 {
		ttl := m.Answer[0].Header().Ttl
		switch r.ttlFrom {
		case ttlService:
			return ttl, "the service's dns_ttl setting"
		case ttlZoneFile:
			if _, cname := m.Answer[len(m.Answer)-1].(*dns.CNAME); !cname && r.name.kind != kindNone {
				return ttl, "the zone file of " + r.zone + " for the CNAME; the discovery records it leads to carry their own"
			}
			return ttl, "the zone file of " + r.zone
		}
		return ttl, "the server's --dns-ttl (the service sets no dns_ttl)"
	}
	for _, rr := range m.Ns {
		soa, ok := rr.(*dns.SOA)
		if !ok {
			continue
		}
		if h.cfg.domainZone(zs) == nil && soa.Hdr.Name == h.cfg.Domain {
			return soa.Hdr.Ttl, "the negative TTL: the SOA minimum, --negative-ttl (at most --dns-ttl)"
		}
		return soa.Hdr.Ttl, "the negative TTL: the SOA of the zone file of " + soa.Hdr.Name
	}
	return 0, ""
}

// reason says why the answer r is what it is.
func (h *Handler) reason(qname string, qtype uint16, m *dns.Msg, r response, zs *zones.Set) string {
	typ := dns.TypeToString[qtype]
	if r.zone == "" {
		served := []string{h.cfg.Domain + " (the discovery domain)"}
		if zs != nil {
			for _, z := range zs.Zones() {
				if z.Origin() != h.cfg.Domain {
					served = append(served, z.Origin())
				}
			}
		}
		return fmt.Sprintf("%s is outside every zone this server answers for: %s; disco does no recursion",
			qname, strings.Join(served, ", "))
	}
	if r.ttlFrom == ttlZoneFile { // only the static zones set it
		return zoneReason(qname, typ, m, r)
	}
	return h.discoveryReason(typ, m, r)
}

func zoneReason(qname, typ string, m *dns.Msg, r response) string {
	from := "from the zone file of " + r.zone
	switch {
	case !m.Authoritative && len(m.Ns) > 0:
		return fmt.Sprintf("%s is delegated: a referral %s to %s", qname, from, nsTargets(m.Ns))
	case m.Rcode == dns.RcodeNameError:
		return fmt.Sprintf("no such name %s (NXDOMAIN, negative answer with the SOA)", from)
	case len(m.Answer) == 0:
		return fmt.Sprintf("%s exists %s without %s records (NODATA, with the SOA)", qname, from, typ)
	}
	if _, ok := m.Answer[0].(*dns.CNAME); ok && r.name.kind != kindNone {
		return fmt.Sprintf("answered %s, following a CNAME into the discovery domain", from)
	}
	return "answered " + from
}

func nsTargets(rrs []dns.RR) string {
	var out []string
	for _, rr := range rrs {
		if ns, ok := rr.(*dns.NS); ok {
			out = append(out, ns.Ns)
		}
	}
	return strings.Join(out, ", ")
}

// discoveryReason explains an answer from the registry's names.
func (h *Handler) discoveryReason(typ string, m *dns.Msg, r response) string {
	n := r.name
	nodata := len(m.Answer) == 0 && m.Rcode == dns.RcodeSuccess
	switch n.kind {
	case kindApex:
		return "the apex of the discovery domain: its SOA and NS are synthesized (SOA, NS and ANY answer here)"
	case kindNS:
		return "the discovery domain's name server; its addresses come from --ns-addr"
	case kindEmpty:
		return "an empty non-terminal of the discovery domain: it exists but holds no records (NODATA, never NXDOMAIN)"
	case kindAddr:
		return fmt.Sprintf("the SRV target name of %s: it answers that address (A or AAAA)", n.addr)
	case kindStatic:
		return "no such name in the discovery domain: its names are <service>.service, <tag>.<service>.service, _<service>._tcp.service, <hex>.addr and <id>.<service>.instance"
	case kindNone:
		return "not a name of the discovery domain's scheme: <service>.service, <tag>.<service>.service, _<service>._tcp.service, <hex>.addr, <id>.<service>.instance"
	case kindInstanceZone:
		if r.dep.svc == nil {
			return fmt.Sprintf("no service %q is registered", n.service)
		}
		return fmt.Sprintf("the parent of the instances of %s: exists without records (NODATA)", n.service)
	case kindInstance:
		switch {
		case r.dep.svc == nil:
			return fmt.Sprintf("no service %q is registered", n.service)
		case r.inst == nil:
			return fmt.Sprintf("service %s has no instance %q", n.service, n.id)
		case nodata:
			return fmt.Sprintf("instance %s of %s has no %s record (instance names answer A or AAAA by address, SRV, and TXT with the metadata)", n.id, n.service, typ)
		}
		return fmt.Sprintf("instance %s of %s, whatever its health (it is %s): instance names are for debugging", n.id, n.service, r.inst.Status())
	case kindService:
		sel := r.sel
		switch {
		case r.dep.svc == nil:
			return fmt.Sprintf("no service %q is registered", n.service)
		case !sel.Exists:
			return fmt.Sprintf("service %s has no instance carrying tag %q", n.service, n.tag)
		case nodata && len(sel.Instances) > 0:
			return fmt.Sprintf("service names answer A, AAAA and SRV; no served instance has a %s record", typ)
		case nodata:
			return "no instance is served (NODATA): " + sel.Summary()
		}
		what := "service " + n.service
		if n.tag != "" {
			what += " with tag " + n.tag
		}
		msg := fmt.Sprintf("%s: %d of %d instances served", what, len(sel.Instances), sel.Counts.Total())
		if sel.FailOpen {
			msg += "; " + sel.Summary()
		}
		return msg
	}
	return ""
}
