package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// ServerConfig configures the DNS listeners.
type ServerConfig struct {
	// Addr is the UDP and TCP listen address ("127.0.0.1:8053"). Port 0
	// picks one free port for both.
	Addr string
	// TCPIdleTimeout closes a TCP connection idle this long between
	// queries (RFC 7766); default 10s.
	TCPIdleTimeout time.Duration
	// TCPReadTimeout bounds the wait for a query once a connection is open
	// or a message has started; default 2s.
	TCPReadTimeout time.Duration
	// MaxTCPConns caps concurrent TCP connections; more are closed at once.
	// Default 1000.
	MaxTCPConns int
	// MaxTCPQueries caps queries per TCP connection; default 1000.
	MaxTCPQueries int
	// UDPSockets is the number of UDP sockets bound to the address with
	// SO_REUSEPORT, each read by one goroutine; default GOMAXPROCS.
	UDPSockets int
	// UDPBufferBytes is the receive and send buffer asked for each UDP
	// socket; default 4 MiB. Without CAP_NET_ADMIN the kernel caps it at
	// net.core.rmem_max and wmem_max, and a warning says so.
	UDPBufferBytes int
	// RRL rate-limits UDP responses per client prefix; off by default.
	RRL RRLConfig
}

func (c *ServerConfig) setDefaults() {
	if c.TCPIdleTimeout == 0 {
		c.TCPIdleTimeout = 10 * time.Second
	}
	if c.TCPReadTimeout == 0 {
		c.TCPReadTimeout = 2 * time.Second
	}
	if c.MaxTCPConns == 0 {
		c.MaxTCPConns = 1000
	}
	if c.MaxTCPQueries == 0 {
		c.MaxTCPQueries = 1000
	}
	if c.UDPSockets <= 0 {
		c.UDPSockets = runtime.GOMAXPROCS(0)
	}
	if !reusePortSupported {
		c.UDPSockets = 1
	}
	if c.UDPBufferBytes == 0 {
		c.UDPBufferBytes = 4 << 20
	}
}

// Server serves a Handler over UDP and TCP. Each UDP socket is read by one
// goroutine that answers in place, with no goroutine per packet; TCP
// connections get the miekg/dns server (RFC 7766 pipelining, idle
// timeouts).
type Server struct {
	cfg     ServerConfig
	handler *Handler
	log     *slog.Logger

	udp   []*net.UDPConn
	tcp   net.Listener
	rrl   *rrl // nil: no rate limiting
	conns *tcpConns
}

// NewServer returns a server for handler. It binds nothing until Listen.
// cfg.RRL must be valid (RRLConfig.Validate).
func NewServer(cfg ServerConfig, handler *Handler, log *slog.Logger) *Server {
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "dns")
	s := &Server{cfg: cfg, handler: handler, log: log, conns: newTCPConns()}
	if cfg.RRL.Rate > 0 {
		s.rrl = newRRL(cfg.RRL, time.Now())
	}
	return s
}

// Listen binds the UDP sockets and the TCP listener on the same port.
func (s *Server) Listen() error {
	_, port, err := net.SplitHostPort(s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("dns address %q: %w", s.cfg.Addr, err)
	}
	// With port 0, the UDP port the kernel picks may be taken for TCP:
	// try a few times.
	for try := 0; ; try++ {
		err := s.listen()
		if err == nil || port != "0" || try >= 20 {
			return err
		}
	}
}

func (s *Server) listen() (err error) {
	lc := net.ListenConfig{Control: reusePort}
	var conns []*net.UDPConn
	defer func() {
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
		}
	}()
	addr := s.cfg.Addr
	for range s.cfg.UDPSockets {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			return fmt.Errorf("listen udp %s: %w", addr, err)
		}
		c := pc.(*net.UDPConn)
		conns = append(conns, c)
		addr = c.LocalAddr().String() // the others share the first one's port
		got, err := setBuffers(c, s.cfg.UDPBufferBytes)
		if err != nil {
			return fmt.Errorf("udp socket buffers of %d bytes: %w", s.cfg.UDPBufferBytes, err)
		}
		// The kernel reports twice the usable size (its bookkeeping).
		if got/2 < s.cfg.UDPBufferBytes && len(conns) == 1 {
			s.log.Warn("UDP receive buffer is smaller than asked: raise net.core.rmem_max, or run with CAP_NET_ADMIN",
				"asked_bytes", s.cfg.UDPBufferBytes, "got_bytes", got)
		}
	}
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen tcp %s: %w", addr, err)
	}
	s.udp = conns
	s.tcp = &limitListener{Listener: tcp, max: int64(s.cfg.MaxTCPConns), onClose: s.conns.forget}
	return nil
}

// Addr returns the bound address (UDP and TCP share it), or nil before
// Listen.
func (s *Server) Addr() net.Addr {
	if len(s.udp) == 0 {
		return nil
	}
	return s.udp[0].LocalAddr()
}

// Run serves until ctx is done, then closes the sockets and waits for
// in-flight queries. Listen must have succeeded.
func (s *Server) Run(ctx context.Context) error {
	if len(s.udp) == 0 {
		return errors.New("dns server: Listen was not called")
	}
	idle := s.cfg.TCPIdleTimeout
	tcp := &dns.Server{Listener: s.tcp, ReadTimeout: s.cfg.TCPReadTimeout,
		IdleTimeout: func() time.Duration { return idle }, MaxTCPQueries: s.cfg.MaxTCPQueries,
		// Serve gets every request with the bytes as received (TSIG) and
		// answers every opcode itself.
		Handler: &tcpHandler{h: s.handler, conns: s.conns, ctx: ctx, timeout: s.handler.xfr.cfg.WriteTimeout},
		DecorateReader: func(r dns.Reader) dns.Reader {
			return tcpGate{Reader: s.conns.decorate(r), h: s.handler}
		},
		MsgAcceptFunc: acceptRequests}
	// A shutdown before the TCP server has started is ignored by it, and
	// it would then serve on: wait for it to start.
	started := make(chan struct{})
	tcp.NotifyStartedFunc = func() { close(started) }
	waiting := func() bool {
		for _, c := range s.udp {
			if udpPending(c) {
				return true
			}
		}
		return false
	}
	s.handler.waiting.Store(&waiting)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := tcp.ActivateAndServe(); err != nil {
			errc <- err
		}
	}()
	for _, c := range s.udp {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveUDP(c)
		}()
	}
	var err error
	select {
	case <-started:
		s.log.Info("dns listening", "addr", s.Addr().String(), "udp_sockets", len(s.udp), "rrl_rate", s.cfg.RRL.Rate)
		select {
		case <-ctx.Done():
		case err = <-errc:
		}
	case err = <-errc:
	}
	if err != nil {
		err = fmt.Errorf("dns tcp server: %w", err)
	}
	for _, c := range s.udp {
		c.Close()
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = tcp.ShutdownContext(shutdownCtx)
	wg.Wait()
	s.handler.waitUpdates()
	return err
}

// serveUDPSimple reads and answers queries on c one at a time until it is
// closed; it is the loop for systems without batched socket calls.
func (s *Server) serveUDPSimple(c *net.UDPConn) {
	sc := newScratch()
	sc.conn = c
	buf := make([]byte, dns.MaxMsgSize)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ICMP errors reported on the socket
		}
		if from.Port() == 0 {
			continue // no one can receive an answer at port 0
		}
		start := time.Now()
		out, limited := []byte(nil), false
		if s.rrl != nil {
			out, limited = s.rateLimit(buf[:n], from.Addr(), start, sc)
		}
		if !limited {
			out = s.handler.serveUDP(buf[:n], from, sc)
		}
		s.handler.stats.observe(time.Since(start))
		if out != nil {
			if _, err := c.WriteToUDPAddrPort(out, from); err != nil && !errors.Is(err, net.ErrClosed) {
				s.log.Debug("udp write", "to", from.String(), "err", err)
			}
		}
	}
}

// errMalformed ends a TCP connection that sent a malformed message.
var errMalformed = errors.New("malformed DNS message")

// tcpGate reads each TCP message for the miekg/dns server with
// readMessage, as the UDP path does, so that both transports react alike.
// A malformed message gets its FORMERR (or nothing) from the gate, and the
// connection is closed, as Knot DNS does. A well-formed one goes on to the
// handler; a simple query in its plain form (without the records a query
// does not use, and without the options of its OPT, some contents of
// which miekg/dns would reject).
type tcpGate struct {
	dns.Reader
	h *Handler
}

func (g tcpGate) ReadTCP(conn net.Conn, timeout time.Duration) ([]byte, error) {
	pkt, err := g.Reader.ReadTCP(conn, timeout)
	if err != nil {
		return nil, err
	}
	m, fault := readMessage(pkt)
	if fault == msgOK {
		if !m.response() && m.simple() && (!m.plain() || m.optLen > 0) {
			return m.appendPlain(pkt, nil), nil
		}
		return pkt, nil
	}
	g.h.rejectTCP(conn, pkt, &m, fault)
	return nil, errMalformed
}

// limitListener closes connections beyond max at once instead of letting
// them queue, so a flood of idle connections cannot exhaust the process.
type limitListener struct {
	net.Listener
	max     int64
	active  atomic.Int64
	onClose func(net.Conn) // nil: none
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.active.Add(1) > l.max {
			l.active.Add(-1)
			c.Close()
			continue
		}
		return &countedConn{Conn: c, l: l}, nil
	}
}

type countedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.l.active.Add(-1)
		if c.l.onClose != nil {
			c.l.onClose(c)
		}
	})
	return c.Conn.Close()
}

// acceptRequests lets every message that is not a response reach the
// handler, which answers opcodes and malformed counts itself (and checks
// their TSIG first).
func acceptRequests(dh dns.Header) dns.MsgAcceptAction {
	if dh.Bits&(1<<15) != 0 {
		return dns.MsgIgnore
	}
	return dns.MsgAccept
}
