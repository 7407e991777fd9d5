package dnsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// waitLimit bounds every wait for the server in these tests. It is far
// above any timeout configured here, so it only decides how long a broken
// server takes to fail a test.
const waitLimit = 10 * time.Second

// startServer runs a Server for h on a free loopback port until the test
// ends and returns its address.
func startServer(t testing.TB, cfg ServerConfig, h *Handler) string {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	cfg.Hooks = h.Hooks()
	srv := NewServer(cfg, h, nil)
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server stopped with %v", err)
		}
	})
	return srv.Addr().String()
}

const goodName = "web.service.disco.internal."

// goodAnswer is what a well-formed query for goodName A gets.
var goodAnswer = []string{
	"web.service.disco.internal.\t5\tIN\tA\t10.0.0.1",
	"web.service.disco.internal.\t5\tIN\tA\t10.0.0.2",
	"web.service.disco.internal.\t5\tIN\tA\t10.0.0.3",
}

// checkGood asks addr for goodName over network ("udp" or "tcp") as a
// well-behaved client and fails the test unless the answer is right.
func checkGood(t testing.TB, network, addr string) {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: waitLimit}
	req := new(dns.Msg)
	req.SetQuestion(goodName, dns.TypeA)
	resp, _, err := c.Exchange(req, addr)
	if err != nil {
		t.Fatalf("good %s query: %v", network, err)
	}
	if resp.Rcode != dns.RcodeSuccess || !slices.Equal(rrStrings(resp.Answer), goodAnswer) {
		t.Fatalf("good %s query: rcode %s answer %v, want NOERROR %v", network, dns.RcodeToString[resp.Rcode], rrStrings(resp.Answer), goodAnswer)
	}
}

// pack packs a query for name and type, changed by mod.
func pack(t testing.TB, id uint16, name string, qtype uint16, mod func(m *dns.Msg)) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = id
	if mod != nil {
		mod(m)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawQuery builds a query packet with the given counts and body after the
// header; the header has ID id and RD=1.
func rawQuery(id uint16, flags uint16, qd, an, ns, ar uint16, body ...byte) []byte {
	h := make([]byte, 12, 12+len(body))
	binary.BigEndian.PutUint16(h[0:], id)
	binary.BigEndian.PutUint16(h[2:], flags)
	binary.BigEndian.PutUint16(h[4:], qd)
	binary.BigEndian.PutUint16(h[6:], an)
	binary.BigEndian.PutUint16(h[8:], ns)
	binary.BigEndian.PutUint16(h[10:], ar)
	return append(h, body...)
}

// wireName returns labels in wire form, ended by the root label.
func wireName(labels ...string) []byte {
	var b []byte
	for _, l := range labels {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0)
}

func repeat(c byte, n int) string { return string(slices.Repeat([]byte{c}, n)) }

const silence = -1

// hostileCase is one malformed message and what the server must answer:
// what Knot DNS answers, or disco's listed difference from it (see
// knot_test.go, which holds the wider corpus and the differences).
type hostileCase struct {
	name  string
	pkt   []byte
	rcode int // silence: no answer at all
	// noOPT: the answer must carry no OPT (the query's EDNS was invalid).
	noOPT bool
	// closes: over TCP, the server closes the connection after it (a
	// malformed message).
	closes bool
}

func hostileCases(t testing.TB) []hostileCase {
	const id = 0x4242
	const rd = 0x0100
	typeA := []byte{0, 1, 0, 1}
	q := func(name []byte, tail ...byte) []byte { return append(append(name, typeA...), tail...) }
	web := wireName("web", "service", "disco", "internal")
	good := q(slices.Clone(web))
	opt := []byte{0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0} // root, OPT, 1232, no options
	optRR := func() dns.RR {
		o := new(dns.OPT)
		o.Hdr.Name = "."
		o.Hdr.Rrtype = dns.TypeOPT
		o.SetUDPSize(1232)
		return o
	}
	longName := make([]string, 5)
	for i := range longName {
		longName[i] = repeat('a', 63)
	}
	rnd := rand.New(rand.NewPCG(7, 7))
	garbage := make([]byte, 600)
	for i := range garbage {
		garbage[i] = byte(rnd.UintN(256))
	}
	garbage[2] &= 0x07 // a standard query (QR=0, opcode QUERY)
	// A question that reads, then garbage: FORMERR.
	garbageAfter := append(rawQuery(id, rd, 1, 0, 0, 1, good...), garbage[12:]...)

	return []hostileCase{
		{"empty", nil, silence, false, true},
		{"truncated header", rawQuery(id, rd, 1, 0, 0, 0)[:7], silence, false, true},
		// A question that cannot be read cannot be echoed: no answer.
		{"header only", rawQuery(id, rd, 1, 0, 0, 0), silence, false, true},
		{"question cut short", rawQuery(id, rd, 1, 0, 0, 0, good[:9]...), silence, false, true},
		{"question without its type", rawQuery(id, rd, 1, 0, 0, 0, web...), silence, false, true},
		{"no question", rawQuery(id, rd, 0, 0, 0, 0), dns.RcodeFormatError, false, false},
		// RFC 9619: FORMERR for a query with more than one question.
		{"two questions", rawQuery(id, rd, 2, 0, 0, 0, append(slices.Clone(good), good...)...), dns.RcodeFormatError, true, true},
		{"two questions claimed, one sent", rawQuery(id, rd, 2, 0, 0, 0, good...), dns.RcodeFormatError, true, true},
		{"compression pointer loop", rawQuery(id, rd, 1, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1), silence, false, true},
		{"compression pointer forward", rawQuery(id, rd, 1, 0, 0, 0, 0xc0, 14, 0xc0, 12, 0, 1, 0, 1), silence, false, true},
		{"label of 64 bytes", rawQuery(id, rd, 1, 0, 0, 0, q(wireName(repeat('a', 64), "disco", "internal"))...), silence, false, true},
		{"name of 321 bytes", rawQuery(id, rd, 1, 0, 0, 0, q(wireName(longName...))...), silence, false, true},
		// A readable question and something malformed after it: FORMERR.
		{"additional record promised, missing", rawQuery(id, rd, 1, 0, 0, 1, good...), dns.RcodeFormatError, true, true},
		{"trailing bytes", rawQuery(id, rd, 1, 0, 0, 0, append(slices.Clone(good), 1, 2, 3)...), dns.RcodeFormatError, true, true},
		{"two OPT records", rawQuery(id, rd, 1, 0, 0, 2, append(append(slices.Clone(good), opt...), opt...)...), dns.RcodeFormatError, true, true},
		{"OPT in the answer section", pack(t, id, goodName, dns.TypeA, func(m *dns.Msg) { m.Answer = []dns.RR{optRR()} }), dns.RcodeFormatError, true, true},
		{"OPT in the authority section", pack(t, id, goodName, dns.TypeA, func(m *dns.Msg) { m.Ns = []dns.RR{optRR()} }), dns.RcodeFormatError, true, true},
		{"OPT not owned by the root", rawQuery(id, rd, 1, 0, 0, 1, append(slices.Clone(good), append([]byte{1, 'x'}, opt...)...)...), dns.RcodeFormatError, true, true},
		{"OPT cut short", rawQuery(id, rd, 1, 0, 0, 1, append(slices.Clone(good), opt[:7]...)...), dns.RcodeFormatError, true, true},
		{"EDNS option past the OPT's end", rawQuery(id, rd, 1, 0, 0, 1, append(append(slices.Clone(good), opt[:9]...), 0, 8, 0, 10, 0, 8, 'a', 'b', 'c', 'd')...), dns.RcodeFormatError, true, true},
		{"garbage after the question", garbageAfter, dns.RcodeFormatError, true, true},
		{"EDNS version 1", pack(t, id, goodName, dns.TypeA, func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }), dns.RcodeBadVers, false, false},
		{"unknown class", pack(t, id, goodName, dns.TypeA, func(m *dns.Msg) { m.Question[0].Qclass = 0x1234 }), dns.RcodeRefused, false, false},
		{"chaos class", pack(t, id, "version.bind.", dns.TypeTXT, func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }), dns.RcodeRefused, false, false},
		{"response sent as a query", pack(t, id, goodName, dns.TypeA, func(m *dns.Msg) { m.Response = true }), silence, false, false},
		{"truncated response", rawQuery(id, 0x8000, 1, 0, 0, 0), silence, false, true},
		{"update without updates", pack(t, id, "disco.internal.", dns.TypeSOA, func(m *dns.Msg) { m.Opcode = dns.OpcodeUpdate }), dns.RcodeRefused, false, false},
		// No key is loaded: a signed request gets NOTAUTH (BADKEY); a TSIG
		// that is not the last record, FORMERR.
		{"TSIG with an unknown key", pack(t, id, goodName, dns.TypeA, func(m *dns.Msg) {
			m.SetTsig("stranger.", dns.HmacSHA256, 300, 1767225600)
		}), dns.RcodeNotAuth, false, false},
		{"TSIG before the OPT", pack(t, id, goodName, dns.TypeA, func(m *dns.Msg) {
			m.SetTsig("stranger.", dns.HmacSHA256, 300, 1767225600)
			m.Extra = append(m.Extra, optRR())
		}), dns.RcodeFormatError, true, true},
		{"signed update", pack(t, id, "disco.internal.", dns.TypeSOA, func(m *dns.Msg) {
			m.Opcode = dns.OpcodeUpdate
			m.SetTsig("stranger.", dns.HmacSHA256, 300, 1767225600)
		}), dns.RcodeNotAuth, false, false},
		{"status opcode", pack(t, id, goodName, dns.TypeA, func(m *dns.Msg) { m.Opcode = dns.OpcodeStatus }), dns.RcodeNotImplemented, false, false},
		// No transfer rule lets anyone in (AXFR over UDP is NOTIMP, so IXFR
		// gets the same answer on both transports).
		{"zone transfer", pack(t, id, "disco.internal.", dns.TypeIXFR, nil), dns.RcodeRefused, false, false},
		{"question type OPT", pack(t, id, goodName, dns.TypeOPT, nil), dns.RcodeFormatError, false, false},
		{"question type 0", pack(t, id, goodName, 0, nil), dns.RcodeNotImplemented, false, false},
		{"random bytes (QDCOUNT over 1)", garbage, dns.RcodeFormatError, true, true},
	}
}

// checkHostileAnswer checks the answer to a hostile case.
func checkHostileAnswer(t *testing.T, tc hostileCase, out []byte) {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(out); err != nil {
		t.Fatalf("answer %x does not parse: %v", out, err)
	}
	if !m.Response || m.Id != binary.BigEndian.Uint16(tc.pkt) {
		t.Errorf("answer qr=%v id %#x, want a response with id %#x", m.Response, m.Id, binary.BigEndian.Uint16(tc.pkt))
	}
	if m.Rcode != tc.rcode {
		t.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
	}
	if tc.noOPT && m.IsEdns0() != nil {
		t.Errorf("answer to a query with invalid EDNS carries an OPT: %v", m.IsEdns0())
	}
	if m.Rcode != dns.RcodeSuccess && len(m.Answer) > 0 {
		t.Errorf("%s with answers %v", dns.RcodeToString[m.Rcode], m.Answer)
	}
}

// sentinelID marks the well-formed query sent after each hostile message
// on the same socket: answers come in order, so when the sentinel's answer
// is the first one, the hostile message got none.
const sentinelID = 0xbeef

// TestHostileUDP sends malformed datagrams, each followed by a well-formed
// query from the same socket, and checks the answer of each (or its
// absence); a second client is answered correctly throughout.
func TestHostileUDP(t *testing.T) {
	h := NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
	addr := startServer(t, ServerConfig{UDPSockets: 1}, h)
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sentinel := pack(t, sentinelID, goodName, dns.TypeA, nil)
	buf := make([]byte, dns.MaxMsgSize)
	read := func() []byte {
		conn.SetReadDeadline(time.Now().Add(waitLimit))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		return buf[:n]
	}
	for _, tc := range hostileCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := conn.Write(tc.pkt); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write(sentinel); err != nil {
				t.Fatal(err)
			}
			out := read()
			gotSentinel := len(out) >= 2 && binary.BigEndian.Uint16(out) == sentinelID
			switch {
			case tc.rcode == silence && !gotSentinel:
				t.Errorf("answered %x, want silence", out)
				read()
			case tc.rcode != silence && gotSentinel:
				t.Errorf("no answer, want %s", dns.RcodeToString[tc.rcode])
			case tc.rcode != silence:
				checkHostileAnswer(t, tc, out)
				if out := read(); len(out) < 2 || binary.BigEndian.Uint16(out) != sentinelID {
					t.Fatalf("second answer %x, want the sentinel's", out)
				}
			}
			checkGood(t, "udp", addr)
		})
	}
}

// tcpConn is a raw DNS-over-TCP client connection.
type tcpConn struct {
	t *testing.T
	net.Conn
}

func dialTCP(t *testing.T, addr string) *tcpConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &tcpConn{t: t, Conn: c}
}

// send writes msg with its two-byte length prefix.
func (c *tcpConn) send(msg []byte) {
	c.t.Helper()
	if _, err := c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(msg)))); err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.Write(msg); err != nil {
		c.t.Fatal(err)
	}
}

// recv reads one message.
func (c *tcpConn) recv() []byte {
	c.t.Helper()
	c.SetReadDeadline(time.Now().Add(waitLimit))
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		c.t.Fatalf("no answer: %v", err)
	}
	out := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, out); err != nil {
		c.t.Fatalf("answer cut short: %v", err)
	}
	return out
}

// waitClosed fails the test unless the server closes the connection
// (within waitLimit) without sending anything more.
func (c *tcpConn) waitClosed() {
	c.t.Helper()
	c.SetReadDeadline(time.Now().Add(waitLimit))
	n, err := c.Read(make([]byte, 512))
	if n > 0 {
		c.t.Fatalf("got %d bytes, want the connection closed", n)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
		c.t.Fatalf("connection still open after %s", waitLimit)
	}
	if err == nil {
		c.t.Fatal("read returned nothing and no error")
	}
}

// TestHostileTCP sends the same malformed messages over TCP, each
// followed by a well-formed query on the same connection in the same
// write, and checks the answers, matched by ID, and whether the
// connection survives: a malformed message ends
// it, as Knot DNS does. A second client is answered throughout.
func TestHostileTCP(t *testing.T) {
	h := NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
	addr := startServer(t, ServerConfig{UDPSockets: 1}, h)
	sentinel := pack(t, sentinelID, goodName, dns.TypeA, nil)
	for _, tc := range hostileCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			c := dialTCP(t, addr)
			// One write, so the server cannot close before the sentinel
			// is sent.
			msgs := binary.BigEndian.AppendUint16(nil, uint16(len(tc.pkt)))
			msgs = append(msgs, tc.pkt...)
			msgs = binary.BigEndian.AppendUint16(msgs, uint16(len(sentinel)))
			msgs = append(msgs, sentinel...)
			if _, err := c.Write(msgs); err != nil {
				t.Fatal(err)
			}
			// Answers may come in any order (RFC 7766 section 7): a
			// request served on its own goroutine (a zone transfer) may
			// be answered after the sentinel.
			want := 0
			if tc.rcode != silence {
				want++
			}
			if !tc.closes {
				want++
			}
			var answer []byte
			sentinelSeen := false
			for range want {
				out := c.recv()
				if len(out) >= 2 && binary.BigEndian.Uint16(out) == sentinelID && !sentinelSeen {
					if tc.closes {
						t.Fatalf("the sentinel after a malformed message was answered")
					}
					sentinelSeen = true
					continue
				}
				answer = out
			}
			if tc.rcode != silence {
				if answer == nil {
					t.Fatalf("no answer, want %s", dns.RcodeToString[tc.rcode])
				}
				checkHostileAnswer(t, tc, answer)
			} else if answer != nil {
				t.Fatalf("answer %x, want none", answer)
			}
			if tc.closes {
				c.waitClosed()
			} else if !sentinelSeen {
				t.Fatal("no answer to the sentinel")
			}
			checkGood(t, "tcp", addr)
		})
	}
}

// TestTCPStalls checks that connections that stall are closed by the
// server's read timeout and hold nothing up meanwhile.
func TestTCPStalls(t *testing.T) {
	h := NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
	addr := startServer(t, ServerConfig{UDPSockets: 1, TCPReadTimeout: 200 * time.Millisecond, TCPIdleTimeout: time.Hour}, h)
	tests := []struct {
		name string
		send []byte
	}{
		{"connects and sends nothing", nil},
		{"sends half a length prefix", []byte{0}},
		{"length prefix larger than what follows", append([]byte{0, 200}, pack(t, 1, goodName, dns.TypeA, nil)...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialTCP(t, addr)
			if _, err := c.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			checkGood(t, "tcp", addr)
			checkGood(t, "udp", addr)
			c.waitClosed()
		})
	}
	t.Run("length prefix larger than what follows, then close", func(t *testing.T) {
		c := dialTCP(t, addr)
		if _, err := c.Write(append([]byte{0xff, 0xff}, pack(t, 1, goodName, dns.TypeA, nil)...)); err != nil {
			t.Fatal(err)
		}
		c.Close()
		checkGood(t, "tcp", addr)
	})
}

// TestTCPIdleTimeout checks that a connection idle after a query is closed
// after the idle timeout, while one in use is not cut by the (long) read
// timeout.
func TestTCPIdleTimeout(t *testing.T) {
	h := NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
	addr := startServer(t, ServerConfig{UDPSockets: 1, TCPReadTimeout: time.Hour, TCPIdleTimeout: 200 * time.Millisecond}, h)
	c := dialTCP(t, addr)
	for i := range 3 { // several queries on one connection (RFC 7766)
		c.send(pack(t, uint16(i), goodName, dns.TypeA, nil))
		if out := c.recv(); binary.BigEndian.Uint16(out) != uint16(i) {
			t.Fatalf("answer id %d, want %d", binary.BigEndian.Uint16(out), i)
		}
	}
	c.waitClosed()
}

// TestMaxTCPConns checks that connections beyond the cap are closed at
// once, that UDP clients are served meanwhile, and that TCP clients are
// served again once idle connections have timed out.
func TestMaxTCPConns(t *testing.T) {
	h := NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
	const max = 3
	addr := startServer(t, ServerConfig{UDPSockets: 1, MaxTCPConns: max, TCPReadTimeout: time.Hour, TCPIdleTimeout: 300 * time.Millisecond}, h)
	var held []*tcpConn
	for i := range max {
		c := dialTCP(t, addr)
		// An answer proves the server accepted and counts the connection.
		c.send(pack(t, uint16(i), goodName, dns.TypeA, nil))
		c.recv()
		held = append(held, c)
	}
	for range 3 {
		dialTCP(t, addr).waitClosed()
	}
	checkGood(t, "udp", addr)
	for _, c := range held {
		c.waitClosed() // the idle timeout frees the slots
	}
	for range max {
		checkGood(t, "tcp", addr)
	}
}
