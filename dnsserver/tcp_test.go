package dnsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// frame returns msgs, each with its two-byte length prefix, as one
// buffer.
func frame(msgs ...[]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(m)))
		b = append(b, m...)
	}
	return b
}

// TestTCPPipelining sends many queries in one write on one connection
// (RFC 7766 section 6.2.1.1): cached answers, cache misses, the full
// path, zone transfers streamed on goroutines of their own (more than a
// connection serves at once) and refused ones. Every query gets its
// answer, matched by ID, whatever the order; a transfer gets its whole
// stream.
func TestTCPPipelining(t *testing.T) {
	cfg := xfrConfig(t)
	cfg.Transfer.Allow = append(cfg.Transfer.Allow, mustRule(t, "127.0.0.0/8"))
	h := NewHandler(cfg, testRegistry(t, fixture, nil), nil, nil)
	addr := startServer(t, ServerConfig{UDPSockets: 1}, h)

	type want struct {
		qname string
		qtype uint16
		rcode int
		axfr  bool // a stream that ends with the SOA it began with
	}
	const n = 300
	wants := make(map[uint16]want, n)
	var msgs [][]byte
	for i := range n {
		id := uint16(i + 1)
		w := want{qname: goodName, qtype: dns.TypeA, rcode: dns.RcodeSuccess}
		switch {
		case i%60 == 7:
			w = want{qname: "disco.internal.", qtype: dns.TypeAXFR, axfr: true}
		case i%20 == 3:
			w = want{qname: "not-a-zone.example.", qtype: dns.TypeAXFR, rcode: dns.RcodeRefused}
		case i%3 == 1:
			w = want{qname: fmt.Sprintf("nope-%d.service.disco.internal.", i), qtype: dns.TypeA, rcode: dns.RcodeNameError}
		case i%5 == 2:
			w = want{qname: "_web._tcp.service.disco.internal.", qtype: dns.TypeSRV}
		case i%7 == 4:
			w = want{qname: goodName, qtype: dns.TypeANY}
		}
		wants[id] = w
		msgs = append(msgs, pack(t, id, w.qname, w.qtype, func(m *dns.Msg) {
			if i%2 == 0 {
				m.SetEdns0(1232, false)
			}
		}))
	}
	c := dialTCP(t, addr)
	if _, err := c.Write(frame(msgs...)); err != nil {
		t.Fatal(err)
	}
	soas := make(map[uint16]int)
	var order []uint16
	for len(wants) > 0 {
		out := c.recv()
		m := new(dns.Msg)
		if err := m.Unpack(out); err != nil {
			t.Fatalf("answer %x does not parse: %v", out, err)
		}
		w, ok := wants[m.Id]
		if !ok {
			t.Fatalf("answer with ID %d, which was not asked or was answered already:\n%v", m.Id, m)
		}
		if len(m.Question) != 1 || m.Question[0].Name != w.qname || m.Question[0].Qtype != w.qtype {
			t.Fatalf("answer to ID %d is for %v, want %s %s", m.Id, m.Question, w.qname, dns.TypeToString[w.qtype])
		}
		if m.Rcode != w.rcode {
			t.Fatalf("answer to ID %d (%s %s): %s, want %s", m.Id, w.qname, dns.TypeToString[w.qtype],
				dns.RcodeToString[m.Rcode], dns.RcodeToString[w.rcode])
		}
		if w.axfr {
			for _, rr := range m.Answer {
				if rr.Header().Rrtype == dns.TypeSOA {
					soas[m.Id]++
				}
			}
			if soas[m.Id] < 2 {
				continue
			}
		}
		order = append(order, m.Id)
		delete(wants, m.Id)
	}
	if !slices.IsSorted(order) {
		t.Logf("answers came out of order (allowed): %v", order)
	}
}

// TestTCPLastServedLater sends a query and then, last in the same write,
// a request served on its own goroutine (a zone transfer): the query's
// answer is sent before the server waits for more, and the transfer's
// follows.
func TestTCPLastServedLater(t *testing.T) {
	h := NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
	addr := startServer(t, ServerConfig{UDPSockets: 1, TCPReadTimeout: time.Hour, TCPIdleTimeout: time.Hour}, h)
	c := dialTCP(t, addr)
	if _, err := c.Write(frame(pack(t, 1, goodName, dns.TypeA, nil), pack(t, 2, "disco.internal.", dns.TypeAXFR, nil))); err != nil {
		t.Fatal(err)
	}
	got := map[uint16]int{}
	for range 2 {
		m := new(dns.Msg)
		if err := m.Unpack(c.recv()); err != nil {
			t.Fatal(err)
		}
		got[m.Id] = m.Rcode
	}
	if got[1] != dns.RcodeSuccess || got[2] != dns.RcodeRefused {
		t.Fatalf("rcodes by ID %v, want 1: NOERROR, 2: REFUSED", got)
	}
}

// TestTCPFraming checks the reading of length-prefixed messages: a
// prefix split across writes, a message longer than the read buffer, and
// messages that end the connection without an answer.
func TestTCPFraming(t *testing.T) {
	h := NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
	addr := startServer(t, ServerConfig{UDPSockets: 1, TCPReadTimeout: time.Hour, TCPIdleTimeout: time.Hour}, h)
	query := pack(t, 1, goodName, dns.TypeA, nil)
	padded := pack(t, 2, goodName, dns.TypeA, func(m *dns.Msg) {
		m.SetEdns0(1232, false)
		o := m.IsEdns0()
		o.Option = append(o.Option, &dns.EDNS0_PADDING{Padding: make([]byte, 3*tcpReadBuffer)})
	})

	t.Run("length prefix split across writes", func(t *testing.T) {
		c := dialTCP(t, addr)
		b := frame(query)
		for _, part := range [][]byte{b[:1], b[1:5], b[5:]} {
			if _, err := c.Write(part); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond) // separate segments
		}
		if out := c.recv(); binary.BigEndian.Uint16(out) != 1 {
			t.Fatalf("answer %x, want ID 1", out)
		}
	})
	t.Run("message longer than the read buffer", func(t *testing.T) {
		c := dialTCP(t, addr)
		if _, err := c.Write(frame(padded, query)); err != nil {
			t.Fatal(err)
		}
		for _, id := range []uint16{2, 1} {
			out := c.recv()
			m := new(dns.Msg)
			if err := m.Unpack(out); err != nil || m.Id != id || m.Rcode != dns.RcodeSuccess || len(m.Answer) != len(goodAnswer) {
				t.Fatalf("answer %v (%v), want ID %d with the answer", m, err, id)
			}
		}
	})
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"zero-length message", nil},
		{"one-byte message", []byte{0}},
		{"65535 zero bytes", make([]byte, 0xffff)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialTCP(t, addr)
			// The query after it is never read.
			if _, err := c.Write(frame(tc.msg, query)); err != nil {
				t.Fatal(err)
			}
			c.waitClosed()
			checkGood(t, "tcp", addr)
		})
	}
	t.Run("query, then a prefix promising more than follows, then close", func(t *testing.T) {
		c := dialTCP(t, addr)
		b := append(frame(query), 0x01, 0x00, 1, 2, 3)
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		if out := c.recv(); binary.BigEndian.Uint16(out) != 1 {
			t.Fatalf("answer %x, want ID 1", out)
		}
		c.Conn.(*net.TCPConn).CloseWrite()
		c.waitClosed()
	})
}

// TestTCPDribble sends a query one byte at a time, slower than the read
// timeout allows for a whole message: the deadline is not extended by
// each byte, so the server closes the connection without an answer.
func TestTCPDribble(t *testing.T) {
	h := NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
	addr := startServer(t, ServerConfig{UDPSockets: 1, TCPReadTimeout: 200 * time.Millisecond, TCPIdleTimeout: time.Hour}, h)
	c := dialTCP(t, addr)
	b := frame(pack(t, 1, goodName, dns.TypeA, nil))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, x := range b {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := c.Write([]byte{x}); err != nil {
				return
			}
		}
	}()
	c.waitClosed()
	close(stop)
	<-done
	checkGood(t, "tcp", addr)
}

// TestTCPSlowReader pipelines queries on a connection whose client reads
// nothing: once the answers fill the socket buffers, the server's write
// times out and it closes the connection, while other clients are
// served.
func TestTCPSlowReader(t *testing.T) {
	h := NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
	addr := startServer(t, ServerConfig{UDPSockets: 1, TCPWriteTimeout: 200 * time.Millisecond, TCPReadTimeout: time.Hour,
		TCPIdleTimeout: time.Hour}, h)
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var batch [][]byte
	for i := range 1000 {
		batch = append(batch, pack(t, uint16(i), goodName, dns.TypeA, nil))
	}
	chunk := frame(batch...)
	// At most 200 MB of queries: far more than any socket buffers hold.
	closed := false
	for range 200e6 / len(chunk) {
		_ = nc.SetWriteDeadline(time.Now().Add(waitLimit))
		if _, err := nc.Write(chunk); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server neither read on nor closed the connection within %s", waitLimit)
			}
			closed = true
			break
		}
	}
	if !closed {
		t.Fatal("the server read 200 MB of queries whose answers were never read")
	}
	checkGood(t, "tcp", addr)
	checkGood(t, "udp", addr)
}

// TestMaxTCPQueries checks that a connection is closed after its
// MaxTCPQueries queries, which are answered.
func TestMaxTCPQueries(t *testing.T) {
	h := NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
	addr := startServer(t, ServerConfig{UDPSockets: 1, MaxTCPQueries: 3}, h)
	c := dialTCP(t, addr)
	var msgs [][]byte
	for i := range 5 {
		msgs = append(msgs, pack(t, uint16(i), goodName, dns.TypeA, nil))
	}
	if _, err := c.Write(frame(msgs...)); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if out := c.recv(); binary.BigEndian.Uint16(out) != uint16(i) {
			t.Fatalf("answer %x, want ID %d", out, i)
		}
	}
	c.waitClosed()
}

// TestTCPShutdown checks that Run returns while a client holds an idle
// connection, and that the connection is closed.
func TestTCPShutdown(t *testing.T) {
	h := NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
	srv := NewServer(ServerConfig{Addr: "127.0.0.1:0", UDPSockets: 1, Hooks: h.Hooks()}, h, nil)
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	c := dialTCP(t, srv.Addr().String())
	c.send(pack(t, 1, goodName, dns.TypeA, nil))
	c.recv()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	c.waitClosed()
}
