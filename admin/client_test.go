package admin_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"disco/admin"
	"disco/registry"
)

// serve runs the API of e's configuration with Serve on a loopback listener
// and returns its base URL; the server stops with the test.
func serve(t *testing.T, tweak func(*admin.Config, *registry.Registry)) (string, *registry.Registry) {
	t.Helper()
	reg := registry.New(registry.Config{Now: func() time.Time { return t0 }})
	seed(t, reg)
	cfg := admin.Config{Registry: reg, Heartbeat: heartbeatFor(reg)}
	if tweak != nil {
		tweak(&cfg, reg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- admin.New(cfg).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v after shutdown, want nil", err)
		}
	})
	return "http://" + ln.Addr().String(), reg
}

func TestClient(t *testing.T) {
	base, reg := serve(t, func(c *admin.Config, _ *registry.Registry) {
		c.Token = testToken
		c.ReloadZones = func(context.Context) (any, error) { return map[string]int{"zones": 2}, nil }
	})
	ctx := context.Background()
	c := admin.NewClient(base+"/", testToken, nil)

	w := 5
	in, err := c.Register(ctx, "web", "web-2", registry.Registration{Address: "10.0.0.2", Port: 8080, Tags: []string{"v2"}, Weight: &w})
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	if in.ID != "web-2" || in.Weight != 5 || in.Status != registry.StatusPassing {
		t.Errorf("Register = %+v", in)
	}
	if _, ok := reg.Snapshot().Instance("web", "web-2"); !ok {
		t.Errorf("registered instance not in the registry")
	}

	svc, err := c.SetSettings(ctx, "web", registry.Settings{DNSTTL: new(30)})
	if err != nil || *svc.Settings.DNSTTL != 30 {
		t.Fatalf("SetSettings = %+v, %v", svc, err)
	}

	list, err := c.Services(ctx)
	if err != nil || len(list.Services) != 2 || list.Services[1].Name != "web" || list.Services[1].Counts.Passing != 2 {
		t.Fatalf("Services = %+v, %v", list, err)
	}

	svc, err = c.Service(ctx, "web")
	if err != nil || len(svc.Instances) != 2 {
		t.Fatalf("Service = %+v, %v", svc, err)
	}

	in, err = c.Heartbeat(ctx, "db", "db-1")
	if err != nil || in.Status != registry.StatusPassing {
		t.Fatalf("Heartbeat = %+v, %v", in, err)
	}

	in, err = c.Maintenance(ctx, "web", "web-2", true, "upgrade")
	if err != nil || in.Status != registry.StatusMaintenance || in.Maintenance.Reason != "upgrade" {
		t.Fatalf("Maintenance on = %+v, %v", in, err)
	}
	in, err = c.Maintenance(ctx, "web", "web-2", false, "")
	if err != nil || in.Status != registry.StatusPassing {
		t.Fatalf("Maintenance off = %+v, %v", in, err)
	}

	report, err := c.ReloadZones(ctx)
	if err != nil || strings.TrimSpace(string(report)) != `{"zones":2}` {
		t.Fatalf("ReloadZones = %s, %v", report, err)
	}

	if d, err := c.Deregister(ctx, "web", "web-2"); err != nil || !d.Removed || d.Service != "web" || d.ID != "web-2" {
		t.Fatalf("Deregister = %+v, %v", d, err)
	}
	if _, ok := reg.Snapshot().Instance("web", "web-2"); ok {
		t.Errorf("deregistered instance still in the registry")
	}
	// Deregistering is idempotent: again, it succeeds and says so.
	if d, err := c.Deregister(ctx, "web", "web-2"); err != nil || d.Removed {
		t.Fatalf("Deregister again = %+v, %v", d, err)
	}
}

func TestClientErrors(t *testing.T) {
	base, reg := serve(t, withToken)
	ctx := context.Background()

	// A closed port: nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	cases := []struct {
		name   string
		call   func() error
		status int // 0 when the server was not reached
		want   string
	}{
		{"bad address", func() error {
			_, err := admin.NewClient(base, testToken, nil).Register(ctx, "web", "web-2", registry.Registration{Address: "x", Port: 80})
			return err
		}, 400, `register web/web-2: server said 400 Bad Request: address "x" is not an IPv4 or IPv6 literal`},
		{"unknown instance", func() error {
			_, err := admin.NewClient(base, testToken, nil).Heartbeat(ctx, "web", "web-9")
			return err
		}, 404, `heartbeat web/web-9: server said 404 Not Found: instance "web-9" of service "web" is not registered`},
		{"unknown service", func() error {
			_, err := admin.NewClient(base, testToken, nil).Service(ctx, "mail")
			return err
		}, 404, `get service mail: server said 404 Not Found: service "mail" is not registered`},
		{"name with slash stays one segment", func() error {
			_, err := admin.NewClient(base, testToken, nil).Service(ctx, "web/instances")
			return err
		}, 400, `service name "web/instances" must be`},
		{"missing token", func() error {
			_, err := admin.NewClient(base, "", nil).Services(ctx)
			return err
		}, 401, "server said 401 Unauthorized: missing"},
		{"wrong token", func() error {
			_, err := admin.NewClient(base, "guess", nil).Services(ctx)
			return err
		}, 401, "server said 401 Unauthorized: wrong admin token"},
		{"unreachable", func() error {
			_, err := admin.NewClient(closed, "", nil).Services(ctx)
			return err
		}, 0, "list services: cannot reach the disco admin API at " + closed + ": dial tcp"},
		{"base without scheme", func() error {
			_, err := admin.NewClient(strings.TrimPrefix(closed, "http://"), "", nil).Services(ctx)
			return err
		}, 0, "cannot reach the disco admin API at " + closed + ":"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := reg.Snapshot()
			err := tc.call()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
			var ae *admin.APIError
			switch {
			case tc.status == 0 && (errors.As(err, &ae) || !errors.Is(err, admin.ErrUnreachable)):
				t.Errorf("error %v is not ErrUnreachable", err)
			case tc.status != 0 && (!errors.As(err, &ae) || ae.StatusCode != tc.status):
				t.Errorf("error %v: want an APIError with status %d", err, tc.status)
			}
			if reg.Snapshot() != before {
				t.Errorf("registry changed")
			}
		})
	}
}

// TestClientNonJSONError checks that an error page from something between
// the client and the server (a proxy) still makes a readable error.
func TestClientNonJSONError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "<html><body>Bad Gateway</body></html>", http.StatusBadGateway)
	}))
	defer srv.Close()
	_, err := admin.NewClient(srv.URL, "", srv.Client()).Services(context.Background())
	if err == nil || !strings.Contains(err.Error(), "server said 502 Bad Gateway: <html><body>Bad Gateway</body></html>") {
		t.Fatalf("error = %v", err)
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- admin.New(admin.Config{Registry: registry.New(registry.Config{})}).Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %s", resp.Status)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Errorf("server still answers after Serve returned")
	}
}
