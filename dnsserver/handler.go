package dnsserver

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"

	"disco/registry"
	"disco/tsig"
	"disco/zones"
)

// Payload sizes (RFC 6891): what we advertise, and the limits we apply to
// UDP answers.
const (
	// UDPSize is the EDNS payload size disco advertises and the largest UDP
	// answer it sends (the DNS Flag Day 2020 value).
	UDPSize = 1232
	// minUDPSize is the UDP limit without EDNS (RFC 1035).
	minUDPSize = dns.MinMsgSize
)

// Source gives the handler the registry's current snapshot.
type Source interface {
	Snapshot() *registry.Snapshot
}

// ZoneSource gives the handler the current set of static zones.
type ZoneSource interface {
	Current() *zones.Set
}

// Config is the DNS answer policy.
type Config struct {
	// Domain is the discovery domain, a canonical FQDN ("disco.internal.").
	Domain string
	// TTL is the TTL of records whose service sets none.
	TTL uint32
	// NegativeTTL is the SOA minimum: how long resolvers cache NXDOMAIN
	// and NODATA.
	NegativeTTL uint32
	// Policy selects the instances of a service that DNS serves.
	Policy registry.Policy
	// NSAddrs are the addresses of the apex NS target ns1.D.
	NSAddrs []netip.Addr
	// CacheSize is the number of pre-packed answers kept (default
	// DefaultCacheSize).
	CacheSize int
	// Serials allocates the discovery zone's SOA serials (see serial.go);
	// nil starts at Serial and counts up in memory.
	Serials *Serials
	// Serial is the first serial when Serials is nil.
	Serial uint32
	// ReverseZones are the prefixes whose in-addr.arpa. or ip6.arpa. zone
	// disco serves, each on an octet (IPv4) or nibble (IPv6) boundary.
	ReverseZones []netip.Prefix
	// TSIG holds the keys that sign requests and responses (RFC 8945); nil
	// knows no key, so every signed request gets BADKEY.
	TSIG *tsig.Keyring
	// Transfer says who may transfer the zones and how (see transfer.go).
	Transfer TransferConfig
	// Notify, when not nil, is told every zone's SOA at the start of Run
	// and again after each change: the discovery zone when its serial
	// moves, a static zone when a reload changes its serial. It must not
	// block.
	Notify func(zone string, soa *dns.SOA)
	// JournalVersions and JournalBytes bound the discovery zone's history
	// kept for IXFR (defaults DefaultJournalVersions and
	// DefaultJournalBytes).
	JournalVersions int
	JournalBytes    int
	// QueryLog, when not nil, gets one Info record per answered query (see
	// querylog.go). Nil turns the query log off; it then costs one pointer
	// check per query.
	QueryLog *slog.Logger

	// Derived by NewHandler.
	reverse []reverseZone
	addrs   *addrIndex
}

// Validate reports every problem with c.
func (c *Config) Validate() error {
	var errs []string
	if c.Domain == "" || !dns.IsFqdn(c.Domain) || c.Domain != strings.ToLower(c.Domain) {
		errs = append(errs, fmt.Sprintf("domain %q must be a lower-case fully qualified name", c.Domain))
	} else if _, ok := dns.IsDomainName(c.Domain); !ok || c.Domain == "." {
		errs = append(errs, fmt.Sprintf("domain %q is not a valid domain name", c.Domain))
	}
	if err := c.Policy.Validate(); err != nil {
		errs = append(errs, err.Error())
	}
	for _, p := range c.ReverseZones {
		if _, err := ReverseZoneName(p); err != nil {
			errs = append(errs, "reverse zone "+err.Error())
		}
	}
	if len(c.NSAddrs) == 0 {
		errs = append(errs, "at least one name server address is needed for the apex NS glue")
	}
	if err := c.Transfer.validate(c.TSIG); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("dns config: %s", strings.Join(errs, "; "))
	}
	return nil
}

// Handler answers DNS queries for the discovery domain. It implements
// Answerer; Hooks connects a Server to its metrics, query log and
// transfers.
type Handler struct {
	cfg   Config
	src   Source
	zones ZoneSource
	log   *slog.Logger
	qlog  *slog.Logger // nil: no query log
	cache *answerCache
	stats stats
	upd   *updates // nil: UPDATE is refused
	zone  *zoneTracker
	xfr   *transfers
	// waiting, set through the server's Backlog hook, reports whether a
	// UDP query waits to be read; stepping counts the transfers waiting
	// for the UDP readers to drain their sockets, and drained, signalled
	// through the Drained hook, wakes one (see xfrStream.stepAside).
	waiting  atomic.Pointer[func() bool]
	stepping atomic.Int32
	drained  chan struct{}
}

// udpDrained is called by a UDP reader that found its socket empty.
func (h *Handler) udpDrained() {
	if h.stepping.Load() > 0 {
		select {
		case h.drained <- struct{}{}:
		default:
		}
	}
}

// queriesWaiting reports whether a UDP query waits to be read.
func (h *Handler) queriesWaiting() bool {
	if f := h.waiting.Load(); f != nil {
		return (*f)()
	}
	return false
}

// NewHandler returns a handler answering from the registry src and the
// static zones zs (nil: none) with the policy cfg, which must be valid.
func NewHandler(cfg Config, src Source, zs ZoneSource, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "dns")
	cfg.reverse = reverseZones(cfg.ReverseZones)
	cfg.addrs = newAddrIndex(cfg.reverse)
	h := &Handler{cfg: cfg, src: src, zones: zs, log: log, qlog: cfg.QueryLog, cache: newAnswerCache(cfg.CacheSize),
		drained: make(chan struct{}, 1)}
	h.zone = newZoneTracker(&h.cfg, src, zs, log)
	h.xfr = newTransfers(cfg.Transfer)
	return h
}

// Run keeps the discovery zone's serial and history current as the
// registry and the zones change, and tells Config.Notify about every zone
// at the start and after each change, until ctx is done.
func (h *Handler) Run(ctx context.Context) error {
	return h.zone.run(ctx)
}

// Respond answers req as received over UDP (udp) or TCP. It returns nil
// when req must get no answer (it is itself a response).
func (h *Handler) Respond(req *dns.Msg, udp bool) *dns.Msg {
	return h.respond(req, sizeLimit(req, udp))
}

// respond answers req within limit bytes.
func (h *Handler) respond(req *dns.Msg, limit int) *dns.Msg {
	m, _ := h.reply(req, h.zone.current())
	if m == nil {
		return nil
	}
	shuffleRRsets(m.Answer)
	fit(m, limit)
	return m
}

// The records of an RRset come in no particular order (RFC 2181 section
// 5), so answers spread load by shuffling them; the RRsets themselves keep
// their order: a CNAME comes before what it points to (RFC 1034 section
// 4.3.2), and clients rely on it. The answer core emits each RRset's
// records together.

// eachRRset calls f with each run of consecutive records of one RRset
// (same owner, type and class) in rrs, and the run's offset.
func eachRRset(rrs []dns.RR, f func(at int, run []dns.RR)) {
	for i := 0; i < len(rrs); {
		h := rrs[i].Header()
		j := i + 1
		for ; j < len(rrs); j++ {
			o := rrs[j].Header()
			if o.Rrtype != h.Rrtype || o.Class != h.Class || !strings.EqualFold(o.Name, h.Name) {
				break
			}
		}
		f(i, rrs[i:j])
		i = j
	}
}

// shuffleRRsets shuffles the records within each RRset of rrs.
func shuffleRRsets(rrs []dns.RR) {
	eachRRset(rrs, func(_ int, run []dns.RR) {
		rand.Shuffle(len(run), func(i, j int) { run[i], run[j] = run[j], run[i] })
	})
}

// rotateRRsets returns a copy of rrs with the records of each RRset
// rotated by k places.
func rotateRRsets(rrs []dns.RR, k int) []dns.RR {
	out := make([]dns.RR, len(rrs))
	eachRRset(rrs, func(at int, run []dns.RR) {
		for j := range run {
			out[at+j] = run[(k+j)%len(run)]
		}
	})
	return out
}

// longestRRset returns the number of records of the largest RRset in rrs.
func longestRRset(rrs []dns.RR) int {
	n := 0
	eachRRset(rrs, func(_ int, run []dns.RR) { n = max(n, len(run)) })
	return n
}

// sizeLimit is the largest answer req may get: 512 bytes over UDP without
// EDNS, the client's EDNS size capped at UDPSize with it, 64 KiB over TCP.
func sizeLimit(req *dns.Msg, udp bool) int {
	if !udp {
		return dns.MaxMsgSize
	}
	if opt := req.IsEdns0(); opt != nil {
		return int(min(max(opt.UDPSize(), minUDPSize), UDPSize))
	}
	return minUDPSize
}

// dependency is what a response was computed from, so that a cached copy
// can tell whether it still holds.
type dependency struct {
	// service is the registry service the answer depends on ("" for
	// none) and svc its version then (nil: it did not exist).
	service string
	svc     *registry.Service
	// all marks an answer that depends on the whole registry, as of
	// snapshot version.
	all     bool
	version uint64
	// addr, when valid, is the address whose registration the answer
	// depends on (a <hex>.addr.D name), and hasAddr whether it was
	// registered.
	addr    netip.Addr
	hasAddr bool
}

// reply builds the response to req from snap, in registry order (not
// shuffled) and not truncated, and says what it depends on. It returns nil
// when req must get no answer. The guards run in Knot DNS's order:
// responses are dropped; then the EDNS shape and version, the question
// count, the class, the opcode, the type; a panic becomes SERVFAIL.
func (h *Handler) reply(req *dns.Msg, st *zoneState) (m *dns.Msg, dep dependency) {
	snap, zs := st.snap, st.zs
	if req.Response {
		return nil, dep
	}
	m = new(dns.Msg)
	m.SetReply(req)
	// RD (RFC 1035 section 4.1.1) and CD (RFC 4035 section 3.1.6) are
	// copied whatever the opcode.
	m.RecursionDesired = req.RecursionDesired
	m.CheckingDisabled = req.CheckingDisabled
	m.RecursionAvailable = false
	m.Compress = true
	defer func() {
		if v := recover(); v != nil {
			h.log.Error("panic answering query", "panic", v, "question", fmt.Sprint(req.Question))
			m = new(dns.Msg)
			m.SetRcode(req, dns.RcodeServerFailure)
			dep = dependency{}
		}
	}()

	opt, optOK := ednsOf(req)
	if opt != nil {
		m.SetEdns0(UDPSize, opt.Do())
	}
	switch {
	case !optOK:
		m.Rcode = dns.RcodeFormatError
		return m, dep
	case opt != nil && opt.Version() != 0:
		m.Rcode = dns.RcodeBadVers // before all else (RFC 6891 section 6.1.3)
		return m, dep
	case len(req.Question) == 0 && req.Opcode != dns.OpcodeQuery:
		m.Rcode = dns.RcodeNotImplemented
		return m, dep
	case len(req.Question) != 1:
		m.Rcode = dns.RcodeFormatError
		return m, dep
	}
	q := req.Question[0]
	switch {
	case q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY && q.Qclass != dns.ClassCHAOS:
		m.Rcode = dns.RcodeRefused
		return m, dep
	case req.Opcode == dns.OpcodeUpdate:
		// UPDATE is served by Serve (updateResponse), which has the
		// message as received for its TSIG; here there is no write.
		m.Rcode = dns.RcodeRefused
		return m, dep
	case req.Opcode != dns.OpcodeQuery:
		m.Rcode = dns.RcodeNotImplemented
		return m, dep
	case q.Qtype == 0: // reserved (RFC 6895 section 3.1)
		m.Rcode = dns.RcodeNotImplemented
		return m, dep
	case q.Qclass == dns.ClassCHAOS: // no version.bind or id.server
		m.Rcode = dns.RcodeRefused
		return m, dep
	case q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR:
		m.Rcode = dns.RcodeRefused // no zone transfers
		return m, dep
	case q.Qtype == dns.TypeOPT || q.Qtype == dns.TypeTSIG || q.Qtype == dns.TypeTKEY:
		// Meta types name no data (RFC 6895 section 3.1); BIND answers
		// FORMERR too.
		m.Rcode = dns.RcodeFormatError
		return m, dep
	}

	canon := registry.Fold(q.Name)
	r := h.cfg.answer(query{name: q.Name, canon: canon, qtype: q.Qtype}, snap, zs)
	m.Rcode = r.rcode
	m.Authoritative = r.aa
	m.Answer = r.answer
	m.Ns = r.ns
	m.Extra = append(r.extra, m.Extra...) // OPT stays last
	stampSerial(m.Answer, h.cfg.Domain, st.serial)
	stampSerial(m.Ns, h.cfg.Domain, st.serial)
	if z := h.cfg.reverseZoneOf(canon); z != nil {
		// A reverse zone shares the discovery zone's serial; its answers
		// depend on the whole registry, so a cached one never outlives it.
		stampSerial(m.Answer, z.origin, st.serial)
		stampSerial(m.Ns, z.origin, st.serial)
	}
	if r.ede != "" && opt != nil {
		resOpt := m.IsEdns0()
		resOpt.Option = append(resOpt.Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeOther, ExtraText: r.ede})
	}
	return m, r.dep
}

// ednsOf returns the query's OPT record (nil without one) and whether the
// EDNS shape is valid: at most one OPT, in the additional section, owned by
// the root (RFC 6891 section 6.1.1). An invalid shape yields no OPT, so the
// FORMERR that follows carries none.
func ednsOf(req *dns.Msg) (*dns.OPT, bool) {
	for _, sec := range [][]dns.RR{req.Answer, req.Ns} {
		for _, rr := range sec {
			if rr.Header().Rrtype == dns.TypeOPT {
				return nil, false
			}
		}
	}
	var opt *dns.OPT
	for _, rr := range req.Extra {
		o, ok := rr.(*dns.OPT)
		if !ok {
			continue
		}
		if opt != nil || o.Hdr.Name != "." {
			return nil, false
		}
		opt = o
	}
	return opt, true
}

// fit trims m to size bytes with whole records only. Additional records go
// first and silently; TC is set only when answer or authority records had
// to go (RFC 2181 section 9).
func fit(m *dns.Msg, size int) {
	if m.Len() <= size {
		return
	}
	answers, authority := len(m.Answer), len(m.Ns)
	m.Truncate(size)
	m.Truncated = len(m.Answer) < answers || len(m.Ns) < authority
	m.Compress = true
}
