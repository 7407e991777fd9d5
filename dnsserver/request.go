package dnsserver

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"disco/tsig"
)

// Request is one DNS message as a transport received it. Serve takes it
// with a MessageWriter: this is the seam between the transports (the UDP
// loop, the TCP server) and the handling of TSIG, zone transfers and
// queries, which needs no more of a transport than this.
type Request struct {
	// Wire is the message as received; a TSIG is verified over these
	// bytes. Serve does not modify it.
	Wire []byte
	// Msg is Wire parsed.
	Msg *dns.Msg
	// TCP is true for a stream transport, false for UDP.
	TCP bool
	// Remote is the client's address (zero when unknown); transfer rules
	// with an address prefix match it.
	Remote netip.AddrPort
}

// MessageWriter sends the messages of one response: one for a query,
// several for a zone transfer.
type MessageWriter interface {
	// WriteMessage sends one DNS message (wire format; a stream transport
	// adds its length prefix). A write that has not completed by deadline
	// fails; the zero deadline means the transport's own.
	WriteMessage(wire []byte, deadline time.Time) error
}

// needsServe reports whether a message must take Serve rather than the
// UDP paths that answer plain queries: it carries a TSIG record or asks
// for a zone transfer.
func needsServe(m *dns.Msg) bool {
	if len(m.Question) == 1 {
		if t := m.Question[0].Qtype; t == dns.TypeAXFR || t == dns.TypeIXFR {
			return true
		}
	}
	for _, sec := range [][]dns.RR{m.Extra, m.Answer, m.Ns} {
		for _, rr := range sec {
			if rr.Header().Rrtype == dns.TypeTSIG {
				return true
			}
		}
	}
	return false
}

// Serve answers one request: it checks a TSIG (RFC 8945) and answers an
// error as the RFC says when it fails, streams a zone transfer (AXFR,
// IXFR), or answers a query; a signed request gets a signed response, every
// message of a transfer included. ctx ends a transfer early (shutdown).
// It counts the request in the handler's metrics and query log.
func (h *Handler) Serve(ctx context.Context, r Request, w MessageWriter) {
	start := time.Now()
	res := h.serve(ctx, r, w)
	if !res.answered {
		h.stats.dropped.Add(1)
		return
	}
	t := transportUDP
	if r.TCP {
		t = transportTCP
	}
	h.stats.count(t, qtypeOf(r.Msg), res.rcode)
	if res.truncated {
		h.stats.truncated.Add(1)
	}
	took := time.Since(start)
	h.stats.observe(took)
	if h.qlog != nil {
		client := ""
		if r.Remote.IsValid() {
			client = r.Remote.String()
		}
		h.logQuery(client, qnameOf(r.Msg), qtypeOf(r.Msg), res.rcode, t, res.truncated, took)
	}
}

// served is what serve did.
type served struct {
	answered  bool
	rcode     int
	truncated bool
}

// serve is Serve without the counting.
func (h *Handler) serve(ctx context.Context, r Request, w MessageWriter) served {
	req := r.Msg
	if req.Response {
		return served{}
	}
	wire := r.Wire
	if wire == nil {
		wire, _ = req.Pack()
	}
	check := h.cfg.TSIG.Verify(wire, req)
	signer := check.Signer()
	var resp *dns.Msg
	switch {
	case check.Failed():
		resp = h.tsigError(req, check)
	case isTransfer(req):
		return served{answered: true, rcode: h.transfer(ctx, r, check, signer, w)}
	case req.Opcode == dns.OpcodeUpdate:
		resp = h.updateResponse(req, check.KeyName(), r.TCP)
	default:
		limit := sizeLimit(req, !r.TCP)
		if signer != nil {
			limit -= signer.Len()
		}
		resp = h.respond(req, limit)
	}
	if resp == nil {
		return served{}
	}
	out, err := h.pack(resp, signer)
	if err != nil {
		h.log.Debug("pack response", "err", err)
		return served{}
	}
	if err := w.WriteMessage(out, time.Time{}); err != nil {
		h.log.Debug("write response", "err", err)
	}
	return served{answered: true, rcode: resp.Rcode, truncated: resp.Truncated}
}

// pack packs m, signed when signer is not nil.
func (h *Handler) pack(m *dns.Msg, signer *tsig.Signer) ([]byte, error) {
	if signer == nil {
		return m.Pack()
	}
	return signer.Sign(m, time.Now())
}

// tsigError is the reply to a request whose TSIG failed: FORMERR for a
// misplaced or malformed one, else NOTAUTH (the TSIG error goes in the
// reply's TSIG record, RFC 8945 section 5.2).
func (h *Handler) tsigError(req *dns.Msg, c tsig.Check) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = false
	m.Rcode = dns.RcodeNotAuth
	if c.FormErr {
		m.Rcode = dns.RcodeFormatError
	}
	if opt, ok := ednsOf(req); ok && opt != nil {
		m.SetEdns0(UDPSize, opt.Do())
	}
	return m
}

// responseWriter writes through a miekg/dns ResponseWriter.
type responseWriter struct{ w dns.ResponseWriter }

func (r responseWriter) WriteMessage(wire []byte, _ time.Time) error {
	_, err := r.w.Write(wire)
	return err
}

// addrPortOf returns the address and port of a UDP or TCP address, or the
// zero value.
func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort()
	case *net.TCPAddr:
		return a.AddrPort()
	}
	return netip.AddrPort{}
}
