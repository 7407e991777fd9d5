package admin

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"disco/registry"
)

// Explainer answers a DNS question the way the DNS server answers it now,
// through the same code, and says why. The DNS server has one; the program
// that wires the parts together hands it to the API.
type Explainer interface {
	Explain(name string, qtype uint16) DNSAnswer
}

// DNSAnswer is an Explainer's answer to one question.
type DNSAnswer struct {
	// Msg is the response (before shuffling and truncation).
	Msg *dns.Msg
	// Version is the registry version answered from.
	Version uint64
	// Zone is the zone that answered ("" when none did) and Reason why the
	// answer is what it is.
	Zone, Reason string
	// TTL is the records' TTL, TTLSource where it comes from ("" without
	// records).
	TTL       uint32
	TTLSource string
	// Service, Selection and Instance are what a service or instance name
	// is about (nil when none).
	Service   *registry.Service
	Selection *registry.Selection
	Instance  *registry.Instance
}

// Explanation is the answer to GET /v1/explain: what DNS answers a question
// now, and why.
type Explanation struct {
	// Name is the question's name, fully qualified, and Type its type.
	Name string `json:"name"`
	Type string `json:"type"`
	// Rcode is the response code (NOERROR, NXDOMAIN, REFUSED, ...).
	Rcode         string `json:"rcode"`
	Authoritative bool   `json:"authoritative"`
	// Zone is the zone that answered; empty when none did (REFUSED).
	Zone string `json:"zone,omitempty"`
	// Reason says why the answer is what it is.
	Reason string `json:"reason"`
	// Answer, Authority and Additional are the response's records as zone
	// file lines (the OPT record left out).
	Answer     []string `json:"answer"`
	Authority  []string `json:"authority"`
	Additional []string `json:"additional"`
	// TTL is the records' TTL and TTLSource where it comes from.
	TTL       *uint32 `json:"ttl,omitempty"`
	TTLSource string  `json:"ttl_source,omitempty"`
	// EDE is the Extended DNS Error text a query with EDNS gets.
	EDE string `json:"ede,omitempty"`
	// Index is the registry version answered from.
	Index uint64 `json:"index"`
	// Note says how real responses differ from this one.
	Note string `json:"note"`
	// Service explains each instance of a service name's service.
	Service *ServiceExplanation `json:"service,omitempty"`
	// Instance is the instance of an instance name.
	Instance *InstanceView `json:"instance,omitempty"`
}

// ServiceExplanation says which instances of a service DNS serves and why.
type ServiceExplanation struct {
	Name string `json:"name"`
	// Tag is the tag the name filters by.
	Tag string `json:"tag,omitempty"`
	// Policy is the serving policy in force for the service.
	Policy PolicyView `json:"policy"`
	// Counts counts the instances carrying the tag (all without one).
	Counts registry.Counts `json:"counts"`
	// Summary is the one-line account DNS gives in an Extended DNS Error
	// when it serves nobody or fails open.
	Summary string `json:"summary"`
	// Instances holds every instance of the service, served or not.
	Instances []InstanceReason `json:"instances"`
}

// PolicyView is the serving policy in force for one service.
type PolicyView struct {
	ServeWarning      bool `json:"serve_warning"`
	MinHealthyPercent int  `json:"min_healthy_percent"`
	// MinHealthyFrom says where the threshold comes from: the service's
	// min_healthy_percent or the server's --min-healthy-percent.
	MinHealthyFrom string `json:"min_healthy_percent_from"`
	// FailOpen is set when too few instances are healthy, so that every
	// instance not in maintenance is served.
	FailOpen bool `json:"fail_open"`
}

// InstanceReason is one instance, whether DNS serves it and why.
type InstanceReason struct {
	ID          string                `json:"id"`
	Address     string                `json:"address"`
	Port        int                   `json:"port"`
	Tags        []string              `json:"tags"`
	Status      registry.Status       `json:"status"`
	Since       time.Time             `json:"since"`
	Output      string                `json:"output"`
	LastCheck   *time.Time            `json:"last_check,omitempty"`
	Maintenance *registry.Maintenance `json:"maintenance,omitempty"`
	// Served tells whether the answer holds the instance; Reason why.
	Served bool   `json:"served"`
	Reason string `json:"reason"`
}

const explainNote = "real responses list the records in a random order, and over UDP an answer larger than the client's limit is truncated"

// explain answers GET /v1/explain?name=N&type=T.
func (s *Server) explain(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Explainer == nil {
		return errorf(http.StatusNotFound, "explain is not enabled on this server")
	}
	q := r.URL.Query()
	name := strings.TrimSpace(q.Get("name"))
	if name == "" {
		return errorf(http.StatusBadRequest, "name is required: ?name=web.service.disco.internal&type=A")
	}
	name = dns.Fqdn(name)
	if _, ok := dns.IsDomainName(name); !ok || len(name) > 255 || strings.Contains(name, "..") {
		return errorf(http.StatusBadRequest, "name %q is not a domain name", q.Get("name"))
	}
	qtype := dns.TypeA
	if t := strings.TrimSpace(q.Get("type")); t != "" {
		var ok bool
		if qtype, ok = parseType(t); !ok {
			return errorf(http.StatusBadRequest, "type %q is not a DNS record type: give one such as A, AAAA, SRV or TXT", t)
		}
	}
	a := s.cfg.Explainer.Explain(name, qtype)
	writeJSON(w, http.StatusOK, s.explanation(name, qtype, a))
	return nil
}

// parseType reads a record type by name ("srv") or as TYPEnnn.
func parseType(t string) (uint16, bool) {
	t = strings.ToUpper(t)
	if v, ok := dns.StringToType[t]; ok {
		return v, true
	}
	if n, ok := strings.CutPrefix(t, "TYPE"); ok {
		v, err := strconv.ParseUint(n, 10, 16)
		return uint16(v), err == nil
	}
	return 0, false
}

func (s *Server) explanation(name string, qtype uint16, a DNSAnswer) Explanation {
	m := a.Msg
	e := Explanation{
		Name: name, Type: dns.Type(qtype).String(), Rcode: dns.RcodeToString[m.Rcode], Authoritative: m.Authoritative,
		Zone: a.Zone, Reason: a.Reason, Answer: rrLines(m.Answer), Authority: rrLines(m.Ns), Additional: rrLines(m.Extra),
		TTLSource: a.TTLSource, Index: a.Version, Note: explainNote,
	}
	if a.TTLSource != "" {
		e.TTL = &a.TTL
	}
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if ede, ok := o.(*dns.EDNS0_EDE); ok {
				e.EDE = ede.ExtraText
			}
		}
	}
	if a.Instance != nil {
		v := s.instanceView(a.Instance)
		e.Instance = &v
	}
	if a.Service != nil && a.Selection != nil {
		e.Service = s.serviceExplanation(a.Service, *a.Selection)
	}
	return e
}

func rrLines(rrs []dns.RR) []string {
	out := []string{}
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rr.String())
		}
	}
	return out
}

// serviceExplanation says of every instance of svc why sel serves it or not.
func (s *Server) serviceExplanation(svc *registry.Service, sel registry.Selection) *ServiceExplanation {
	from := "the server's --min-healthy-percent"
	if sel.OwnThreshold {
		from = "the service's min_healthy_percent"
	}
	e := &ServiceExplanation{
		Name: svc.Name(), Tag: sel.Tag, Counts: sel.Counts, Summary: sel.Summary(),
		Policy: PolicyView{ServeWarning: sel.Policy.ServeWarning, MinHealthyPercent: sel.MinHealthyPercent,
			MinHealthyFrom: from, FailOpen: sel.FailOpen},
		Instances: make([]InstanceReason, 0, len(svc.Instances())),
	}
	for _, in := range svc.Instances() {
		v := s.instanceView(in)
		why := sel.Why(in)
		e.Instances = append(e.Instances, InstanceReason{
			ID: in.ID, Address: v.Address, Port: v.Port, Tags: v.Tags, Status: v.Status, Since: v.Since, Output: v.Output,
			LastCheck: v.LastCheck, Maintenance: v.Maintenance, Served: why.Served, Reason: why.Reason,
		})
	}
	return e
}
