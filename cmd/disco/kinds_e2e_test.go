package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestCheckKindsEndToEnd runs grpc and exec checks through the server:
// DNS follows a real gRPC health server as it flips, an exec check's
// output shows in the API without the server's DISCO_ variables in its
// environment, and a server without --enable-exec-checks refuses them.
func TestCheckKindsEndToEnd(t *testing.T) {
	t.Setenv("DISCO_ADMIN_TOKEN", "secret-in-the-environment")
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

	s := startServer(t, func(c *serveConfig) { c.ExecChecks, c.MaxExecChecks = true, 4 })
	const timing = `"interval":"1s","timeout":"500ms","rise":1,"fall":1`
	s.register(t, "g", "g-1", fmt.Sprintf(`{"address":"127.0.0.1","port":80,"checks":[{"type":"grpc","address":"%s","service":"api",%s}]}`, ln.Addr(), timing))
	s.register(t, "e", "e-1", fmt.Sprintf(`{"address":"127.0.0.2","port":80,"checks":[{"type":"exec","command":["%s"],%s}]}`, script, timing))

	eventually(t, "grpc instance served", 10*time.Second, func() bool { return len(s.served(t, "g.service.disco.internal.")) == 1 })
	hs.SetServingStatus("api", healthpb.HealthCheckResponse_NOT_SERVING)
	eventually(t, "NOT_SERVING instance removed", 10*time.Second, func() bool { return len(s.served(t, "g.service.disco.internal.")) == 0 })
	if code, body := s.api(t, "GET", "/v1/services/g", ""); code != 200 || !strings.Contains(body, `is NOT_SERVING`) {
		t.Errorf("API: %d %s", code, body)
	}
	hs.SetServingStatus("api", healthpb.HealthCheckResponse_SERVING)
	eventually(t, "SERVING instance back", 10*time.Second, func() bool { return len(s.served(t, "g.service.disco.internal.")) == 1 })

	eventually(t, "exec instance served", 10*time.Second, func() bool { return len(s.served(t, "e.service.disco.internal.")) == 1 })
	code, body := s.api(t, "GET", "/v1/services/e", "")
	if code != 200 || !strings.Contains(body, "env-marker") || !strings.Contains(body, "PATH=") {
		t.Errorf("exec output in the API: %d %s", code, body)
	}
	if strings.Contains(body, "DISCO_") || strings.Contains(body, "secret-in-the-environment") {
		t.Errorf("the check's environment holds the server's DISCO_ variables: %s", body)
	}

	off := startServer(t, nil)
	code, body = off.api(t, "PUT", "/v1/services/e/instances/e-1", fmt.Sprintf(`{"address":"127.0.0.2","port":80,"checks":[{"type":"exec","command":["%s"]}]}`, script))
	if code != 400 || !strings.Contains(body, "--enable-exec-checks") {
		t.Errorf("exec check on a server without them: %d %s", code, body)
	}
}
