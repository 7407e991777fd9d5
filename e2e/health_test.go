package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

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

// TestHealthChecksEndToEnd registers instances with HTTP and TCP checks on
// real loopback servers, stops the servers and starts them again, and
// watches the DNS answers follow.
func TestHealthChecksEndToEnd(t *testing.T) {
	t.Parallel()
	d := startDisco(t)
	web := &httpBackend{addr: "127.0.0.1:0"}
	web.start(t)
	defer web.stop()
	tcpLn := tcpTarget(t) // closed below to fail its check
	tcpAddr := tcpLn.Addr().String()

	const timing = `"interval":"500ms","timeout":"200ms","rise":1,"fall":2`
	d.register(t, "hc", "h-1", fmt.Sprintf(`{"address":"127.0.0.1","port":80,"checks":[{"type":"http","url":"http://%s/health",%s}]}`, web.addr, timing))
	d.register(t, "tc", "t-1", fmt.Sprintf(`{"address":"127.0.0.2","port":80,"checks":[{"type":"tcp","address":"%s",%s}]}`, tcpAddr, timing))
	if got := d.served(t, "hc.service.disco.internal."); len(got) != 0 {
		t.Errorf("an instance with checks is served before its first check: %v", got)
	}
	up := eventually(t, "http instance served", 5*time.Second, func() bool { return len(d.served(t, "hc.service.disco.internal.")) == 1 })
	eventually(t, "tcp instance served", 5*time.Second, func() bool { return len(d.served(t, "tc.service.disco.internal.")) == 1 })

	web.stop()
	tcpLn.Close()
	down := eventually(t, "dead http httpBackend removed", 10*time.Second, func() bool { return len(d.served(t, "hc.service.disco.internal.")) == 0 })
	eventually(t, "dead tcp httpBackend removed", 10*time.Second, func() bool { return len(d.served(t, "tc.service.disco.internal.")) == 0 })
	code, body := d.api(t, "GET", "/v1/services/hc", "")
	if code != 200 || !strings.Contains(body, `"status":"critical"`) || !strings.Contains(body, "refused") {
		t.Errorf("API after the httpBackend died: %d %s", code, body)
	}

	web.start(t)
	back := eventually(t, "revived http httpBackend served", 10*time.Second, func() bool { return len(d.served(t, "hc.service.disco.internal.")) == 1 })
	t.Logf("first pass after %s, removed after %s (bound interval*fall+timeout = 1.2s), back after %s", up, down, back)
}

// TestFailOpenEndToEnd checks min_healthy_percent through the server: DNS
// serves every instance when too few pass, says so in an Extended DNS
// Error, the API shows it, and the log records it.
func TestFailOpenEndToEnd(t *testing.T) {
	t.Parallel()
	d := startDisco(t)
	if code, b := d.api(t, "PUT", "/v1/services/pay", `{"min_healthy_percent":50}`); code/100 != 2 {
		t.Fatalf("settings: %d %s", code, b)
	}
	d.register(t, "pay", "p-1", `{"address":"10.3.0.1","port":80}`)
	for i := 2; i <= 3; i++ {
		d.register(t, "pay", fmt.Sprintf("p-%d", i), fmt.Sprintf(`{"address":"10.3.0.%d","port":80,"checks":[{"type":"ttl","ttl":"1m"}]}`, i))
	}
	m := d.query(t, "udp", "pay.service.disco.internal.", dns.TypeA, 1232)
	if got := values(m); !slices.Equal(got, []string{"10.3.0.1", "10.3.0.2", "10.3.0.3"}) {
		t.Errorf("1 of 3 passing with min_healthy_percent 50: %v, want all three", got)
	}
	if ede := findEDE(m); ede == nil || !strings.Contains(ede.ExtraText, "fail open") {
		t.Errorf("extended error %v, want one saying it fails open", ede)
	}
	if code, body := d.api(t, "GET", "/v1/services/pay", ""); code != 200 || !strings.Contains(body, `"fail_open":true`) {
		t.Errorf("API: %d %s, want fail_open true", code, body)
	}
	d.waitLine(t, "the fail-open warning", func(l string) bool { return strings.Contains(l, "(fail open)") })
	d.api(t, "PUT", "/v1/services/pay/instances/p-2/heartbeat", "")
	m = d.query(t, "udp", "pay.service.disco.internal.", dns.TypeA, 1232)
	if got := values(m); !slices.Equal(got, []string{"10.3.0.1", "10.3.0.2"}) {
		t.Errorf("2 of 3 passing: %v, want the passing two", got)
	}
	if code, body := d.api(t, "GET", "/v1/services/pay", ""); code != 200 || !strings.Contains(body, `"fail_open":false`) {
		t.Errorf("API: %d %s, want fail_open false", code, body)
	}
	d.waitLine(t, "the end of fail open", func(l string) bool { return strings.Contains(l, "enough healthy instances again") })
}

// TestCheckKindsEndToEnd runs grpc and exec checks through the server:
// DNS follows a real gRPC health server as it flips, an exec check's
// output shows in the API without the server's DISCO_ variables in its
// environment, and a server without --enable-exec-checks refuses them.
func TestCheckKindsEndToEnd(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("api", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	go gs.Serve(ln)
	defer gs.Stop()
	dir := t.TempDir()
	script := filepath.Join(dir, "check.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho env-marker; env\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	d := startDiscoEnv(t, []string{"DISCO_ADMIN_TOKEN=secret-in-the-environment"}, "--enable-exec-checks", "--max-exec-checks", "4")
	const timing = `"interval":"1s","timeout":"500ms","rise":1,"fall":1`
	d.register(t, "g", "g-1", fmt.Sprintf(`{"address":"127.0.0.1","port":80,"checks":[{"type":"grpc","address":"%s","service":"api",%s}]}`, ln.Addr(), timing))
	d.register(t, "e", "e-1", fmt.Sprintf(`{"address":"127.0.0.2","port":80,"checks":[{"type":"exec","command":["%s"],%s}]}`, script, timing))

	eventually(t, "grpc instance served", 10*time.Second, func() bool { return len(d.served(t, "g.service.disco.internal.")) == 1 })
	hs.SetServingStatus("api", healthpb.HealthCheckResponse_NOT_SERVING)
	eventually(t, "NOT_SERVING instance removed", 10*time.Second, func() bool { return len(d.served(t, "g.service.disco.internal.")) == 0 })
	if code, body := d.api(t, "GET", "/v1/services/g", ""); code != 200 || !strings.Contains(body, `is NOT_SERVING`) {
		t.Errorf("API: %d %s", code, body)
	}
	hs.SetServingStatus("api", healthpb.HealthCheckResponse_SERVING)
	eventually(t, "SERVING instance back", 10*time.Second, func() bool { return len(d.served(t, "g.service.disco.internal.")) == 1 })

	eventually(t, "exec instance served", 10*time.Second, func() bool { return len(d.served(t, "e.service.disco.internal.")) == 1 })
	code, body := d.api(t, "GET", "/v1/services/e", "")
	if code != 200 || !strings.Contains(body, "env-marker") || !strings.Contains(body, "PATH=") {
		t.Errorf("exec output in the API: %d %s", code, body)
	}
	if strings.Contains(body, "DISCO_") || strings.Contains(body, "secret-in-the-environment") {
		t.Errorf("the check's environment holds the server's DISCO_ variables: %s", body)
	}

	off := startDisco(t)
	code, body = off.api(t, "PUT", "/v1/services/e/instances/e-1", fmt.Sprintf(`{"address":"127.0.0.2","port":80,"checks":[{"type":"exec","command":["%s"]}]}`, script))
	if code != 400 || !strings.Contains(body, "--enable-exec-checks") {
		t.Errorf("exec check on a server without them: %d %s", code, body)
	}
}
