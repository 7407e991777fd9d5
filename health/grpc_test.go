package health

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"disco/registry"
)

// countingListener counts the connections it accepted and those closed.
type countingListener struct {
	net.Listener
	accepted, closed atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.accepted.Add(1)
	return &countedConn{Conn: c, l: l}, nil
}

type countedConn struct {
	net.Conn
	l    *countingListener
	once atomic.Bool
}

func (c *countedConn) Close() error {
	if c.once.CompareAndSwap(false, true) {
		c.l.closed.Add(1)
	}
	return c.Conn.Close()
}

// grpcHealthServer starts a real grpc.health.v1 server (the one
// google.golang.org/grpc/health provides) on loopback, with "" and "api"
// SERVING, over TLS with cert when it is not nil.
func grpcHealthServer(t *testing.T, cert *tls.Certificate) (*health.Server, *countingListener) {
	t.Helper()
	l := &countingListener{Listener: listen(t)}
	var opts []grpc.ServerOption
	if cert != nil {
		opts = append(opts, grpc.Creds(credentials.NewServerTLSFromCert(cert)))
	}
	srv := grpc.NewServer(opts...)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("api", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return hs, l
}

func grpcCheck(addr, service string, timeout time.Duration) registry.Check {
	return registry.Check{Type: registry.CheckGRPC, Address: addr, Service: service,
		Interval: registry.Duration(time.Second), Timeout: registry.Duration(timeout), Rise: 1, Fall: 1}
}

// TestGRPCCheckerFlips probes a real health server while it flips
// between SERVING and NOT_SERVING, over one connection that closes with
// the last hold on it.
func TestGRPCCheckerFlips(t *testing.T) {
	hs, l := grpcHealthServer(t, nil)
	g := NewGRPCChecker()
	api := grpcCheck(l.Addr().String(), "api", 2*time.Second)
	whole := grpcCheck(l.Addr().String(), "", 2*time.Second)
	g.Hold(api)
	g.Hold(whole)

	steps := []struct {
		set    healthpb.HealthCheckResponse_ServingStatus
		status registry.Status
		output string
	}{
		{healthpb.HealthCheckResponse_SERVING, registry.StatusPassing, `service "api" at ` + l.Addr().String() + ` is SERVING`},
		{healthpb.HealthCheckResponse_NOT_SERVING, registry.StatusCritical, `service "api" at ` + l.Addr().String() + ` is NOT_SERVING`},
		{healthpb.HealthCheckResponse_SERVING, registry.StatusPassing, `service "api" at ` + l.Addr().String() + ` is SERVING`},
		{healthpb.HealthCheckResponse_SERVICE_UNKNOWN, registry.StatusCritical, `service "api" at ` + l.Addr().String() + ` is SERVICE_UNKNOWN`},
		{healthpb.HealthCheckResponse_SERVING, registry.StatusPassing, `service "api" at ` + l.Addr().String() + ` is SERVING`},
	}
	for i, st := range steps {
		hs.SetServingStatus("api", st.set)
		got := g.Check(context.Background(), api)
		if got.Status != st.status || got.Output != st.output {
			t.Errorf("step %d (%s): got %s %q, want %s %q", i, st.set, got.Status, got.Output, st.status, st.output)
		}
		if got := g.Check(context.Background(), whole); got.Status != registry.StatusPassing || got.Output != "server "+l.Addr().String()+" is SERVING" {
			t.Errorf("step %d: the whole server: %s %q", i, got.Status, got.Output)
		}
	}
	if n := l.accepted.Load(); n != 1 {
		t.Errorf("%d probes over %d connections, want 1", 2*len(steps), n)
	}
	if n := g.Conns(); n != 1 {
		t.Errorf("checker holds %d connections, want 1 for both checks of one address", n)
	}

	g.Release(api)
	if n := g.Conns(); n != 1 {
		t.Errorf("after releasing one of two checks: %d connections, want 1", n)
	}
	g.Release(whole)
	if n := g.Conns(); n != 0 {
		t.Errorf("after releasing both checks: %d connections, want 0", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.closed.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := l.closed.Load(); n != 1 {
		t.Errorf("server saw %d connections closed after the last release, want 1", n)
	}

	// A probe of a check nobody holds uses a connection of its own.
	if got := g.Check(context.Background(), api); got.Status != registry.StatusPassing {
		t.Errorf("unheld probe: %s %q", got.Status, got.Output)
	}
	if n := g.Conns(); n != 0 {
		t.Errorf("an unheld probe left %d connections in the checker", n)
	}
}

// TestGRPCCheckerFailures checks that every way a gRPC target can fail
// ends as a critical result with a clear output, within its timeout.
func TestGRPCCheckerFailures(t *testing.T) {
	_, plain := grpcHealthServer(t, nil)
	cert := validCert(t)
	_, secure := grpcHealthServer(t, &cert)
	expired := selfSigned(t, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour), "127.0.0.1")
	_, old := grpcHealthServer(t, &expired)
	bare := listen(t) // a gRPC server without the health service
	bareSrv := grpc.NewServer()
	go bareSrv.Serve(bare)
	t.Cleanup(bareSrv.Stop)
	silent := silentListener(t)
	refused := closedPort(t)

	// Probes that should fail at once get a long timeout, so that a slow
	// machine does not turn their answer into a timeout; those that should
	// time out get a short one.
	const timeout, short = 5 * time.Second, 300 * time.Millisecond
	tlsCheck := func(addr string, mod func(*registry.Check)) registry.Check {
		c := grpcCheck(addr, "api", timeout)
		c.TLS = true
		if mod != nil {
			mod(&c)
		}
		return c
	}
	tests := []struct {
		name   string
		check  registry.Check
		status registry.Status
		want   string
	}{
		{"unknown service", grpcCheck(plain.Addr().String(), "nope", timeout), registry.StatusCritical,
			`service "nope" is unknown to ` + plain.Addr().String() + ` (NOT_FOUND)`},
		{"no health service", grpcCheck(bare.Addr().String(), "api", timeout), registry.StatusCritical,
			bare.Addr().String() + ` does not serve the grpc.health.v1 health service (UNIMPLEMENTED)`},
		{"refused", grpcCheck(refused, "api", timeout), registry.StatusCritical, "connection refused"},
		{"accepts and never answers", grpcCheck(silent, "api", short), registry.StatusCritical,
			"timeout: " + silent + " accepted the connection but did not answer the HTTP/2 handshake within 300ms"},
		{"tls handshake stalls", tlsCheck(silent, func(c *registry.Check) { c.Timeout = registry.Duration(short) }), registry.StatusCritical,
			"timeout: " + silent + " accepted the connection but the TLS or HTTP/2 handshake did not finish within 300ms"},
		{"tls to a plain server", tlsCheck(plain.Addr().String(), nil), registry.StatusCritical,
			"TLS handshake with " + plain.Addr().String() + " failed"},
		{"tls unknown authority", tlsCheck(secure.Addr().String(), nil), registry.StatusCritical,
			"certificate for " + secure.Addr().String() + ` is signed by an unknown authority ("CN=disco test", self-signed): trust its CA on this server or set tls_skip_verify`},
		{"tls name mismatch", tlsCheck(secure.Addr().String(), func(c *registry.Check) { c.TLSServerName = "other.test" }), registry.StatusCritical,
			"certificate for " + secure.Addr().String() + " is not valid for other.test: it is valid for probe.test, 127.0.0.1"},
		{"tls expired", tlsCheck(old.Addr().String(), nil), registry.StatusCritical,
			"certificate for " + old.Addr().String() + " has expired: valid until "},
		{"tls skip verify", tlsCheck(secure.Addr().String(), func(c *registry.Check) { c.TLSSkipVerify = true }), registry.StatusPassing,
			`service "api" at ` + secure.Addr().String() + ` is SERVING`},
	}
	g := NewGRPCChecker()
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "-"), func(t *testing.T) {
			g.Hold(tt.check)
			defer g.Release(tt.check)
			// The second probe runs on the connection the first one
			// opened (or failed to).
			for i := range 2 {
				start := time.Now()
				got := g.Check(context.Background(), tt.check).normalize()
				took := time.Since(start)
				t.Logf("probe %d: %s %q", i+1, got.Status, got.Output)
				if got.Status != tt.status || !strings.Contains(got.Output, tt.want) {
					t.Errorf("probe %d: got %s %q, want %s containing %q", i+1, got.Status, got.Output, tt.status, tt.want)
				}
				if limit := tt.check.Timeout.Std() + time.Second; took > limit {
					t.Errorf("probe %d took %s, beyond its %s timeout", i+1, took, tt.check.Timeout)
				}
			}
		})
	}
}

// TestGRPCCheckerReconnects stops the health server and starts it again
// on the same address: the held connection fails over to critical and
// comes back without waiting out a long backoff.
func TestGRPCCheckerReconnects(t *testing.T) {
	l := listen(t)
	addr := l.Addr().String()
	serve := func(l net.Listener) *grpc.Server {
		srv := grpc.NewServer()
		hs := health.NewServer()
		healthpb.RegisterHealthServer(srv, hs)
		go srv.Serve(l)
		return srv
	}
	srv := serve(l)
	g := NewGRPCChecker()
	c := grpcCheck(addr, "", 3*time.Second) // failures here come at once; the timeout only guards a loaded machine
	g.Hold(c)
	defer g.Release(c)
	if got := g.Check(context.Background(), c); got.Status != registry.StatusPassing {
		t.Fatalf("first probe: %s %q", got.Status, got.Output)
	}
	srv.Stop()
	// A few probes while it is down, as the monitor would make them.
	for range 3 {
		if got := g.Check(context.Background(), c); got.Status != registry.StatusCritical {
			t.Errorf("server stopped: %s %q", got.Status, got.Output)
		}
		time.Sleep(100 * time.Millisecond)
	}
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	srv = serve(l2)
	defer srv.Stop()
	var got Result
	for i := range 4 {
		if got = g.Check(context.Background(), c); got.Status == registry.StatusPassing {
			t.Logf("passing again at probe %d after the restart", i+1)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("server back: still %s %q after 4 probes", got.Status, got.Output)
}
