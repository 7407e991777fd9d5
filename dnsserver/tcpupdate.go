package dnsserver

import (
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// UPDATE over TCP. The miekg/dns server hands ServeDNS a parsed message,
// but the TSIG of an UPDATE is verified over the message as received, and
// the server's default accept function answers every UPDATE NOTIMP. So
// the TCP server accepts UPDATE (acceptMsg), its reader keeps the raw
// bytes of each UPDATE by connection (rawUpdates), and ServeDNS takes them
// from there: it runs in the connection's goroutine right after the read.

// maxRawUpdates bounds the UPDATE messages kept for ServeDNS; past it the
// oldest are forgotten (their requests are answered SERVFAIL).
const maxRawUpdates = 1024

// acceptMsg is the TCP server's MsgAcceptFunc: miekg/dns's default, except
// that UPDATE messages are accepted whatever their section counts (the
// handler checks them and says what is wrong).
func acceptMsg(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	if dh.Bits&qr == 0 && int(dh.Bits>>11)&0xf == dns.OpcodeUpdate {
		return dns.MsgAccept
	}
	return dns.DefaultMsgAcceptFunc(dh)
}

// rawUpdates holds the last UPDATE read on each TCP connection, by the
// connection's remote address, until ServeDNS takes it.
type rawUpdates struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (r *rawUpdates) put(conn string, raw []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil || len(r.m) >= maxRawUpdates {
		r.m = map[string][]byte{}
	}
	r.m[conn] = raw
}

// take returns and forgets the UPDATE kept for conn.
func (r *rawUpdates) take(conn string) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	raw, ok := r.m[conn]
	delete(r.m, conn)
	return raw, ok
}

// decorate is the TCP server's DecorateReader.
func (r *rawUpdates) decorate(rd dns.Reader) dns.Reader { return rawReader{rd, r} }

// rawReader keeps the UPDATE messages it reads.
type rawReader struct {
	dns.Reader
	kept *rawUpdates
}

func (rr rawReader) ReadTCP(conn net.Conn, timeout time.Duration) ([]byte, error) {
	m, err := rr.Reader.ReadTCP(conn, timeout)
	if err == nil && isUpdate(m) {
		rr.kept.put(conn.RemoteAddr().String(), m)
	}
	return m, err
}

// serveUpdateConn answers an UPDATE that came over TCP on w.
func (h *Handler) serveUpdateConn(w dns.ResponseWriter, req *dns.Msg) {
	raw, ok := h.tcpUpdates.take(w.RemoteAddr().String())
	var out []byte
	if ok {
		out = h.serveUpdateTCP(raw)
	} else {
		m := updateReply(req)
		m.Rcode = dns.RcodeServerFailure
		out, _ = m.Pack()
	}
	if out == nil {
		return
	}
	if _, err := w.Write(out); err != nil {
		h.log.Debug("write update answer", "err", err)
	}
}
