package dnsserver

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// DNS over TCP (RFC 7766) takes the path UDP takes: each message is read
// with the length prefix, handed to the Answerer's AnswerWire, and its
// answer queued for the connection. One goroutine reads each connection
// and answers what it can at once; it writes the answers queued before it
// would wait for the client (so a client that pipelines gets its answers
// in few writes), and requests that wait or stream (UPDATE,
// zone transfers) go to goroutines of their own, at most tcpInFlight per
// connection, whose answers may overtake or follow the others': clients
// match answers by ID (RFC 7766 section 7). Writes to a connection are
// serialized message by message.

const (
	// tcpReadBuffer is the read buffer of a connection: messages that
	// fit are answered where they were read; longer ones are copied.
	tcpReadBuffer = 4096
	// tcpWriteBatch is how many bytes of queued answers are written
	// without waiting for the reader to run out of queries.
	tcpWriteBatch = 16 << 10
	// tcpInFlight bounds the requests of one connection served at once
	// on goroutines of their own; the connection is not read while that
	// many are.
	tcpInFlight = 16
	// tcpKeepBuffer is the largest write buffer an idle connection
	// keeps.
	tcpKeepBuffer = 16 << 10
)

// tcpServer accepts and serves the TCP connections of a Server.
type tcpServer struct {
	s  *Server
	ln net.Listener

	mu      sync.Mutex
	conns   map[*tcpSession]struct{}
	closing bool
	wg      sync.WaitGroup
}

func newTCPServer(s *Server, ln net.Listener) *tcpServer {
	return &tcpServer{s: s, ln: ln, conns: make(map[*tcpSession]struct{})}
}

// serve accepts connections until the listener is closed. Connections
// beyond MaxTCPConns are closed at once, so a flood of idle connections
// cannot exhaust the process.
func (t *tcpServer) serve(ctx context.Context) error {
	var backoff time.Duration
	for {
		nc, err := t.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors, or a connection reset before
			// it was accepted: wait a little and go on.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t.s.log.Debug("tcp accept", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
				continue
			case <-ctx.Done():
				return nil
			}
		}
		backoff = 0
		c := t.add(nc)
		if c == nil {
			nc.Close()
			continue
		}
		go c.serve(ctx)
	}
}

// add registers a new connection, or returns nil when the server is full
// or shutting down.
func (t *tcpServer) add(nc net.Conn) *tcpSession {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing || len(t.conns) >= t.s.cfg.MaxTCPConns {
		return nil
	}
	c := newTCPSession(t, nc)
	t.conns[c] = struct{}{}
	t.wg.Add(1)
	return c
}

func (t *tcpServer) remove(c *tcpSession) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	t.wg.Done()
}

// shutdown stops accepting, wakes every connection's reader so that it
// stops reading, and waits up to grace for the connections to send the
// answers they owe; then it closes what is left.
func (t *tcpServer) shutdown(grace time.Duration) {
	t.ln.Close()
	t.mu.Lock()
	t.closing = true
	for c := range t.conns {
		_ = c.conn.SetReadDeadline(time.Now())
	}
	t.mu.Unlock()
	done := make(chan struct{})
	go func() {
		t.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-time.After(grace):
	}
	t.mu.Lock()
	for c := range t.conns {
		c.conn.Close()
	}
	t.mu.Unlock()
	<-done
}

// tcpSession is one connection and its state.
type tcpSession struct {
	t    *tcpServer
	conn net.Conn
	br   *bufio.Reader
	w    streamWriter
	q    *Query
	long []byte // a message longer than the read buffer
	// out holds the answers queued by the reader, with their length
	// prefixes; only the reader touches it.
	out []byte
	// inFlight holds a token per request served on its own goroutine;
	// later waits for them.
	inFlight chan struct{}
	later    sync.WaitGroup

	wmu  sync.Mutex
	werr error // the first write error: the framing is lost after it
}

func newTCPSession(t *tcpServer, nc net.Conn) *tcpSession {
	r, w := newStream(nc)
	c := &tcpSession{t: t, conn: nc, br: bufio.NewReaderSize(r, tcpReadBuffer), w: w, q: newQuery(TransportTCP, 1024),
		inFlight: make(chan struct{}, tcpInFlight)}
	c.q.Remote = addrPortOf(nc.RemoteAddr())
	return c
}

// serve reads and answers the connection's messages until the client
// closes it, it stays idle or stalls past its timeouts, it sent its
// MaxTCPQueries queries (if capped), or a malformed message; then it
// sends what it owes and closes the connection.
func (c *tcpSession) serve(ctx context.Context) {
	defer func() {
		_ = c.flush()
		c.later.Wait()
		c.conn.Close()
		c.t.remove(c)
	}()
	s := c.t.s
	q := c.q
	for n := 0; s.cfg.MaxTCPQueries <= 0 || n < s.cfg.MaxTCPQueries; n++ {
		wire, err := c.read(ctx, n == 0)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrUnexpectedEOF) {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					s.log.Debug("tcp read", "client", q.Remote.String(), "err", err)
				}
			}
			return
		}
		start := time.Now()
		q.Wire = wire
		r := s.a.AnswerWire(q)
		if r.Later != nil {
			if !c.serveLater(ctx, r.Later) {
				return
			}
		} else {
			if r.Wire != nil {
				c.out = binary.BigEndian.AppendUint16(c.out, uint16(len(r.Wire)))
				c.out = append(c.out, r.Wire...)
				if cap(r.Wire) > cap(q.Out) {
					q.Out = r.Wire[:0] // a larger buffer was needed: keep it
				}
			}
			s.hooks.query(QueryEvent{Transport: TransportTCP, Remote: q.Remote, Wire: wire, Reply: r, Duration: time.Since(start)})
			if r.Close {
				return
			}
		}
		if !c.buffered() || len(c.out) >= tcpWriteBatch {
			if c.flush() != nil {
				return
			}
		}
	}
}

// buffered reports whether the next message has been read whole into
// the buffer, so that reading it will not wait for the client.
func (c *tcpSession) buffered() bool {
	n := c.br.Buffered()
	if n < 2 {
		return false
	}
	prefix, _ := c.br.Peek(2)
	return n >= 2+int(binary.BigEndian.Uint16(prefix))
}

// read returns the next message, valid until the next read. The deadline
// is set once per message, and only when the message is not buffered
// yet: the first message and the rest of one whose length prefix came
// have TCPReadTimeout, the wait between messages TCPIdleTimeout.
func (c *tcpSession) read(ctx context.Context, first bool) ([]byte, error) {
	cfg := &c.t.s.cfg
	if c.br.Buffered() < 2 {
		if cap(c.out) > tcpKeepBuffer {
			c.out = nil // an idle connection keeps little memory
		}
		wait := cfg.TCPIdleTimeout
		if first {
			wait = cfg.TCPReadTimeout
		}
		if err := c.conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err // shutting down (after the deadline was set: see shutdown)
		}
	}
	prefix, err := c.br.Peek(2)
	if err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(prefix))
	if c.br.Buffered() < 2+n {
		if err := c.conn.SetReadDeadline(time.Now().Add(cfg.TCPReadTimeout)); err != nil {
			return nil, err
		}
	}
	if 2+n <= c.br.Size() {
		b, err := c.br.Peek(2 + n)
		if err != nil {
			return nil, err
		}
		_, _ = c.br.Discard(2 + n) // b stays valid until the next read
		return b[2:], nil
	}
	_, _ = c.br.Discard(2)
	if cap(c.long) < n {
		c.long = make([]byte, n)
	}
	if _, err := io.ReadFull(c.br, c.long[:n]); err != nil {
		return nil, err
	}
	return c.long[:n], nil
}

// serveLater serves r on a goroutine of its own once one of the
// connection's tcpInFlight tokens is free, sending the queued answers
// first if it has to wait. It reports false when the connection is to be
// closed.
func (c *tcpSession) serveLater(ctx context.Context, r *Request) bool {
	select {
	case c.inFlight <- struct{}{}:
	default:
		if c.flush() != nil {
			return false
		}
		select {
		case c.inFlight <- struct{}{}:
		case <-ctx.Done():
			return false
		}
	}
	s := c.t.s
	c.later.Add(1)
	go func() {
		defer func() {
			<-c.inFlight
			c.later.Done()
		}()
		start := time.Now()
		rep := s.a.Serve(ctx, *r, tcpWriter{c})
		s.hooks.query(QueryEvent{Transport: TransportTCP, Remote: r.Remote, Wire: r.Wire, Reply: rep, Duration: time.Since(start)})
	}()
	return true
}

// flush writes the queued answers.
func (c *tcpSession) flush() error {
	if len(c.out) == 0 {
		return nil
	}
	err := c.write(time.Time{}, c.out, nil)
	c.out = c.out[:0]
	return err
}

// write writes b, whole messages with their length prefixes, then more
// (another part of the last message; may be nil), by deadline (zero:
// TCPWriteTimeout from now). After a failed write the connection's
// framing is lost: nothing more is written, and the reader is woken to
// close it.
func (c *tcpSession) write(deadline time.Time, b, more []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	if deadline.IsZero() {
		deadline = time.Now().Add(c.t.s.cfg.TCPWriteTimeout)
	}
	err := c.conn.SetWriteDeadline(deadline)
	if err == nil {
		err = c.w.write(b, more)
	}
	if err != nil {
		c.werr = err
		_ = c.conn.SetReadDeadline(time.Now())
	}
	return err
}

// tcpWriter is the MessageWriter of a request served on its own
// goroutine: each message goes out at once, with its length prefix.
type tcpWriter struct{ c *tcpSession }

func (w tcpWriter) WriteMessage(wire []byte, deadline time.Time) error {
	if len(wire) > 0xffff {
		return errors.New("message longer than 65535 bytes")
	}
	prefix := [2]byte{byte(len(wire) >> 8), byte(len(wire))}
	return w.c.write(deadline, prefix[:], wire)
}

// addrPortOf returns the address and port of a TCP address, or the zero
// value.
func addrPortOf(a net.Addr) netip.AddrPort {
	if a, ok := a.(*net.TCPAddr); ok {
		return a.AddrPort()
	}
	return netip.AddrPort{}
}

// streamWriter writes whole buffers to a connection.
type streamWriter interface {
	// write writes all of b, then all of more.
	write(b, more []byte) error
}

// netWriter writes through net.Conn.
type netWriter struct{ c net.Conn }

func (w netWriter) write(b, more []byte) error {
	if more == nil {
		_, err := w.c.Write(b)
		return err
	}
	nb := net.Buffers{b, more}
	_, err := nb.WriteTo(w.c)
	return err
}
