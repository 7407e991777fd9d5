package dnsserver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
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
	wg    sync.WaitGroup
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

// isUpdate reports whether pkt is an UPDATE request by its header.
func isUpdate(pkt []byte) bool {
	return len(pkt) >= 12 && pkt[2]&0x80 == 0 && int(pkt[2]>>3&0xf) == dns.OpcodeUpdate
}

// serveUpdateUDP serves an UPDATE that came over UDP from the client at
// from. Updates wait for a durable write, so they do not hold the socket's
// reader: each runs in its own goroutine (at most MaxInFlight at once,
// more are answered SERVFAIL at once) and writes its answer itself on
// conn. Without conn (tests) or without updates, it answers in place. It
// returns what to send now, or nil.
func (h *Handler) serveUpdateUDP(pkt []byte, from netip.AddrPort, conn *net.UDPConn) []byte {
	m, fault := readMessage(pkt)
	if fault != msgOK {
		return formErr(pkt, &m, fault, nil)
	}
	req := new(dns.Msg)
	if err := req.Unpack(pkt); err != nil {
		return formErr(pkt, &m, msgMalformed, nil)
	}
	r := Request{Wire: pkt, Msg: req, Remote: from}
	if conn == nil || h.upd == nil {
		w := &packetWriter{}
		h.Serve(context.Background(), r, w)
		return w.out
	}
	if !h.upd.acquire() {
		return h.updateBusy(req)
	}
	r.Wire = append([]byte(nil), pkt...)
	go func() {
		w := &udpWriter{conn: conn, to: from, done: h.upd.release}
		defer w.finish()
		h.Serve(context.Background(), r, w)
	}()
	return nil
}

// udpWriter sends the answer to an UPDATE from the UDP client at to, and
// frees the update's slot just before, so that a client that sends its
// next UPDATE as soon as it has the answer finds the slot free.
type udpWriter struct {
	conn *net.UDPConn
	to   netip.AddrPort
	done func() // frees the slot; called once
}

func (u *udpWriter) finish() {
	if u.done != nil {
		u.done()
		u.done = nil
	}
}

func (u *udpWriter) WriteMessage(wire []byte, _ time.Time) error {
	u.finish()
	_, err := u.conn.WriteToUDPAddrPort(wire, u.to)
	if errors.Is(err, net.ErrClosed) {
		return nil // shutting down
	}
	return err
}

// acquire takes a slot for one more update in flight, if one is free.
func (u *updates) acquire() bool {
	select {
	case u.slots <- struct{}{}:
		u.wg.Add(1)
		return true
	default:
		u.busy.Add(1)
		return false
	}
}

func (u *updates) release() {
	<-u.slots
	u.wg.Done()
}

// waitUpdates waits for the updates in flight to finish.
func (h *Handler) waitUpdates() {
	if h.upd != nil {
		h.upd.wg.Wait()
	}
}

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
// is the key that signed it ("" for none). Over TCP it takes a slot of
// its own (over UDP, serveUpdateUDP took it).
func (h *Handler) updateResponse(req *dns.Msg, key string, tcp bool) *dns.Msg {
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
	case tcp && h.upd != nil && !h.upd.acquire():
		m.Rcode = dns.RcodeServerFailure
		addEDE(m, dns.ExtendedErrorCodeOther, busyText)
		return m
	default:
		if tcp && h.upd != nil {
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
