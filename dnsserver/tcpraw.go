package dnsserver

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// The TCP listener is served by miekg/dns's server, whose handler gets the
// parsed message only. A TSIG is verified over the message as received,
// and a zone transfer needs write deadlines on the connection: tcpConns
// remembers, per open connection, the connection and the last message
// read on it (miekg/dns reads and serves one message at a time per
// connection), and tcpHandler passes both to Handler.Serve.

// tcpConns maps the remote address of each open TCP connection to it.
type tcpConns struct {
	mu sync.Mutex
	m  map[string]*tcpRecord
}

type tcpRecord struct {
	conn net.Conn
	wire []byte
}

func newTCPConns() *tcpConns { return &tcpConns{m: make(map[string]*tcpRecord)} }

func (t *tcpConns) get(remote net.Addr) *tcpRecord {
	if remote == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[remote.String()]
}

func (t *tcpConns) forget(c net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.m[c.RemoteAddr().String()]; ok && e.conn == c {
		delete(t.m, c.RemoteAddr().String())
	}
}

// decorate is the server's dns.DecorateReader.
func (t *tcpConns) decorate(r dns.Reader) dns.Reader { return rawReader{Reader: r, conns: t} }

// rawReader records each TCP message it reads.
type rawReader struct {
	dns.Reader
	conns *tcpConns
}

func (r rawReader) ReadTCP(conn net.Conn, timeout time.Duration) ([]byte, error) {
	b, err := r.Reader.ReadTCP(conn, timeout)
	if err != nil {
		r.conns.forget(conn)
		return b, err
	}
	r.conns.mu.Lock()
	r.conns.m[conn.RemoteAddr().String()] = &tcpRecord{conn: conn, wire: b}
	r.conns.mu.Unlock()
	return b, nil
}

// tcpHandler is the dns.Handler of the TCP listener.
type tcpHandler struct {
	h     *Handler
	conns *tcpConns
	ctx   context.Context
	// timeout bounds each response's write.
	timeout time.Duration
}

func (t *tcpHandler) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	r := Request{Msg: req, TCP: true, Remote: addrPortOf(w.RemoteAddr())}
	tw := &tcpWriter{w: w, timeout: t.timeout}
	if c := t.conns.get(w.RemoteAddr()); c != nil {
		r.Wire, tw.conn = c.wire, c.conn
	}
	t.h.Serve(t.ctx, r, tw)
	if tw.conn != nil && tw.deadline {
		_ = tw.conn.SetWriteDeadline(time.Time{})
	}
}

// tcpWriter writes responses with a deadline.
type tcpWriter struct {
	w        dns.ResponseWriter
	conn     net.Conn // nil: no deadlines
	timeout  time.Duration
	deadline bool
}

func (t *tcpWriter) WriteMessage(wire []byte, deadline time.Time) error {
	if t.conn != nil {
		if deadline.IsZero() {
			deadline = time.Now().Add(t.timeout)
		}
		if err := t.conn.SetWriteDeadline(deadline); err != nil {
			return err
		}
		t.deadline = true
	}
	_, err := t.w.Write(wire)
	return err
}
