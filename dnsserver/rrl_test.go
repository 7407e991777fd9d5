package dnsserver

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// tally counts verdicts.
type tally struct{ answer, slip, drop int }

func (t *tally) add(v rrlVerdict) {
	switch v {
	case rrlAnswer:
		t.answer++
	case rrlSlip:
		t.slip++
	default:
		t.drop++
	}
}

func TestRRLBucket(t *testing.T) {
	r := newRRL(RRLConfig{Rate: 10, Burst: 5, Slip: 2}, epoch)
	k := r.key(netip.MustParseAddr("192.0.2.1"))
	steps := []struct {
		at    time.Duration // since epoch
		n     int
		want  tally
		about string
	}{
		{0, 20, tally{answer: 5, slip: 7, drop: 8}, "the burst, then every second limited response slips"},
		{50 * time.Millisecond, 1, tally{slip: 1}, "half an interval refills nothing; the slip count goes on"},
		{100 * time.Millisecond, 3, tally{answer: 1, drop: 1, slip: 1}, "one interval refills one token; the slip count restarts"},
		{150 * time.Millisecond, 1, tally{drop: 1}, ""},
		{10 * time.Second, 7, tally{answer: 5, drop: 1, slip: 1}, "a quiet spell refills the burst, no more"},
	}
	for _, st := range steps {
		var got tally
		for range st.n {
			got.add(r.allow(k, epoch.Add(st.at)))
		}
		if got != st.want {
			t.Errorf("at %s, %d queries: %+v, want %+v (%s)", st.at, st.n, got, st.want, st.about)
		}
	}
}

// TestRRLSustained sends ten times the rate for ten seconds: the prefix
// gets the burst plus the rate, and half the rest truncated.
func TestRRLSustained(t *testing.T) {
	const rate, burst = 10, 10
	r := newRRL(RRLConfig{Rate: rate, Burst: burst, Slip: 2}, epoch)
	k := r.key(netip.MustParseAddr("198.51.100.7"))
	var got tally
	for i := range 10 * rate * 10 {
		got.add(r.allow(k, epoch.Add(time.Duration(i)*time.Second/(10*rate))))
	}
	if want := burst + 10*rate; got.answer < want-1 || got.answer > want {
		t.Errorf("%d answers in 10 s at 10x the rate, want %d", got.answer, want)
	}
	if limited := got.slip + got.drop; got.slip < limited/2-got.answer || got.slip > limited/2+1 {
		t.Errorf("%d slipped of %d limited, want about half", got.slip, limited)
	}
}

func TestRRLPrefixes(t *testing.T) {
	tests := []struct {
		cfg  RRLConfig
		a, b string
		same bool
	}{
		{RRLConfig{}, "127.0.0.1", "127.0.0.200", true},
		{RRLConfig{}, "127.0.0.1", "127.0.1.1", false},
		{RRLConfig{}, "::ffff:127.0.0.1", "127.0.0.9", true},
		{RRLConfig{}, "2001:db8:0:1::1", "2001:db8:0:ff::2", true},
		{RRLConfig{}, "2001:db8:0:1::1", "2001:db8:0:100::1", false},
		{RRLConfig{}, "2001:db8::1", "127.0.0.1", false},
		{RRLConfig{IPv4PrefixLen: 32}, "127.0.0.1", "127.0.0.2", false},
		{RRLConfig{IPv4PrefixLen: 8}, "127.0.0.1", "127.9.9.9", true},
		{RRLConfig{IPv6PrefixLen: 64}, "2001:db8:0:1::1", "2001:db8:0:1:ffff::2", true},
		{RRLConfig{IPv6PrefixLen: 64}, "2001:db8:0:1::1", "2001:db8:0:2::1", false},
		{RRLConfig{IPv6PrefixLen: 128}, "2001:db8::1", "2001:db8::2", false},
		{RRLConfig{IPv6PrefixLen: 128}, "2001:db8::1", "2001:db8::1", true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s-%s-v4/%d-v6/%d", tc.a, tc.b, tc.cfg.IPv4PrefixLen, tc.cfg.IPv6PrefixLen), func(t *testing.T) {
			tc.cfg.Rate = 1
			r := newRRL(tc.cfg, epoch)
			ka, kb := r.key(netip.MustParseAddr(tc.a)), r.key(netip.MustParseAddr(tc.b))
			if (ka == kb) != tc.same {
				t.Errorf("same prefix = %v, want %v", ka == kb, tc.same)
			}
		})
	}
	if k := newRRL(RRLConfig{Rate: 1}, epoch).key(netip.Addr{}); k != 0 {
		t.Errorf("key of the zero address %d, want 0 (not limited)", k)
	}
}

// TestRRLIndependentPrefixes checks that a limited prefix leaves others
// alone, even when they share its pair of slots, and that a flood of new
// prefixes evicts idle buckets rather than the limited one.
func TestRRLIndependentPrefixes(t *testing.T) {
	r := newRRL(RRLConfig{Rate: 10, Burst: 2, Slip: 0, TableSize: 2}, epoch)
	flood := r.key(netip.MustParseAddr("192.0.2.1"))
	for range 10 {
		r.allow(flood, epoch)
	}
	for i := range 1000 {
		k := r.key(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}))
		if v := r.allow(k, epoch); v != rrlAnswer {
			t.Fatalf("prefix %d: verdict %d, want an answer", i, v)
		}
	}
	if v := r.allow(flood, epoch); v != rrlDrop {
		t.Errorf("the flooding prefix got verdict %d after 1000 others came and went, want drop", v)
	}
	if len(r.table) != 2 {
		t.Errorf("table has %d slots, want 2", len(r.table))
	}
}

func TestRRLAllocs(t *testing.T) {
	s := NewServer(ServerConfig{RRL: RRLConfig{Rate: 1, Slip: 1}}, NewHandler(testConfig(), testRegistry(t, nil, nil), nil, nil), nil)
	pkt := pack(t, 1, goodName, dns.TypeA, func(m *dns.Msg) { m.SetEdns0(1232, true) })
	addr := netip.MustParseAddr("2001:db8::1")
	q := newScratch()
	q.Wire, q.Remote = pkt, netip.AddrPortFrom(addr, 5353)
	now := time.Now()
	if n := testing.AllocsPerRun(1000, func() {
		if s.rateLimit(q, now) == RRLSlip {
			slipResponse(q.Wire, q.Out[:0])
		}
	}); n != 0 {
		t.Errorf("%v allocations per limited query, want 0", n)
	}
}

func TestSlipResponse(t *testing.T) {
	plain := pack(t, 7, "Web.Service.Disco.Internal.", dns.TypeSRV, nil)
	ednsDO := pack(t, 8, goodName, dns.TypeA, func(m *dns.Msg) {
		m.SetEdns0(4096, true)
		m.CheckingDisabled = true
	})
	cookie := pack(t, 9, goodName, dns.TypeA, func(m *dns.Msg) {
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0123456789abcdef"})
	})
	tests := []struct {
		name     string
		pkt      []byte
		wantNil  bool
		question string
		opt      string // "" none, "do" with DO, "plain"
	}{
		{"plain query", plain, false, "Web.Service.Disco.Internal.", ""},
		{"EDNS with DO and CD", ednsDO, false, goodName, "do"},
		{"EDNS with a cookie", cookie, false, goodName, "plain"},
		{"no question", rawQuery(3, 0x0100, 0, 0, 0, 0), false, "", ""},
		{"response", pack(t, 1, goodName, dns.TypeA, func(m *dns.Msg) { m.Response = true }), true, "", ""},
		{"short header", plain[:11], true, "", ""},
		{"compressed question", rawQuery(3, 0x0100, 1, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1), true, "", ""},
		{"question cut short", plain[:20], true, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := slipResponse(tc.pkt, nil)
			if tc.wantNil {
				if out != nil {
					t.Fatalf("got %x, want nothing", out)
				}
				return
			}
			if len(out) > len(tc.pkt) {
				t.Errorf("%d bytes in reply to %d: larger than the query", len(out), len(tc.pkt))
			}
			m := new(dns.Msg)
			if err := m.Unpack(out); err != nil {
				t.Fatalf("does not parse: %v", err)
			}
			q := new(dns.Msg)
			q.Unpack(tc.pkt)
			if !m.Response || !m.Truncated || m.Id != q.Id || m.Rcode != dns.RcodeSuccess || m.Authoritative ||
				m.RecursionDesired != q.RecursionDesired || m.CheckingDisabled != q.CheckingDisabled {
				t.Errorf("header %v, want QR TC, the query's ID, RD and CD, NOERROR", m.MsgHdr)
			}
			if len(m.Answer)+len(m.Ns) != 0 {
				t.Errorf("records %v %v, want none", m.Answer, m.Ns)
			}
			if tc.question == "" {
				if len(m.Question) != 0 {
					t.Errorf("question %v, want none", m.Question)
				}
			} else if len(m.Question) != 1 || m.Question[0].Name != tc.question {
				t.Errorf("question %v, want %s echoed", m.Question, tc.question)
			}
			opt := m.IsEdns0()
			switch {
			case tc.opt == "" && opt != nil:
				t.Errorf("OPT %v in reply to a query without one", opt)
			case tc.opt != "" && (opt == nil || opt.Do() != (tc.opt == "do") || opt.UDPSize() != UDPSize || len(opt.Option) != 0):
				t.Errorf("OPT %v, want size %d, do=%v, no options", opt, UDPSize, tc.opt == "do")
			}
		})
	}
}

func TestRRLConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  RRLConfig
		want string // "" valid
	}{
		{RRLConfig{}, ""},
		{RRLConfig{Rate: 20, Burst: 40, Slip: 2, IPv4PrefixLen: 32, IPv6PrefixLen: 128}, ""},
		{RRLConfig{Rate: -1}, "rrl rate -1"},
		{RRLConfig{Burst: -1}, "rrl burst -1"},
		{RRLConfig{Slip: 101}, "rrl slip 101"},
		{RRLConfig{IPv4PrefixLen: 33}, "IPv4 prefix length 33"},
		{RRLConfig{IPv6PrefixLen: -1}, "IPv6 prefix length -1"},
		{RRLConfig{TableSize: -5}, "table size -5"},
	}
	for _, tc := range tests {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v, want valid", tc.cfg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: %v, want an error about %q", tc.cfg, err, tc.want)
		}
	}
}

// startSimpleUDP serves UDP on a free loopback port with the loop for
// systems without batched socket calls, until the test ends.
func startSimpleUDP(t *testing.T, cfg ServerConfig, h *Handler) string {
	t.Helper()
	cfg.Addr, cfg.UDPSockets = "127.0.0.1:0", 1
	cfg.Hooks = h.Hooks()
	srv := NewServer(cfg, h, nil)
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.serveUDPSimple(context.Background(), srv.udp[0])
	}()
	t.Cleanup(func() {
		srv.udp[0].Close()
		srv.tcp.ln.Close()
		<-done
	})
	return srv.Addr().String()
}

// TestRRLServer floods the real server from one /24 (127.0.0.1) while a
// client in another (127.0.1.1) asks between rounds: the flooder gets the
// burst plus the rate, half the rest truncated, and never more bytes than
// it sent; the other client gets every answer.
func TestRRLServer(t *testing.T) {
	for _, loop := range []string{"batched", "simple"} {
		t.Run(loop, func(t *testing.T) {
			const rate, burst, rounds, perRound = 20, 20, 20, 50
			h := NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
			cfg := ServerConfig{UDPSockets: 1, RRL: RRLConfig{Rate: rate, Burst: burst, Slip: 2}}
			var addr string
			if loop == "batched" {
				addr = startServer(t, cfg, h)
			} else {
				addr = startSimpleUDP(t, cfg, h)
			}
			server := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr))
			flooder := listenUDP(t, "127.0.0.1:0")
			client := listenUDP(t, "127.0.1.1:0")

			var got struct {
				answered, slipped, bad, bytes int
			}
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 2048)
				for {
					n, _, err := flooder.ReadFrom(buf)
					if err != nil {
						return
					}
					got.bytes += n
					m := new(dns.Msg)
					switch {
					case m.Unpack(buf[:n]) != nil || !m.Response || len(m.Question) != 1 || m.Question[0].Name != goodName:
						got.bad++
					case m.Truncated && len(m.Answer) == 0:
						got.slipped++
					case !m.Truncated && len(m.Answer) == len(goodAnswer):
						got.answered++
					default:
						got.bad++
					}
				}
			}()

			sent, sentBytes := 0, 0
			start := time.Now()
			for round := range rounds {
				for range perRound {
					pkt := pack(t, uint16(sent), goodName, dns.TypeA, nil)
					if _, err := flooder.WriteTo(pkt, server); err != nil {
						t.Fatal(err)
					}
					sent++
					sentBytes += len(pkt)
				}
				// The server reads one socket in order: this answer comes
				// after every answer to the round's flood was sent.
				if _, err := client.WriteTo(pack(t, uint16(round), goodName, dns.TypeA, nil), server); err != nil {
					t.Fatal(err)
				}
				client.SetReadDeadline(time.Now().Add(waitLimit))
				buf := make([]byte, 2048)
				n, _, err := client.ReadFrom(buf)
				if err != nil {
					t.Fatalf("round %d: the client in another prefix got no answer: %v", round, err)
				}
				m := new(dns.Msg)
				if err := m.Unpack(buf[:n]); err != nil || m.Id != uint16(round) || m.Truncated || len(m.Answer) != len(goodAnswer) {
					t.Fatalf("round %d: the client in another prefix got %v (%v)", round, m, err)
				}
			}
			elapsed := time.Since(start)
			// The answers are all queued by now; a loaded machine may take a
			// while to hand them over.
			flooder.SetReadDeadline(time.Now().Add(2 * time.Second))
			wg.Wait()

			limit := burst + int(rate*elapsed.Seconds()) + 1
			t.Logf("%d queries in %s: %d answered (limit %d), %d truncated, ratio out/in %.2f",
				sent, elapsed, got.answered, limit, got.slipped, float64(got.bytes)/float64(sentBytes))
			if got.bad > 0 {
				t.Errorf("%d replies that are neither the answer nor a truncated one", got.bad)
			}
			if got.answered < burst || got.answered > limit {
				t.Errorf("flooder answered %d times in %s, want %d to %d", got.answered, elapsed, burst, limit)
			}
			limited := sent - got.answered
			if got.slipped < limited/2-got.answered || got.slipped > limited/2+1 {
				t.Errorf("%d truncated of %d limited, want about half", got.slipped, limited)
			}
			if got.bytes > sentBytes {
				t.Errorf("flooder got %d bytes for %d sent: an amplifier", got.bytes, sentBytes)
			}
			drops, slips := h.stats.rrlDropped.Load(), h.stats.rrlSlipped.Load()
			if int(slips) != got.slipped || int(drops+slips) != limited {
				t.Errorf("counters drop=%d slip=%d, want slip=%d and %d in all", drops, slips, got.slipped, limited)
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(h)
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			var metric []string
			for _, mf := range mfs {
				if mf.GetName() == "disco_dns_rrl_total" {
					for _, m := range mf.GetMetric() {
						metric = append(metric, fmt.Sprintf("%s=%v", m.GetLabel()[0].GetValue(), m.GetCounter().GetValue()))
					}
				}
			}
			if want := []string{fmt.Sprintf("drop=%d", drops), fmt.Sprintf("slip=%d", slips)}; fmt.Sprint(metric) != fmt.Sprint(want) {
				t.Errorf("disco_dns_rrl_total %v, want %v", metric, want)
			}
		})
	}
}

// TestRRLOffByDefault checks that without a rate nothing is limited.
func TestRRLOffByDefault(t *testing.T) {
	h := NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
	addr := startServer(t, ServerConfig{UDPSockets: 1}, h)
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2048)
	for i := range 200 {
		if _, err := c.Write(pack(t, uint16(i), goodName, dns.TypeA, nil)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(waitLimit))
		n, err := c.Read(buf)
		if err != nil || n < 4 || binary.BigEndian.Uint16(buf) != uint16(i) || buf[2]&0x02 != 0 {
			t.Fatalf("query %d: %x %v, want a full answer", i, buf[:n], err)
		}
	}
}

func listenUDP(t *testing.T, addr string) net.PacketConn {
	t.Helper()
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRRLServerIPv6 checks that the limiter sees IPv6 sources: with slip
// 1, a client on ::1 gets the burst in full answers and the rest
// truncated.
func TestRRLServerIPv6(t *testing.T) {
	ln, err := net.ListenPacket("udp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln.Close()
	const burst, n = 5, 40
	h := NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
	addr := startServer(t, ServerConfig{Addr: "[::1]:0", UDPSockets: 1, RRL: RRLConfig{Rate: 1, Burst: burst, Slip: 1}}, h)
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	full := 0
	buf := make([]byte, 2048)
	start := time.Now()
	for i := range n {
		if _, err := c.Write(pack(t, uint16(i), goodName, dns.TypeA, nil)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(waitLimit))
		k, err := c.Read(buf)
		if err != nil || k < 4 || binary.BigEndian.Uint16(buf) != uint16(i) {
			t.Fatalf("query %d: %x %v", i, buf[:k], err)
		}
		if buf[2]&0x02 == 0 {
			full++
		}
	}
	if limit := burst + int(time.Since(start).Seconds()) + 1; full < burst || full > limit {
		t.Errorf("%d full answers of %d at rate 1, burst %d; want %d to %d", full, n, burst, burst, limit)
	}
}
