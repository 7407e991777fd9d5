package dnsserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// logBuffer collects JSON log records written by concurrent goroutines.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{} // closed and replaced on every write
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.written != nil {
		close(b.written)
	}
	b.written = make(chan struct{})
	return b.buf.Write(p)
}

// next returns a channel closed at the next write.
func (b *logBuffer) next() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.written == nil {
		b.written = make(chan struct{})
	}
	return b.written
}

// waitRecord waits for a record that match accepts: the TCP path writes
// its record after the answer, so the client may be faster.
func (b *logBuffer) waitRecord(t *testing.T, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		next := b.next()
		for _, r := range b.records(t) {
			if match(r) {
				return r
			}
		}
		select {
		case <-next:
		case <-deadline:
			t.Fatalf("no %s record in %v", what, b.records(t))
		}
	}
}

// records returns the records written so far, each as its JSON object.
func (b *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

func queryLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, nil)).With("component", "query")
}

// checkRecord compares the query log fields of rec with want; duration
// must be present.
func checkRecord(t *testing.T, rec map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v (record %v)", k, rec[k], v, rec)
		}
	}
	if d, ok := rec["duration"].(float64); !ok || d < 0 {
		t.Errorf("duration %v missing or negative (record %v)", rec["duration"], rec)
	}
}

func TestQueryLogUDPPath(t *testing.T) {
	var logs logBuffer
	cfg := testConfig()
	cfg.QueryLog = queryLogger(&logs)
	h := NewHandler(cfg, testRegistry(t, fixture, nil), nil, nil)
	s := newScratch()
	from := netip.MustParseAddrPort("127.0.0.9:5353")

	query := func(name string, qtype uint16) []byte {
		req := new(dns.Msg)
		req.SetQuestion(name, qtype)
		pkt, err := req.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return pkt
	}
	response := query("web.service.disco.internal.", dns.TypeA)
	response[2] |= 0x80

	tests := []struct {
		name string
		pkt  []byte
		want map[string]any // nil: no record
	}{
		{"fast path hit, case as sent", query("Web.Service.disco.internal.", dns.TypeA), map[string]any{
			"qname": "Web.Service.disco.internal.", "qtype": "A", "rcode": "NOERROR", "tc": false}},
		{"nxdomain", query("nope.service.disco.internal.", dns.TypeA), map[string]any{
			"qname": "nope.service.disco.internal.", "qtype": "A", "rcode": "NXDOMAIN"}},
		{"srv", query("_web._tcp.service.disco.internal.", dns.TypeSRV), map[string]any{
			"qname": "_web._tcp.service.disco.internal.", "qtype": "SRV", "rcode": "NOERROR"}},
		{"refused, slow path (ANY)", query("example.com.", dns.TypeANY), map[string]any{
			"qname": "example.com.", "qtype": "ANY", "rcode": "REFUSED"}},
		{"malformed after the question", append(query("web.service.disco.internal.", dns.TypeAAAA), 1, 2, 3), map[string]any{
			"qname": "web.service.disco.internal.", "qtype": "AAAA", "rcode": "FORMERR"}},
		{"an unreadable question gets no answer and no record", []byte{0xab, 0xcd, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63}, nil},
		{"a response gets no answer and no record", response, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(logs.records(t))
			out := h.serveUDP(tc.pkt, from, s)
			recs := logs.records(t)[before:]
			if tc.want == nil {
				if out != nil || len(recs) != 0 {
					t.Fatalf("answered %x with records %v, want silence", out, recs)
				}
				return
			}
			if out == nil || len(recs) != 1 {
				t.Fatalf("answer %x with %d records, want an answer and one record", out, len(recs))
			}
			want := map[string]any{"msg": "query", "level": "INFO", "component": "query",
				"client": "127.0.0.9:5353", "transport": "udp"}
			for k, v := range tc.want {
				want[k] = v
			}
			checkRecord(t, recs[0], want)
		})
	}
}

func TestQueryLogTruncated(t *testing.T) {
	var many []fixtureInstance
	for i := range 60 {
		many = append(many, fixtureInstance{service: "big", id: "big-" + string(rune('a'+i/26)) + string(rune('a'+i%26)),
			addr: netip.AddrFrom4([4]byte{10, 1, 0, byte(i + 1)}).String(), port: 9000})
	}
	var logs logBuffer
	cfg := testConfig()
	cfg.QueryLog = queryLogger(&logs)
	h := NewHandler(cfg, testRegistry(t, many, nil), nil, nil)
	req := new(dns.Msg)
	req.SetQuestion("big.service.disco.internal.", dns.TypeSRV)
	pkt, _ := req.Pack()
	if out := h.serveUDP(pkt, netip.MustParseAddrPort("[::1]:53000"), newScratch()); out == nil {
		t.Fatal("no answer")
	}
	recs := logs.records(t)
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	checkRecord(t, recs[0], map[string]any{"tc": true, "client": "[::1]:53000", "qtype": "SRV"})
}

// TestQueryLogServer runs the real listeners with the query log on and
// checks that each record names the client's own address and port.
func TestQueryLogServer(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			var logs logBuffer
			cfg := testConfig()
			cfg.QueryLog = queryLogger(&logs)
			h := NewHandler(cfg, testRegistry(t, fixture, nil), nil, nil)
			srv := NewServer(ServerConfig{Addr: net.JoinHostPort(host, "0"), UDPSockets: 1, Hooks: h.Hooks()}, h, nil)
			if err := srv.Listen(); err != nil {
				if host == "::1" {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Run(ctx) }()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("run: %v", err)
				}
			})

			for _, transport := range []string{"udp", "tcp"} {
				conn, err := dns.DialTimeout(transport, srv.Addr().String(), 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				req := new(dns.Msg)
				req.SetQuestion("nope.service.disco.internal.", dns.TypeAAAA)
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				if err := conn.WriteMsg(req); err != nil {
					t.Fatal(err)
				}
				resp, err := conn.ReadMsg()
				if err != nil || resp.Rcode != dns.RcodeNameError {
					t.Fatalf("%s: %v %v, want NXDOMAIN", transport, resp, err)
				}
				client := conn.LocalAddr().String()
				conn.Close()
				rec := logs.waitRecord(t, transport, func(r map[string]any) bool { return r["transport"] == transport })
				checkRecord(t, rec, map[string]any{"client": client, "qname": "nope.service.disco.internal.",
					"qtype": "AAAA", "rcode": "NXDOMAIN", "component": "query"})
			}
		})
	}
}

// TestQueryLogOffAllocatesNothing pins the cost of the query log when off:
// a fast-path hit allocates nothing.
func TestQueryLogOffAllocatesNothing(t *testing.T) {
	h := NewHandler(testConfig(), testRegistry(t, fixture, nil), nil, nil)
	req := new(dns.Msg)
	req.SetQuestion("web.service.disco.internal.", dns.TypeA)
	pkt, _ := req.Pack()
	s := newScratch()
	h.serveUDP(pkt, netip.AddrPort{}, s)
	if n := testing.AllocsPerRun(200, func() { h.serveUDP(pkt, netip.AddrPort{}, s) }); n != 0 {
		t.Errorf("fast-path hit with the query log off: %v allocations, want 0", n)
	}
}

// BenchmarkQueryLog compares a fast-path hit with the query log off and
// on (a JSON handler writing to io.Discard).
func BenchmarkQueryLog(b *testing.B) {
	req := new(dns.Msg)
	req.SetQuestion("web.service.disco.internal.", dns.TypeA)
	pkt, _ := req.Pack()
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	for _, tc := range []struct {
		name string
		log  *slog.Logger
	}{
		{"off", nil},
		{"on", queryLogger(io.Discard)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := testConfig()
			cfg.QueryLog = tc.log
			h := NewHandler(cfg, testRegistry(b, fixture, nil), nil, nil)
			s := newScratch()
			h.serveUDP(pkt, from, s)
			b.ReportAllocs()
			for b.Loop() {
				if h.serveUDP(pkt, from, s) == nil {
					b.Fatal("no answer")
				}
			}
		})
	}
}
