package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const testToken = "e2e-secret"

// testServer is a real disco server on loopback ports, run in-process.
type testServer struct {
	dnsAddr string
	admin   string
	dataDir string
	stop    func() error
	logs    *lockedWriter
}

// logText returns what the server logged so far.
func (s *testServer) logText() string {
	s.logs.mu.Lock()
	defer s.logs.mu.Unlock()
	return s.logs.w.(*bytes.Buffer).String()
}

// startServer runs the server with a fresh data dir unless cfg sets one;
// mod adjusts the configuration.
func startServer(t *testing.T, mod func(*serveConfig)) *testServer {
	t.Helper()
	cfg := serveConfig{
		DNSAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Domain: "disco.internal.",
		DataDir: t.TempDir(), AdminToken: testToken, DNSTTL: 5, NegativeTTL: 5,
		NSAddrs: nsAddrsOrDie("127.0.0.1"), LogFormat: "text", TCPIdleTimeout: 10 * time.Second,
		MaxTCPConns: 100, ShutdownTimeout: 10 * time.Second, CommitDelay: DefaultCommitDelay,
	}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	type addrs struct{ dns, admin net.Addr }
	up := make(chan addrs, 1)
	errc := make(chan error, 1)
	logs := &lockedWriter{w: &bytes.Buffer{}}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() {
		errc <- runServer(ctx, cfg, log, func(d, a net.Addr) { up <- addrs{d, a} })
	}()
	select {
	case a := <-up:
		s := &testServer{dnsAddr: a.dns.String(), admin: "http://" + a.admin.String(), dataDir: cfg.DataDir, logs: logs}
		stopped := false
		s.stop = func() error {
			if stopped {
				return nil
			}
			stopped = true
			cancel()
			return <-errc
		}
		t.Cleanup(func() {
			if err := s.stop(); err != nil {
				t.Errorf("server stopped with %v", err)
			}
		})
		return s
	case err := <-errc:
		cancel()
		t.Fatalf("server did not start: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("server did not start within 20s")
	}
	return nil
}

func nsAddrsOrDie(s string) []netip.Addr {
	a, err := nsAddrs(s, "")
	if err != nil {
		panic(err)
	}
	return a
}

// api sends a request to the admin API and returns the status and body.
func (s *testServer) api(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.admin+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (s *testServer) register(t *testing.T, service, id, body string) {
	t.Helper()
	if code, b := s.api(t, "PUT", "/v1/services/"+service+"/instances/"+id, body); code/100 != 2 {
		t.Fatalf("register %s/%s: HTTP %d %s", service, id, code, b)
	}
}

// query asks the server with the miekg/dns client over net ("udp" or "tcp").
func (s *testServer) query(t *testing.T, net, name string, qtype uint16, edns uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	if edns > 0 {
		m.SetEdns0(edns, false)
	}
	c := &dns.Client{Net: net, Timeout: 3 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, s.dnsAddr)
	if err != nil {
		t.Fatalf("query %s %s over %s: %v", name, dns.TypeToString[qtype], net, err)
	}
	return r
}

func answerValues(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.A.String())
		case *dns.AAAA:
			out = append(out, v.AAAA.String())
		case *dns.SRV:
			out = append(out, fmt.Sprintf("%d %d %d %s", v.Priority, v.Weight, v.Port, v.Target))
		case *dns.TXT:
			out = append(out, strings.Join(v.Txt, " "))
		default:
			out = append(out, rr.String())
		}
	}
	slices.Sort(out)
	return out
}

func TestEndToEnd(t *testing.T) {
	s := startServer(t, nil)
	for i, tag := range []string{"v1", "v1", "v2"} {
		s.register(t, "web", fmt.Sprintf("web-%d", i+1),
			fmt.Sprintf(`{"address":"10.0.0.%d","port":8080,"tags":["%s"],"meta":{"rev":"%d"}}`, i+1, tag, i+1))
	}
	s.register(t, "db", "db-1", `{"address":"fd00::5","port":5432}`)

	for _, transport := range []string{"udp", "tcp"} {
		t.Run("miekg/"+transport, func(t *testing.T) {
			m := s.query(t, transport, "web.service.disco.internal.", dns.TypeA, 0)
			if got, want := answerValues(m), []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}; !slices.Equal(got, want) || !m.Authoritative {
				t.Errorf("A: %v aa=%v, want %v aa=true", got, m.Authoritative, want)
			}
			m = s.query(t, transport, "v2.web.service.disco.internal.", dns.TypeA, 1232)
			if got := answerValues(m); !slices.Equal(got, []string{"10.0.0.3"}) {
				t.Errorf("tag filter: %v", got)
			}
			m = s.query(t, transport, "web-2.web.instance.disco.internal.", dns.TypeTXT, 0)
			if got := answerValues(m); !slices.Equal(got, []string{"rev=2"}) {
				t.Errorf("instance TXT: %v", got)
			}
			m = s.query(t, transport, "db.service.disco.internal.", dns.TypeSRV, 0)
			if got := answerValues(m); len(got) != 1 || len(m.Extra) != 1 {
				t.Errorf("db SRV %v with %d additional, want one and its AAAA", got, len(m.Extra))
			}
			m = s.query(t, transport, "nope.service.disco.internal.", dns.TypeA, 0)
			if m.Rcode != dns.RcodeNameError || len(m.Ns) != 1 {
				t.Errorf("missing service: %s with %d authority records, want NXDOMAIN and the SOA", dns.RcodeToString[m.Rcode], len(m.Ns))
			}
			m = s.query(t, transport, "example.com.", dns.TypeA, 0)
			if m.Rcode != dns.RcodeRefused {
				t.Errorf("outside the domain: %s, want REFUSED", dns.RcodeToString[m.Rcode])
			}
		})
	}

	t.Run("go resolver", func(t *testing.T) {
		r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, s.dnsAddr)
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hosts, err := r.LookupHost(ctx, "web.service.disco.internal")
		slices.Sort(hosts)
		if err != nil || !slices.Equal(hosts, []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}) {
			t.Errorf("LookupHost: %v %v", hosts, err)
		}
		cname, srvs, err := r.LookupSRV(ctx, "web", "tcp", "service.disco.internal")
		if err != nil || len(srvs) != 3 || cname != "_web._tcp.service.disco.internal." {
			t.Fatalf("LookupSRV: %q %v %v", cname, srvs, err)
		}
		addrs, err := r.LookupHost(ctx, srvs[0].Target)
		if err != nil || len(addrs) != 1 || !strings.HasPrefix(addrs[0], "10.0.0.") {
			t.Errorf("SRV target %s resolves to %v %v", srvs[0].Target, addrs, err)
		}
		if _, err := r.LookupHost(ctx, "nope.service.disco.internal"); !isNotFound(err) {
			t.Errorf("missing name: %v, want not found", err)
		}
		v6, err := r.LookupIP(ctx, "ip6", "db.service.disco.internal")
		if err != nil || len(v6) != 1 || v6[0].String() != "fd00::5" {
			t.Errorf("LookupIP ip6: %v %v", v6, err)
		}
	})

	t.Run("dig", func(t *testing.T) {
		if _, err := exec.LookPath("dig"); err != nil {
			t.Skip("dig not installed (Debian package dnsutils)")
		}
		host, port, _ := net.SplitHostPort(s.dnsAddr)
		out, err := exec.Command("dig", "@"+host, "-p", port, "+norecurse", "+time=2", "+tries=1",
			"_web._v1.service.disco.internal", "SRV").CombinedOutput()
		if err != nil {
			t.Fatalf("dig: %v\n%s", err, out)
		}
		text := string(out)
		for _, want := range []string{"status: NOERROR", "flags: qr aa", "0a000001.addr.disco.internal.", "0a000002.addr.disco.internal.", "ADDITIONAL SECTION"} {
			if !strings.Contains(text, want) {
				t.Errorf("dig output lacks %q:\n%s", want, text)
			}
		}
		if strings.Contains(text, "0a000003") {
			t.Errorf("tag v1 answer includes the v2 instance:\n%s", text)
		}
	})

	t.Run("changes visible to the next query", func(t *testing.T) {
		for i := range 20 {
			id := fmt.Sprintf("fresh-%d", i)
			s.register(t, "fresh", id, fmt.Sprintf(`{"address":"10.5.0.%d","port":80}`, i+1))
			m := s.query(t, "udp", id+".fresh.instance.disco.internal.", dns.TypeA, 0)
			if got := answerValues(m); len(got) != 1 {
				t.Fatalf("just registered %s: answer %v", id, got)
			}
			if code, b := s.api(t, "DELETE", "/v1/services/fresh/instances/"+id, ""); code/100 != 2 {
				t.Fatalf("deregister: %d %s", code, b)
			}
			if m := s.query(t, "udp", id+".fresh.instance.disco.internal.", dns.TypeA, 0); len(m.Answer) != 0 {
				t.Fatalf("just deregistered %s still answered: %v", id, m.Answer)
			}
		}
	})

	t.Run("maintenance drains", func(t *testing.T) {
		if code, b := s.api(t, "PUT", "/v1/services/web/instances/web-1/maintenance", `{"enabled":true,"reason":"deploy"}`); code/100 != 2 {
			t.Fatalf("maintenance: %d %s", code, b)
		}
		m := s.query(t, "udp", "web.service.disco.internal.", dns.TypeA, 0)
		if got := answerValues(m); !slices.Equal(got, []string{"10.0.0.2", "10.0.0.3"}) {
			t.Errorf("after draining web-1: %v", got)
		}
		s.api(t, "PUT", "/v1/services/web/instances/web-1/maintenance", `{"enabled":false}`)
	})

	t.Run("truncation and tcp", func(t *testing.T) {
		for i := range 60 {
			s.register(t, "big", fmt.Sprintf("big-%d", i), fmt.Sprintf(`{"address":"10.1.0.%d","port":9000}`, i+1))
		}
		udp := s.query(t, "udp", "big.service.disco.internal.", dns.TypeSRV, 1232)
		if !udp.Truncated || len(udp.Answer) >= 60 {
			t.Errorf("UDP: TC=%v with %d answers, want TC and fewer", udp.Truncated, len(udp.Answer))
		}
		tcp := s.query(t, "tcp", "big.service.disco.internal.", dns.TypeSRV, 1232)
		if tcp.Truncated || len(tcp.Answer) != 60 {
			t.Errorf("TCP: TC=%v with %d answers, want all 60", tcp.Truncated, len(tcp.Answer))
		}
	})

	t.Run("several queries on one tcp connection", func(t *testing.T) {
		conn, err := dns.Dial("tcp", s.dnsAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for i := range 5 {
			m := new(dns.Msg)
			m.SetQuestion("web.service.disco.internal.", dns.TypeA)
			if err := conn.WriteMsg(m); err != nil {
				t.Fatal(err)
			}
			r, err := conn.ReadMsg()
			if err != nil || r.Id != m.Id || len(r.Answer) == 0 {
				t.Fatalf("query %d on the same connection: %v %v", i, r, err)
			}
		}
	})
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return err != nil && errors.As(err, &de) && de.IsNotFound
}

// lockedWriter serialises writes of concurrent loggers to one buffer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestRestartKeepsRegistry checks what a restart keeps: every instance and
// its maintenance; health is re-derived (instances with checks start
// critical again, those without are served at once).
func TestRestartKeepsRegistry(t *testing.T) {
	dataDir := t.TempDir()
	s := startServer(t, func(c *serveConfig) { c.DataDir = dataDir })
	s.register(t, "web", "web-1", `{"address":"10.0.0.1","port":80}`)
	s.register(t, "web", "web-2", `{"address":"10.0.0.2","port":80}`)
	s.register(t, "web", "web-3", `{"address":"10.0.0.3","port":80,"checks":[{"type":"ttl","ttl":"1m"}]}`)
	if code, b := s.api(t, "PUT", "/v1/services/web/instances/web-3/heartbeat", ""); code/100 != 2 {
		t.Fatalf("heartbeat: %d %s", code, b)
	}
	if code, b := s.api(t, "PUT", "/v1/services/web/instances/web-2/maintenance", `{"enabled":true,"reason":"disk"}`); code/100 != 2 {
		t.Fatalf("maintenance: %d %s", code, b)
	}
	if code, b := s.api(t, "PUT", "/v1/services/web", `{"dns_ttl":42}`); code/100 != 2 {
		t.Fatalf("settings: %d %s", code, b)
	}
	if got := answerValues(s.query(t, "udp", "web.service.disco.internal.", dns.TypeA, 0)); !slices.Equal(got, []string{"10.0.0.1", "10.0.0.3"}) {
		t.Fatalf("before restart: %v", got)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	s = startServer(t, func(c *serveConfig) { c.DataDir = dataDir })
	m := s.query(t, "udp", "web.service.disco.internal.", dns.TypeA, 0)
	if got := answerValues(m); !slices.Equal(got, []string{"10.0.0.1"}) {
		t.Errorf("after restart: %v, want web-1 only (web-2 drained, web-3 critical until its next heartbeat)", got)
	}
	if len(m.Answer) > 0 && m.Answer[0].Header().Ttl != 42 {
		t.Errorf("TTL %d after restart, want the service's dns_ttl 42", m.Answer[0].Header().Ttl)
	}
	code, body := s.api(t, "GET", "/v1/services/web", "")
	if code != 200 || !strings.Contains(body, `"reason":"disk"`) || strings.Count(body, `"status":"critical"`) != 1 {
		t.Errorf("service after restart: %d %s", code, body)
	}
}
