package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"disco/tsig"
	"disco/zones"
)

// Zone transfers: AXFR (RFC 5936) of the discovery zone and of every static
// zone, and IXFR (RFC 1995) with the discovery zone's journal, to the peers
// the transfer rules let in. The zone is streamed from one zoneState in
// messages of at most messageBudget bytes of records, each signed when the
// request was (RFC 8945 section 5.3.1). A write that does not complete
// within WriteTimeout ends the transfer, so a stalled peer holds neither a
// snapshot nor a goroutine for long; at most MaxTransfers run at once and
// the others wait for a slot up to QueueTimeout (then SERVFAIL), so a
// flood of transfer requests costs bounded work while queries keep being
// answered.
//
// What peers get, where the RFCs leave a choice, follows Knot DNS: AXFR
// over UDP is NOTIMP; IXFR over UDP is answered with the current SOA alone
// (RFC 1995 section 2 allows it: a secondary that is behind asks again over
// TCP); an IXFR from the current serial or a later one gets the current SOA
// alone (RFC 1995 section 4); from a serial the journal no longer holds, the
// whole zone. A transfer of a name that is not a zone apex is NOTAUTH
// inside a served zone and REFUSED outside every one; a peer that no rule
// lets in gets REFUSED.

// Defaults of TransferConfig.
const (
	DefaultMaxTransfers         = 10
	DefaultTransferWriteTimeout = 10 * time.Second
	DefaultTransferQueueTimeout = 5 * time.Second
)

// messageBudget is the most record bytes (uncompressed) put in one
// transfer message: with the header, question, OPT and TSIG it stays well
// below the 64 KiB a DNS message may have.
const messageBudget = 48 << 10

// TransferRule lets peers transfer the zones: those that sign the request
// with a key (Key, canonical name), or those whose address is in Prefix.
type TransferRule struct {
	Key    string
	Prefix netip.Prefix
}

// ParseTransferRule reads "key:NAME", a CIDR prefix ("10.0.0.0/8") or one
// address.
func ParseTransferRule(s string) (TransferRule, error) {
	if name, ok := strings.CutPrefix(s, "key:"); ok {
		if _, valid := dns.IsDomainName(name); !valid || name == "" || name == "." {
			return TransferRule{}, fmt.Errorf("transfer rule %q: %q is not a key name", s, name)
		}
		return TransferRule{Key: dns.CanonicalName(name)}, nil
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return TransferRule{Prefix: p.Masked()}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return TransferRule{Prefix: netip.PrefixFrom(a, a.BitLen())}, nil
	}
	return TransferRule{}, fmt.Errorf("transfer rule %q: want key:NAME, a CIDR prefix such as 10.0.0.0/8, or an address", s)
}

func (r TransferRule) String() string {
	if r.Key != "" {
		return "key:" + strings.TrimSuffix(r.Key, ".")
	}
	return r.Prefix.String()
}

// TransferConfig says who may transfer the zones, and bounds transfers.
type TransferConfig struct {
	// Allow lists the rules; a request matching any one may transfer any
	// zone. None: nobody may (REFUSED).
	Allow []TransferRule
	// MaxTransfers caps the transfers streaming at once
	// (DefaultMaxTransfers).
	MaxTransfers int
	// WriteTimeout bounds each message's write
	// (DefaultTransferWriteTimeout).
	WriteTimeout time.Duration
	// QueueTimeout is how long a transfer waits for a free slot
	// (DefaultTransferQueueTimeout).
	QueueTimeout time.Duration
}

func (c TransferConfig) validate(keys *tsig.Keyring) error {
	var errs []string
	for _, r := range c.Allow {
		if r.Key != "" {
			if _, ok := keys.Key(r.Key); !ok {
				errs = append(errs, fmt.Sprintf("transfer rule %s names a key that is not loaded", r))
			}
		} else if !r.Prefix.IsValid() {
			errs = append(errs, "transfer rule without a key or a prefix")
		}
	}
	if c.MaxTransfers < 0 || c.WriteTimeout < 0 || c.QueueTimeout < 0 {
		errs = append(errs, "transfer limits must not be negative")
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// transfers holds the rules and the slots of running transfers.
type transfers struct {
	cfg   TransferConfig
	slots chan struct{}
	stats xfrStats
}

func newTransfers(cfg TransferConfig) *transfers {
	if cfg.MaxTransfers == 0 {
		cfg.MaxTransfers = DefaultMaxTransfers
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultTransferWriteTimeout
	}
	if cfg.QueueTimeout == 0 {
		cfg.QueueTimeout = DefaultTransferQueueTimeout
	}
	return &transfers{cfg: cfg, slots: make(chan struct{}, cfg.MaxTransfers)}
}

// allowed reports whether a rule lets the request in: signed with a listed
// key (validly: check has passed) or sent from a listed prefix.
func (t *transfers) allowed(check tsig.Check, remote netip.AddrPort) bool {
	a := remote.Addr().Unmap()
	for _, r := range t.cfg.Allow {
		switch {
		case r.Key != "":
			if check.KeyName() == r.Key {
				return true
			}
		case a.IsValid() && r.Prefix.Contains(a):
			return true
		}
	}
	return false
}

// acquire takes a transfer slot, waiting at most QueueTimeout.
func (t *transfers) acquire(ctx context.Context) bool {
	select {
	case t.slots <- struct{}{}:
		return true
	default:
	}
	timer := time.NewTimer(t.cfg.QueueTimeout)
	defer timer.Stop()
	select {
	case t.slots <- struct{}{}:
		return true
	case <-timer.C:
	case <-ctx.Done():
	}
	return false
}

func (t *transfers) release() { <-t.slots }

// isTransfer reports whether req is a well-formed AXFR or IXFR question;
// the rest (bad EDNS, class, counts) is answered as any query.
func isTransfer(req *dns.Msg) bool {
	if req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 {
		return false
	}
	q := req.Question[0]
	if (q.Qtype != dns.TypeAXFR && q.Qtype != dns.TypeIXFR) || q.Qclass != dns.ClassINET {
		return false
	}
	opt, ok := ednsOf(req)
	return ok && (opt == nil || opt.Version() == 0)
}

// transfer answers an AXFR or IXFR request and returns the rcode sent.
func (h *Handler) transfer(ctx context.Context, r Request, check tsig.Check, signer *tsig.Signer, w MessageWriter) int {
	req := r.Msg
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)
	s := &xfrStream{h: h, req: req, signer: signer, w: w, ctx: ctx}
	st := h.zone.current()
	var static *zones.Zone
	if name != h.cfg.Domain && st.zs != nil {
		static = st.zs.Zone(name)
	}
	var rev *reverseZone
	if z := h.cfg.reverseZoneOf(name); z != nil && z.origin == name && static == nil {
		rev = z
	}
	log := h.log.With("zone", name, "qtype", dns.TypeToString[q.Qtype], "client", r.Remote.String(), "key", check.KeyName())
	refuse := func(rcode int, why string) int {
		// Over UDP the sender may be forged: no log line per datagram
		// at info.
		level := slog.LevelInfo
		if !r.TCP {
			level = slog.LevelDebug
		}
		log.Log(context.Background(), level, "zone transfer refused", "rcode", dns.RcodeToString[rcode], "reason", why)
		h.xfr.stats.count(xfrRefused)
		return s.single(rcode)
	}
	switch {
	case !r.TCP && q.Qtype == dns.TypeAXFR:
		return refuse(dns.RcodeNotImplemented, "AXFR over UDP")
	case name != h.cfg.Domain && static == nil && rev == nil:
		if _, in := parseName(name, h.cfg.Domain); in || (st.zs != nil && st.zs.Find(name) != nil) || h.cfg.reverseZoneOf(name) != nil {
			return refuse(dns.RcodeNotAuth, "not a zone apex")
		}
		return refuse(dns.RcodeRefused, "not a served zone")
	case !h.xfr.allowed(check, r.Remote):
		return refuse(dns.RcodeRefused, "no --transfer-allow rule matches")
	}
	var soa *dns.SOA
	switch {
	case static != nil:
		soa = static.SOA()
	case rev != nil:
		soa = withSerial(h.cfg.reverseSOA(rev.origin, rev, h.cfg.TTL).(*dns.SOA), st.serial)
	default:
		soa = h.cfg.zoneSOA(st.snap, st.zs, st.serial)
	}
	if q.Qtype == dns.TypeIXFR {
		client, ok := ixfrSerial(req, name)
		if !ok {
			return refuse(dns.RcodeFormatError, "IXFR without the client's SOA in the authority section")
		}
		if !r.TCP || !serialLess(client, soa.Serial) {
			// Up to date, from the future, or over UDP: the SOA alone.
			log.Debug("zone transfer: SOA only", "client_serial", client, "serial", soa.Serial)
			h.xfr.stats.count(xfrSOA)
			return s.single(dns.RcodeSuccess, soa)
		}
		if static == nil && rev == nil {
			if deltas, ok := h.zone.journal.between(client, st.serial); ok {
				return s.run(log, h.xfr, func() error { return s.incremental(soa, client, deltas) })
			}
		}
	}
	return s.run(log, h.xfr, func() error {
		if static != nil {
			if err := s.add(static.RRs()...); err != nil {
				return err
			}
			return s.add(soa)
		}
		if rev != nil {
			return h.cfg.walkReverse(st.snap, rev, soa, func(rrs []dns.RR) error { return s.add(rrs...) })
		}
		return h.cfg.walkZone(st.snap, st.zs, st.serial, func(rrs []dns.RR) error { return s.add(rrs...) })
	})
}

// ixfrSerial returns the serial of the client's SOA in an IXFR request's
// authority section (RFC 1995 section 3).
func ixfrSerial(req *dns.Msg, zone string) (uint32, bool) {
	if len(req.Ns) != 1 {
		return 0, false
	}
	soa, ok := req.Ns[0].(*dns.SOA)
	if !ok || !equalFold(soa.Hdr.Name, zone) {
		return 0, false
	}
	return soa.Serial, true
}

// xfrStream writes the messages of one transfer.
type xfrStream struct {
	h       *Handler
	req     *dns.Msg
	signer  *tsig.Signer
	w       MessageWriter
	ctx     context.Context
	pending []dns.RR
	size    int
	// records and messages count what was sent, produced what was
	// queued.
	records, messages, produced int
	timer                       *time.Timer // of stepAside
	full                        bool        // the whole zone, not differences
}

// run streams a transfer in a slot and returns the rcode: SERVFAIL when no
// slot freed up in time.
func (s *xfrStream) run(log *slog.Logger, t *transfers, stream func() error) int {
	if !t.acquire(s.ctx) {
		log.Info("zone transfer refused", "rcode", "SERVFAIL", "reason", "too many transfers at once")
		t.stats.count(xfrBusy)
		return s.single(dns.RcodeServerFailure)
	}
	defer t.release()
	start := time.Now()
	s.full = true
	err := stream()
	if err == nil {
		err = s.flush()
	}
	if err != nil {
		log.Info("zone transfer failed", "err", err, "records", s.records, "messages", s.messages)
		t.stats.count(xfrFailed)
		return dns.RcodeSuccess
	}
	msg := "zone transfer done"
	if s.full {
		t.stats.count(xfrFull)
	} else {
		t.stats.count(xfrIncremental)
	}
	if !s.full {
		log.Debug(msg, "records", s.records, "messages", s.messages, "took", time.Since(start), "incremental", true)
	} else {
		log.Info(msg, "records", s.records, "messages", s.messages, "took", time.Since(start))
	}
	return dns.RcodeSuccess
}

// incremental streams the IXFR form (RFC 1995 section 4) of the condensed
// differences from serial from to soa's serial.
func (s *xfrStream) incremental(soa *dns.SOA, from uint32, deltas []delta) error {
	s.full = false
	del, add := condense(deltas)
	if err := s.add(soa, withSerial(soa, from)); err != nil {
		return err
	}
	if err := s.add(del...); err != nil {
		return err
	}
	if err := s.add(soa); err != nil {
		return err
	}
	if err := s.add(add...); err != nil {
		return err
	}
	return s.add(soa)
}

// message returns the header of a transfer response to req.
func (s *xfrStream) message(rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(s.req)
	m.Authoritative = rcode == dns.RcodeSuccess
	m.RecursionAvailable = false
	m.Rcode = rcode
	m.Compress = true
	if opt, _ := ednsOf(s.req); opt != nil {
		m.SetEdns0(UDPSize, opt.Do())
	}
	return m
}

// single sends a one-message response with rcode and records, and returns
// rcode.
func (s *xfrStream) single(rcode int, rrs ...dns.RR) int {
	m := s.message(rcode)
	m.Answer = rrs
	if err := s.write(m); err != nil {
		s.h.log.Debug("write transfer response", "err", err)
	}
	return rcode
}

// yieldEvery is how many records a transfer produces between two looks at
// the UDP sockets (a few hundred microseconds of work).
const yieldEvery = 256

// maxStepAside bounds how long a transfer waits for the UDP readers.
const maxStepAside = 2 * time.Millisecond

// add queues records, sending a message whenever the queue holds enough.
// Every yieldEvery records it steps aside for waiting queries.
func (s *xfrStream) add(rrs ...dns.RR) error {
	for _, rr := range rrs {
		if s.produced++; s.produced%yieldEvery == 0 {
			s.stepAside()
		}
		n := dns.Len(rr)
		if s.size+n > messageBudget && len(s.pending) > 0 {
			if err := s.flush(); err != nil {
				return err
			}
		}
		s.pending = append(s.pending, rr)
		s.size += n
	}
	return nil
}

// stepAside lets queries waiting on the UDP sockets go first. A running
// goroutine never lets the scheduler look for network work on its
// processor (Gosched is not enough: the scheduler takes the yielding
// goroutine again before it polls), so on a server with one processor the
// goroutine that reads UDP queries would wait for the transfer to be
// preempted, 10 ms at a time, and queries would queue behind the zone being
// streamed. So when a datagram waits, the transfer parks until the UDP
// readers have drained their sockets (or maxStepAside): the processor
// falls idle, the scheduler polls the network, the queries are answered,
// and the reader that finds its socket empty wakes the transfer. When no
// query waits, the transfer goes on at full speed.
func (s *xfrStream) stepAside() {
	h := s.h
	h.stepping.Add(1)
	defer h.stepping.Add(-1)
	select {
	case <-h.drained: // a signal left from before
	default:
	}
	if !h.queriesWaiting() {
		return
	}
	if s.timer == nil {
		s.timer = time.NewTimer(maxStepAside)
	} else {
		s.timer.Reset(maxStepAside)
	}
	select {
	case <-h.drained:
	case <-s.timer.C:
	}
	s.timer.Stop()
}

// flush sends the queued records as one message.
func (s *xfrStream) flush() error {
	if len(s.pending) == 0 {
		return nil
	}
	if err := s.ctx.Err(); err != nil {
		return err
	}
	m := s.message(dns.RcodeSuccess)
	m.Answer = s.pending
	if err := s.write(m); err != nil {
		return err
	}
	s.records += len(s.pending)
	s.messages++
	s.pending, s.size = s.pending[:0], 0
	return nil
}

func (s *xfrStream) write(m *dns.Msg) error {
	out, err := s.h.pack(m, s.signer)
	if err != nil {
		return fmt.Errorf("pack transfer message: %w", err)
	}
	return s.w.WriteMessage(out, time.Now().Add(s.h.xfr.cfg.WriteTimeout))
}
