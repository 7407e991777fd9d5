package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
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
	// TCPWriteTimeout bounds each write of answers to a TCP connection
	// (a zone transfer sets its own per message); default 10s.
	TCPWriteTimeout time.Duration
	// MaxTCPConns caps concurrent TCP connections; more are closed at once.
	// Default 1000.
	MaxTCPConns int
	// MaxTCPQueries, when positive, closes a TCP connection after that
	// many queries; by default there is no cap, as in Knot DNS, BIND and
	// Unbound: a client that pipelines loses the queries it has in flight
	// when the server closes.
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
	// Hooks observe the server's work (metrics, query log); the zero
	// value observes nothing. Handler.Hooks returns the handler's.
	Hooks Hooks
}

func (c *ServerConfig) setDefaults() {
	if c.TCPIdleTimeout == 0 {
		c.TCPIdleTimeout = 10 * time.Second
	}
	if c.TCPReadTimeout == 0 {
		c.TCPReadTimeout = 2 * time.Second
	}
	if c.TCPWriteTimeout == 0 {
		c.TCPWriteTimeout = 10 * time.Second
	}
	if c.MaxTCPConns == 0 {
		c.MaxTCPConns = 1000
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

// The Server and the code that answers are joined as miekg/dns joins its
// Server and Handler: the server owns the sockets, the framing, the
// timeouts and rate limiting, and hands each message it reads to an
// Answerer; what happened to the message is reported to Hooks. The server
// knows nothing else of the answering code.

// Transport is how a message came.
type Transport uint8

// The transports.
const (
	TransportUDP Transport = iota
	TransportTCP
	numTransports
)

var transportNames = [numTransports]string{"udp", "tcp"}

func (t Transport) String() string {
	if t < numTransports {
		return transportNames[t]
	}
	return "transport" + fmt.Sprint(uint8(t))
}

// Answerer answers the messages a Server reads; *Handler implements it.
type Answerer interface {
	// AnswerWire answers the message q.Wire at once, appending the answer
	// to q.Out[:0] (see Reply). It must not keep q.Wire or the answer
	// past the call: the server reuses both. A request whose answer
	// waits or streams (an UPDATE, a zone transfer over TCP) is not
	// answered here: AnswerWire returns it in Reply.Later, and the server
	// passes it to Serve on a goroutine of its own.
	AnswerWire(q *Query) Reply
	// Serve answers a request AnswerWire handed back, writing its
	// messages (one, or a transfer's stream) to w; ctx ends a transfer
	// early (shutdown).
	Serve(ctx context.Context, r Request, w MessageWriter) Reply
}

// Query is one message as a transport received it, and the memory its
// answer is built in. A server reuses a Query for message after message
// of one socket or connection.
type Query struct {
	// Wire is the message as received.
	Wire []byte
	// Transport is how it came.
	Transport Transport
	// Remote is the client's address.
	Remote netip.AddrPort
	// Out is the buffer AnswerWire appends its answer to.
	Out []byte
	// key is the Handler's working memory (the answer cache's key).
	key []byte
}

// newQuery returns a Query for transport t with room for an answer of
// out bytes.
func newQuery(t Transport, out int) *Query {
	return &Query{Transport: t, key: make([]byte, 0, 300), Out: make([]byte, 0, out)}
}

// Reply is what became of one message.
type Reply struct {
	// Wire is the answer to send (for AnswerWire, in Query.Out); nil
	// sends nothing now.
	Wire []byte
	// Answered is true when an answer was, or is to be, sent: Wire, or
	// the messages Serve wrote.
	Answered bool
	// Qtype and Rcode are the question's type (0 without one) and the
	// answer's response code.
	Qtype uint16
	Rcode int
	// Truncated marks an answer cut to fit (TC=1).
	Truncated bool
	// Size is the answer's length in bytes (for Serve, of every message
	// written).
	Size int
	// Close asks a stream transport to close the connection once Wire is
	// sent: the message was malformed, and what follows it cannot be
	// trusted to be framed as the client meant.
	Close bool
	// Later, when not nil, is the request to answer with Serve.
	Later *Request
}

// RRLAction is what response rate limiting did to one UDP answer.
type RRLAction uint8

// The RRL actions.
const (
	RRLNone RRLAction = iota // not limited
	RRLDrop                  // not sent
	RRLSlip                  // sent truncated, without records
)

// QueryEvent reports one message the server read and what became of it.
type QueryEvent struct {
	Transport Transport
	Remote    netip.AddrPort
	// Wire is the message as received; it is valid only during the
	// call.
	Wire []byte
	// Reply is the answerer's reply; Reply.Wire is the answer sent, if
	// any, valid only during the call.
	Reply Reply
	// RRL is what rate limiting did; with RRLDrop or RRLSlip the message
	// did not reach the answerer, and Reply.Wire is the slip, if any.
	RRL RRLAction
	// Duration is the time from reading the message to having its answer
	// ready; for messages read together in one batch, the batch's time
	// shared equally.
	Duration time.Duration
}

// Qname returns the question name of the message as sent, in
// presentation format, or "" without a readable one. It allocates.
func (e *QueryEvent) Qname() string {
	m, _ := readMessage(e.Wire)
	return m.qname(e.Wire)
}

// Hooks connect a Server to what observes it and to what shares the
// processor with it. Each field may be nil.
type Hooks struct {
	// Query is called once for each message read: after its answer is
	// ready and before it is sent, or, for a request answered by Serve,
	// after Serve returned. It runs on the reading goroutine: it must be
	// quick and must not block.
	Query func(QueryEvent)
	// Backlog is called once when the server starts serving with a
	// function that reports whether a UDP query waits to be read; a long
	// task (a zone transfer) uses it to let queries go first.
	Backlog func(waiting func() bool)
	// Drained is called when a UDP reader found its socket empty.
	Drained func()
}

func (h *Hooks) query(e QueryEvent) {
	if h.Query != nil {
		h.Query(e)
	}
}

func (h *Hooks) drained() {
	if h.Drained != nil {
		h.Drained()
	}
}

// Server serves an Answerer over UDP and TCP. Each UDP socket is read by
// one goroutine that answers in place, with no goroutine per packet; each
// TCP connection by one goroutine that answers what it can at once and
// writes answers in batches, with requests that wait or stream (UPDATE,
// zone transfers) served meanwhile on goroutines of their own (RFC 7766
// pipelining).
type Server struct {
	cfg   ServerConfig
	a     Answerer
	hooks Hooks
	log   *slog.Logger

	udp []*net.UDPConn
	tcp *tcpServer
	rrl *rrl // nil: no rate limiting
	// later counts the requests being answered by Serve.
	later sync.WaitGroup
}

// NewServer returns a server for a. It binds nothing until Listen.
// cfg.RRL must be valid (RRLConfig.Validate).
func NewServer(cfg ServerConfig, a Answerer, log *slog.Logger) *Server {
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "dns")
	s := &Server{cfg: cfg, a: a, hooks: cfg.Hooks, log: log}
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
	s.tcp = newTCPServer(s, tcp)
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

// shutdownGrace bounds the wait for TCP connections to finish their
// answers once the server stops.
const shutdownGrace = 5 * time.Second

// Run serves until ctx is done, then closes the sockets and waits for
// in-flight queries. Listen must have succeeded.
func (s *Server) Run(ctx context.Context) error {
	if len(s.udp) == 0 {
		return errors.New("dns server: Listen was not called")
	}
	if s.hooks.Backlog != nil {
		udp := s.udp
		s.hooks.Backlog(func() bool {
			for _, c := range udp {
				if udpPending(c) {
					return true
				}
			}
			return false
		})
	}
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.tcp.serve(ctx); err != nil {
			errc <- fmt.Errorf("dns tcp server: %w", err)
		}
	}()
	for _, c := range s.udp {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveUDP(ctx, c)
		}()
	}
	s.log.Info("dns listening", "addr", s.Addr().String(), "udp_sockets", len(s.udp), "rrl_rate", s.cfg.RRL.Rate)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	for _, c := range s.udp {
		c.Close()
	}
	s.tcp.shutdown(shutdownGrace)
	wg.Wait()
	s.later.Wait()
	return err
}

// answerUDP answers the UDP query in q.Wire: rate limiting first, then the
// answerer. It returns the answer to send now (nil: none) and, unless the
// query is served later, the event for the hooks, without its duration.
func (s *Server) answerUDP(ctx context.Context, c *net.UDPConn, q *Query, now time.Time) (out []byte, ev QueryEvent, observe bool) {
	ev = QueryEvent{Transport: TransportUDP, Remote: q.Remote, Wire: q.Wire}
	if s.rrl != nil {
		if ev.RRL = s.rateLimit(q, now); ev.RRL != RRLNone {
			if ev.RRL == RRLSlip {
				ev.Reply.Wire = slipResponse(q.Wire, q.Out[:0])
				ev.Reply.Answered = ev.Reply.Wire != nil
				ev.Reply.Size = len(ev.Reply.Wire)
			}
			return ev.Reply.Wire, ev, true
		}
	}
	ev.Reply = s.a.AnswerWire(q)
	if r := ev.Reply.Later; r != nil {
		// An UPDATE waits for a durable write: it does not hold the
		// socket's reader, and writes its answer itself.
		s.later.Add(1)
		go func() {
			defer s.later.Done()
			start := time.Now()
			rep := s.a.Serve(ctx, *r, &udpWriter{conn: c, to: r.Remote})
			s.hooks.query(QueryEvent{Transport: TransportUDP, Remote: r.Remote, Wire: r.Wire, Reply: rep, Duration: time.Since(start)})
		}()
		return nil, ev, false
	}
	return ev.Reply.Wire, ev, true
}

// serveUDPSimple reads and answers queries on c one at a time until it is
// closed; it is the loop for systems without batched socket calls.
func (s *Server) serveUDPSimple(ctx context.Context, c *net.UDPConn) {
	q := newQuery(TransportUDP, dns.MaxMsgSize)
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
		q.Wire, q.Remote = buf[:n], from
		out, ev, observe := s.answerUDP(ctx, c, q, start)
		if observe {
			ev.Duration = time.Since(start)
			s.hooks.query(ev)
		}
		if out != nil {
			if _, err := c.WriteToUDPAddrPort(out, from); err != nil && !errors.Is(err, net.ErrClosed) {
				s.log.Debug("udp write", "to", from.String(), "err", err)
			}
		}
	}
}

// udpWriter sends the answer to a request served by Serve to the UDP
// client at to.
type udpWriter struct {
	conn *net.UDPConn
	to   netip.AddrPort
	sent bool
}

func (u *udpWriter) WriteMessage(wire []byte, _ time.Time) error {
	if u.sent {
		return errors.New("a UDP response is one message")
	}
	u.sent = true
	_, err := u.conn.WriteToUDPAddrPort(wire, u.to)
	if errors.Is(err, net.ErrClosed) {
		return nil // shutting down
	}
	return err
}
