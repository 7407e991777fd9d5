package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
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
}

// Server serves a dns.Handler over UDP and TCP.
type Server struct {
	cfg     ServerConfig
	handler dns.Handler
	log     *slog.Logger

	udp net.PacketConn
	tcp net.Listener
}

// NewServer returns a server for handler. It binds nothing until Listen.
func NewServer(cfg ServerConfig, handler dns.Handler, log *slog.Logger) *Server {
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, handler: handler, log: log}
}

// Listen binds the UDP socket and the TCP listener on the same port.
func (s *Server) Listen() error {
	host, port, err := net.SplitHostPort(s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("dns address %q: %w", s.cfg.Addr, err)
	}
	// With port 0, the UDP port the kernel picks may be taken for TCP:
	// try a few times.
	for try := 0; ; try++ {
		udp, err := net.ListenPacket("udp", s.cfg.Addr)
		if err != nil {
			return fmt.Errorf("listen udp %s: %w", s.cfg.Addr, err)
		}
		tcpAddr := s.cfg.Addr
		if port == "0" {
			tcpAddr = udp.LocalAddr().String()
		}
		tcp, err := net.Listen("tcp", tcpAddr)
		if err != nil {
			udp.Close()
			if port == "0" && try < 20 {
				continue
			}
			return fmt.Errorf("listen tcp %s: %w", net.JoinHostPort(host, port), err)
		}
		s.udp = udp
		s.tcp = &limitListener{Listener: tcp, max: int64(s.cfg.MaxTCPConns)}
		return nil
	}
}

// Addr returns the bound address (UDP and TCP share it), or nil before
// Listen.
func (s *Server) Addr() net.Addr {
	if s.udp == nil {
		return nil
	}
	return s.udp.LocalAddr()
}

// Run serves until ctx is done, then stops the listeners and waits for
// in-flight queries. Listen must have succeeded.
func (s *Server) Run(ctx context.Context) error {
	if s.udp == nil {
		return errors.New("dns server: Listen was not called")
	}
	idle := s.cfg.TCPIdleTimeout
	servers := []*dns.Server{
		{PacketConn: s.udp, Handler: s.handler, UDPSize: UDPSize},
		{Listener: s.tcp, Handler: s.handler, ReadTimeout: s.cfg.TCPReadTimeout,
			IdleTimeout: func() time.Duration { return idle }, MaxTCPQueries: s.cfg.MaxTCPQueries},
	}
	errc := make(chan error, len(servers))
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- srv.ActivateAndServe()
		}()
	}
	s.log.Info("dns listening", "addr", s.Addr().String(), "transports", "udp,tcp")
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("dns server: %w", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		_ = srv.ShutdownContext(shutdownCtx)
	}
	wg.Wait()
	return err
}

// limitListener closes connections beyond max at once instead of letting
// them queue, so a flood of idle connections cannot exhaust the process.
type limitListener struct {
	net.Listener
	max    int64
	active atomic.Int64
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
	c.once.Do(func() { c.l.active.Add(-1) })
	return c.Conn.Close()
}
