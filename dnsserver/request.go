package dnsserver

import (
	"context"
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
	// slot: the request is an UPDATE that holds an update slot
	// (updateLater), which Serve frees before it writes the answer.
	slot bool
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
// IXFR), applies an UPDATE, or answers a query; a signed request gets a
// signed response, every message of a transfer included. ctx ends a
// transfer early (shutdown). It implements Answerer; the server's hooks
// count the request.
func (h *Handler) Serve(ctx context.Context, r Request, w MessageWriter) Reply {
	cw := countingWriter{w: w}
	res := h.serve(ctx, r, &cw)
	res.Qtype = qtypeOf(r.Msg)
	res.Size = cw.bytes
	return res
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w     MessageWriter
	bytes int
}

func (c *countingWriter) WriteMessage(wire []byte, deadline time.Time) error {
	c.bytes += len(wire)
	return c.w.WriteMessage(wire, deadline)
}

// serve is Serve without the sizes.
func (h *Handler) serve(ctx context.Context, r Request, w MessageWriter) Reply {
	req := r.Msg
	slot := r.slot && h.upd != nil
	release := func() {
		if slot {
			slot = false
			h.upd.release()
		}
	}
	defer release()
	if req.Response {
		return Reply{}
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
		return Reply{Answered: true, Rcode: h.transfer(ctx, r, check, signer, w)}
	case req.Opcode == dns.OpcodeUpdate:
		resp = h.updateResponse(req, check.KeyName(), slot)
	default:
		limit := sizeLimit(req, !r.TCP)
		if signer != nil {
			limit -= signer.Len()
		}
		resp = h.respond(req, limit)
	}
	release()
	if resp == nil {
		return Reply{}
	}
	out, err := h.pack(resp, signer)
	if err != nil {
		h.log.Debug("pack response", "err", err)
		return Reply{}
	}
	if err := w.WriteMessage(out, time.Time{}); err != nil {
		h.log.Debug("write response", "err", err)
	}
	return Reply{Answered: true, Rcode: resp.Rcode, Truncated: resp.Truncated}
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
