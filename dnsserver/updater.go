package dnsserver

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"disco/registry"
)

// Updater writes a batch of registrations planned against the registry's
// head atomically and durably; *registry.Registry implements it.
type Updater interface {
	Apply(ctx context.Context, plan func(head *registry.Snapshot) (registry.Batch, error)) (*registry.Snapshot, error)
}

// DefaultMaxUpdatesInFlight is how many UPDATEs are processed at once by
// default; more are answered SERVFAIL at once, so that a flood of updates
// costs the queries little.
const DefaultMaxUpdatesInFlight = 64

// updateTimeout bounds the processing of one UPDATE.
const updateTimeout = 30 * time.Second

// UpdateConfig enables DNS UPDATE (RFC 2136) of the discovery domain.
type UpdateConfig struct {
	// Registry receives the writes.
	Registry Updater
	// Allow names the keys (canonical names) that may update.
	Allow []string
	// MaxInFlight bounds the updates processed at once; default
	// DefaultMaxUpdatesInFlight.
	MaxInFlight int
}

// updates is the handler's UPDATE processing: its configuration, the
// slots that bound it, and its counters.
type updates struct {
	cfg   UpdateConfig
	slots chan struct{}
	// Counters by outcome.
	applied, refused, busy, failed atomic.Uint64
}

// EnableUpdates makes the handler process UPDATE messages with cfg; call
// it before serving. Without it, every UPDATE is refused.
func (h *Handler) EnableUpdates(cfg UpdateConfig) {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxUpdatesInFlight
	}
	h.upd = &updates{cfg: cfg, slots: make(chan struct{}, cfg.MaxInFlight)}
}

// updateLater answers an UPDATE, read by readMessage as m: updates wait
// for a durable write, so the transport serves them on goroutines of
// their own, at most MaxInFlight at once: when none is free, the answer is
// SERVFAIL at once. Without updates, the refusal is answered at once. The slot taken here is freed by Serve just before it
// writes the answer, so that a client that sends its next UPDATE as soon
// as it has the answer finds the slot free.
func (h *Handler) updateLater(q *Query, m *wireMsg) Reply {
	pkt := q.Wire
	req := new(dns.Msg)
	if err := req.Unpack(pkt); err != nil {
		return Reply{Wire: formErr(pkt, m, msgMalformed, q.Out[:0]), Rcode: dns.RcodeFormatError}
	}
	tcp := q.Transport == TransportTCP
	if h.upd == nil {
		return h.serveNow(q, req) // refused at once (after the TSIG check)
	}
	r := &Request{Wire: bytes.Clone(pkt), Msg: req, TCP: tcp, Remote: q.Remote}
	if !h.upd.acquire() {
		return Reply{Wire: append(q.Out[:0], h.updateBusy(req)...), Rcode: dns.RcodeServerFailure}
	}
	r.slot = true
	return Reply{Later: r}
}

// acquire takes a slot for one more update in flight, if one is free.
func (u *updates) acquire() bool {
	select {
	case u.slots <- struct{}{}:
		return true
	default:
		u.busy.Add(1)
		return false
	}
}

func (u *updates) release() { <-u.slots }

// updateBusy is the answer to an UPDATE over UDP that found no free slot:
// SERVFAIL, unsigned (checking the signature would cost what the bound
// saves).
func (h *Handler) updateBusy(req *dns.Msg) []byte {
	m := updateReply(req)
	m.Rcode = dns.RcodeServerFailure
	if opt, ok := ednsOf(req); ok && opt != nil {
		m.SetEdns0(UDPSize, opt.Do())
		addEDE(m, dns.ExtendedErrorCodeOther, busyText)
	}
	out, err := m.Pack()
	if err != nil {
		return nil
	}
	return out
}

const busyText = "too many updates in flight; retry shortly"

// updateReply returns the skeleton of the answer to an UPDATE: its ID,
// opcode and zone section.
func updateReply(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = false
	return m
}

func addEDE(m *dns.Msg, code uint16, text string) {
	if opt := m.IsEdns0(); opt != nil {
		opt.Option = append(opt.Option, &dns.EDNS0_EDE{InfoCode: code, ExtraText: text})
	}
}

// updateResponse answers an UPDATE whose TSIG, if any, checked out: key
// is the key that signed it ("" for none). Unless slot says the caller
// holds one (updateLater; Serve frees it), it takes a slot of its own for
// the update and frees it on return.
func (h *Handler) updateResponse(req *dns.Msg, key string, slot bool) *dns.Msg {
	m := updateReply(req)
	opt, optOK := ednsOf(req)
	if opt != nil {
		m.SetEdns0(UDPSize, opt.Do())
	}
	switch {
	case !optOK:
		m.Rcode = dns.RcodeFormatError
	case opt != nil && opt.Version() != 0:
		m.Rcode = dns.RcodeBadVers
	case !slot && h.upd != nil && !h.upd.acquire():
		m.Rcode = dns.RcodeServerFailure
		addEDE(m, dns.ExtendedErrorCodeOther, busyText)
		return m
	default:
		if !slot && h.upd != nil {
			defer h.upd.release()
		}
		if e := h.update(req, key); e != nil {
			m.Rcode = e.rcode
			addEDE(m, e.ede, e.text)
		}
	}
	if h.upd != nil {
		switch m.Rcode {
		case dns.RcodeSuccess:
			h.upd.applied.Add(1)
		case dns.RcodeServerFailure:
			h.upd.failed.Add(1)
		default:
			h.upd.refused.Add(1)
		}
	}
	return m
}

// update checks an UPDATE signed by key ("" for none) and writes it into
// the registry; it returns why it was refused, or nil once it is durable.
func (h *Handler) update(req *dns.Msg, key string) *updateError {
	if h.upd == nil {
		return refuse(dns.RcodeRefused, dns.ExtendedErrorCodeNotSupported, "this server takes no updates")
	}
	zs := h.zone.currentZones()
	if e := h.cfg.checkUpdate(req, key, h.upd.cfg.Allow, zs); e != nil {
		h.log.Debug("update refused", "key", key, "rcode", dns.RcodeToString[e.rcode], "reason", e.text)
		return e
	}
	ctx, cancel := context.WithTimeout(context.Background(), updateTimeout)
	defer cancel()
	var planned registry.Batch
	_, err := h.upd.cfg.Registry.Apply(ctx, func(head *registry.Snapshot) (registry.Batch, error) {
		b, e := h.cfg.planUpdate(req, head, zs)
		if e != nil {
			return b, e
		}
		planned = b
		return b, nil
	})
	var e *updateError
	switch {
	case err == nil:
		h.log.Debug("update applied", "key", key, "registered", len(planned.Put), "deregistered", len(planned.Delete))
		return nil
	case errors.As(err, &e):
	case errors.Is(err, registry.ErrInvalid):
		e = refuse(dns.RcodeRefused, dns.ExtendedErrorCodeOther, "%v", err)
	default:
		h.log.Error("update not stored", "key", key, "err", err)
		e = refuse(dns.RcodeServerFailure, dns.ExtendedErrorCodeOther, "the registry could not store the update: %v", err)
	}
	h.log.Debug("update refused", "key", key, "rcode", dns.RcodeToString[e.rcode], "reason", e.text)
	return e
}

var updatesDesc = prometheus.NewDesc("disco_dns_updates_total",
	"DNS UPDATE messages by result: applied, refused (any error answer), busy (too many in flight) or failed (not stored).",
	[]string{"result"}, nil)

func (u *updates) collect(ch chan<- prometheus.Metric) {
	if u == nil {
		return
	}
	for _, c := range []struct {
		name string
		n    *atomic.Uint64
	}{{"applied", &u.applied}, {"refused", &u.refused}, {"busy", &u.busy}, {"failed", &u.failed}} {
		ch <- prometheus.MustNewConstMetric(updatesDesc, prometheus.CounterValue, float64(c.n.Load()), c.name)
	}
}

// serveNow answers q (unpacked as req) through Serve on the calling
// goroutine, into q.Out: for requests that must pass the TSIG check but
// answer at once.
func (h *Handler) serveNow(q *Query, req *dns.Msg) Reply {
	w := &packetWriter{buf: q.Out[:0]}
	r := h.Serve(context.Background(), Request{Wire: q.Wire, Msg: req, TCP: q.Transport == TransportTCP, Remote: q.Remote}, w)
	if !r.Answered || w.out == nil {
		return Reply{}
	}
	r.Wire = w.out
	return r
}
