package main

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// eventually polls cond every 20 ms for up to limit and returns how long it
// took to hold, or fails the test.
func eventually(t *testing.T, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// httpBackend is a real HTTP server on a fixed loopback port that can be
// stopped and started again.
type httpBackend struct {
	addr string
	srv  *http.Server
}

func (b *httpBackend) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })}
	go b.srv.Serve(ln)
}

func (b *httpBackend) stop() { b.srv.Close() }

func (s *testServer) served(t *testing.T, name string) []string {
	t.Helper()
	return answerValues(s.query(t, "udp", name, dns.TypeA, 0))
}

// TestHealthChecksEndToEnd registers instances with HTTP and TCP checks on
// real loopback servers, stops the servers and starts them again, and
// watches the DNS answers follow.
func TestHealthChecksEndToEnd(t *testing.T) {
	s := startServer(t, nil)
	web := &httpBackend{addr: "127.0.0.1:0"}
	web.start(t)
	defer web.stop()
	tcpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcpAddr := tcpLn.Addr().String()
	go func() {
		for {
			c, err := tcpLn.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	const timing = `"interval":"500ms","timeout":"200ms","rise":1,"fall":2`
	s.register(t, "hc", "h-1", fmt.Sprintf(`{"address":"127.0.0.1","port":80,"checks":[{"type":"http","url":"http://%s/health",%s}]}`, web.addr, timing))
	s.register(t, "tc", "t-1", fmt.Sprintf(`{"address":"127.0.0.2","port":80,"checks":[{"type":"tcp","address":"%s",%s}]}`, tcpAddr, timing))
	if got := s.served(t, "hc.service.disco.internal."); len(got) != 0 {
		t.Errorf("an instance with checks is served before its first check: %v", got)
	}
	up := eventually(t, "http instance served", 5*time.Second, func() bool { return len(s.served(t, "hc.service.disco.internal.")) == 1 })
	eventually(t, "tcp instance served", 5*time.Second, func() bool { return len(s.served(t, "tc.service.disco.internal.")) == 1 })

	web.stop()
	tcpLn.Close()
	down := eventually(t, "dead http httpBackend removed", 10*time.Second, func() bool { return len(s.served(t, "hc.service.disco.internal.")) == 0 })
	eventually(t, "dead tcp httpBackend removed", 10*time.Second, func() bool { return len(s.served(t, "tc.service.disco.internal.")) == 0 })
	code, body := s.api(t, "GET", "/v1/services/hc", "")
	if code != 200 || !strings.Contains(body, `"status":"critical"`) || !strings.Contains(body, "refused") {
		t.Errorf("API after the httpBackend died: %d %s", code, body)
	}

	web.start(t)
	back := eventually(t, "revived http httpBackend served", 10*time.Second, func() bool { return len(s.served(t, "hc.service.disco.internal.")) == 1 })
	t.Logf("first pass after %s, removed after %s (bound interval*fall+timeout = 1.2s), back after %s", up, down, back)
}

// TestFailOpenEndToEnd checks min_healthy_percent through the server: DNS
// serves every instance when too few pass, says so in an Extended DNS
// Error, the API shows it, and the log records it.
func TestFailOpenEndToEnd(t *testing.T) {
	s := startServer(t, nil)
	if code, b := s.api(t, "PUT", "/v1/services/pay", `{"min_healthy_percent":50}`); code/100 != 2 {
		t.Fatalf("settings: %d %s", code, b)
	}
	s.register(t, "pay", "p-1", `{"address":"10.3.0.1","port":80}`)
	for i := 2; i <= 3; i++ {
		s.register(t, "pay", fmt.Sprintf("p-%d", i), fmt.Sprintf(`{"address":"10.3.0.%d","port":80,"checks":[{"type":"ttl","ttl":"1m"}]}`, i))
	}
	m := s.query(t, "udp", "pay.service.disco.internal.", dns.TypeA, 1232)
	if got := answerValues(m); !slices.Equal(got, []string{"10.3.0.1", "10.3.0.2", "10.3.0.3"}) {
		t.Errorf("1 of 3 passing with min_healthy_percent 50: %v, want all three", got)
	}
	if ede := findEDE(m); ede == nil || !strings.Contains(ede.ExtraText, "fail open") {
		t.Errorf("extended error %v, want one saying it fails open", ede)
	}
	if code, body := s.api(t, "GET", "/v1/services/pay", ""); code != 200 || !strings.Contains(body, `"fail_open":true`) {
		t.Errorf("API: %d %s, want fail_open true", code, body)
	}
	eventually(t, "fail-open logged", 5*time.Second, func() bool { return strings.Contains(s.logText(), "(fail open)") })
	s.api(t, "PUT", "/v1/services/pay/instances/p-2/heartbeat", "")
	m = s.query(t, "udp", "pay.service.disco.internal.", dns.TypeA, 1232)
	if got := answerValues(m); !slices.Equal(got, []string{"10.3.0.1", "10.3.0.2"}) {
		t.Errorf("2 of 3 passing: %v, want the passing two", got)
	}
	if code, body := s.api(t, "GET", "/v1/services/pay", ""); code != 200 || !strings.Contains(body, `"fail_open":false`) {
		t.Errorf("API: %d %s, want fail_open false", code, body)
	}
	eventually(t, "end of fail-open logged", 5*time.Second, func() bool { return strings.Contains(s.logText(), "enough healthy instances again") })
}

func findEDE(m *dns.Msg) *dns.EDNS0_EDE {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return e
			}
		}
	}
	return nil
}
