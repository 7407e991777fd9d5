package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"disco/admin"
	"disco/registry"
)

func TestRegister(t *testing.T) {
	cases := []struct {
		name, path, body string
		want             admin.InstanceView
	}{
		{
			name: "defaults",
			path: "/v1/services/api/instances/api-1",
			body: `{"address":"10.0.0.7","port":8080}`,
			want: admin.InstanceView{Service: "api", ID: "api-1", Address: "10.0.0.7", Port: 8080,
				Tags: []string{}, Meta: map[string]string{}, Weight: 1, Priority: 1, Checks: []registry.Check{},
				Status: registry.StatusPassing, Health: registry.StatusPassing, Output: "no checks", Since: t0, Registered: t0},
		},
		{
			name: "folded names, tags sorted, everything set",
			path: "/v1/services/API/instances/Api-2",
			body: `{"address":"fd00::1","port":443,"tags":["v2","Canary","v2"],"meta":{"zone":"eu-1"},"weight":0,"priority":10,
				"checks":[{"type":"http","url":"https://[fd00::1]/health","interval":"5s"}]}`,
			want: admin.InstanceView{Service: "api", ID: "api-2", Address: "fd00::1", Port: 443,
				Tags: []string{"canary", "v2"}, Meta: map[string]string{"zone": "eu-1"}, Weight: 0, Priority: 10,
				Checks: []registry.Check{{Type: registry.CheckHTTP, URL: "https://[fd00::1]/health",
					Interval: registry.Duration(5 * time.Second), Timeout: registry.Duration(registry.DefaultTimeout), Rise: 1, Fall: 3}},
				Status: registry.StatusCritical, Health: registry.StatusCritical, Output: "waiting for the first check", Since: t0, Registered: t0},
		},
		{
			name: "mapped IPv4 unmapped, charset accepted",
			path: "/v1/services/api/instances/api-3",
			body: `{"address":"::ffff:10.0.0.9","port":1}`,
			want: admin.InstanceView{Service: "api", ID: "api-3", Address: "10.0.0.9", Port: 1,
				Tags: []string{}, Meta: map[string]string{}, Weight: 1, Priority: 1, Checks: []registry.Check{},
				Status: registry.StatusPassing, Health: registry.StatusPassing, Output: "no checks", Since: t0, Registered: t0},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			before := e.reg.Snapshot().Version()
			w := e.do(t, request{method: "PUT", path: tc.path, body: tc.body, contentType: "application/json; charset=utf-8"})
			if w.Code != http.StatusOK {
				t.Fatalf("status = %d; body %s", w.Code, w.Body)
			}
			var got admin.InstanceView
			decode(t, w, &got)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("answer\n got %+v\nwant %+v", got, tc.want)
			}
			// The write is published before the answer: the next reader sees it.
			snap := e.reg.Snapshot()
			if snap.Version() != before+1 {
				t.Errorf("version = %d, want %d", snap.Version(), before+1)
			}
			if _, ok := snap.Instance(tc.want.Service, tc.want.ID); !ok {
				t.Errorf("instance %s/%s not in the snapshot after the answer", tc.want.Service, tc.want.ID)
			}
		})
	}
}

func TestRegisterReplaceKeepsMaintenanceAndRegistration(t *testing.T) {
	e := newEnv(t, nil)
	if w := e.do(t, request{method: "PUT", path: "/v1/services/web/instances/web-1/maintenance", body: `{"enabled":true,"reason":"disk swap"}`}); w.Code != 200 {
		t.Fatalf("drain: %d %s", w.Code, w.Body)
	}
	w := e.do(t, request{method: "PUT", path: "/v1/services/web/instances/web-1", body: `{"address":"10.0.0.1","port":81}`, contentType: "-"})
	if w.Code != 200 {
		t.Fatalf("replace: %d %s", w.Code, w.Body)
	}
	var got admin.InstanceView
	decode(t, w, &got)
	if got.Port != 81 || got.Status != registry.StatusMaintenance || got.Maintenance == nil || got.Maintenance.Reason != "disk swap" || !got.Registered.Equal(t0) {
		t.Errorf("replaced instance = %+v", got)
	}
}

func TestServiceReads(t *testing.T) {
	e := newEnv(t, nil)
	for _, rq := range []request{
		{method: "PUT", path: "/v1/services/web/instances/web-2", body: `{"address":"10.0.0.2","port":80,"checks":[{"type":"tcp","address":"10.0.0.2:80"}]}`},
		{method: "PUT", path: "/v1/services/web/instances/web-3", body: `{"address":"10.0.0.3","port":80}`},
		{method: "PUT", path: "/v1/services/web/instances/web-3/maintenance", body: `{"enabled":true}`},
		{method: "PUT", path: "/v1/services/web", body: `{"dns_ttl":30}`},
		{method: "PUT", path: "/v1/services/empty", body: `{}`},
	} {
		if w := e.do(t, rq); w.Code != 200 {
			t.Fatalf("%s %s: %d %s", rq.method, rq.path, w.Code, w.Body)
		}
	}

	t.Run("list", func(t *testing.T) {
		w := e.do(t, request{method: "GET", path: "/v1/services"})
		var got admin.ServiceList
		decode(t, w, &got)
		ttl := 30
		want := admin.ServiceList{Version: e.reg.Snapshot().Version(), Services: []admin.ServiceSummary{
			{Name: "db", Instances: 1, Counts: registry.Counts{Critical: 1}},
			{Name: "empty", Instances: 0},
			{Name: "web", Instances: 3, Counts: registry.Counts{Passing: 1, Critical: 1, Maintenance: 1}, Settings: registry.Settings{DNSTTL: &ttl}},
		}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("list\n got %+v\nwant %+v", got, want)
		}
	})
	t.Run("one service", func(t *testing.T) {
		w := e.do(t, request{method: "GET", path: "/v1/services/WEB"})
		var got admin.ServiceView
		decode(t, w, &got)
		if got.Name != "web" || got.Settings.DNSTTL == nil || *got.Settings.DNSTTL != 30 {
			t.Errorf("service = %+v", got)
		}
		var lines []string
		for _, in := range got.Instances {
			lines = append(lines, in.ID+" "+string(in.Status)+" "+in.Output)
		}
		want := []string{"web-1 passing no checks", "web-2 critical waiting for the first check", "web-3 maintenance no checks"}
		if !reflect.DeepEqual(lines, want) {
			t.Errorf("instances\n got %q\nwant %q", lines, want)
		}
	})
	t.Run("empty service", func(t *testing.T) {
		w := e.do(t, request{method: "GET", path: "/v1/services/empty"})
		if w.Code != 200 || !strings.Contains(w.Body.String(), `"instances":[]`) {
			t.Errorf("empty service: %d %s", w.Code, w.Body)
		}
	})
	t.Run("HEAD", func(t *testing.T) {
		w := e.do(t, request{method: "HEAD", path: "/v1/services"})
		if w.Code != 200 {
			t.Errorf("HEAD: %d", w.Code)
		}
	})
}

func TestSetSettings(t *testing.T) {
	e := newEnv(t, nil)
	w := e.do(t, request{method: "PUT", path: "/v1/services/web", body: `{"dns_ttl":30,"min_healthy_percent":50}`})
	var got admin.ServiceView
	decode(t, w, &got)
	if w.Code != 200 || got.Settings.DNSTTL == nil || *got.Settings.DNSTTL != 30 || *got.Settings.MinHealthyPercent != 50 || len(got.Instances) != 1 {
		t.Fatalf("set: %d %+v", w.Code, got)
	}
	// PUT replaces: an empty object returns the service to the defaults.
	w = e.do(t, request{method: "PUT", path: "/v1/services/web", body: `{}`})
	got = admin.ServiceView{}
	decode(t, w, &got)
	if got.Settings != (registry.Settings{}) {
		t.Errorf("after reset: %+v", got.Settings)
	}
	svc, _ := e.reg.Snapshot().Service("web")
	if svc.Settings() != (registry.Settings{}) {
		t.Errorf("registry settings after reset: %+v", svc.Settings())
	}
}

func TestDeregister(t *testing.T) {
	e := newEnv(t, nil)
	w := e.do(t, request{method: "DELETE", path: "/v1/services/Web/instances/WEB-1"})
	var got admin.Deregistered
	decode(t, w, &got)
	if w.Code != http.StatusOK || got != (admin.Deregistered{Service: "web", ID: "web-1", Removed: true}) {
		t.Fatalf("delete: %d %q", w.Code, w.Body)
	}
	if _, ok := e.reg.Snapshot().Service("web"); ok {
		t.Errorf("service web still registered after its last instance left")
	}
	// Deregistering is idempotent: a second DELETE succeeds, changes
	// nothing and says that nothing was removed.
	version := e.reg.Snapshot().Version()
	w = e.do(t, request{method: "DELETE", path: "/v1/services/web/instances/web-1"})
	got = admin.Deregistered{}
	decode(t, w, &got)
	if w.Code != http.StatusOK || got != (admin.Deregistered{Service: "web", ID: "web-1", Removed: false}) {
		t.Errorf("second delete: %d %q", w.Code, w.Body)
	}
	if v := e.reg.Snapshot().Version(); v != version {
		t.Errorf("second delete moved the registry from version %d to %d", version, v)
	}
	// Bad names are still refused.
	if w := e.do(t, request{method: "DELETE", path: "/v1/services/web/instances/Bad_Id"}); w.Code != http.StatusBadRequest {
		t.Errorf("delete with a bad id: %d %q", w.Code, w.Body)
	}
}

func TestHeartbeat(t *testing.T) {
	e := newEnv(t, nil)
	w := e.do(t, request{method: "PUT", path: "/v1/services/db/instances/db-1/heartbeat"})
	var got admin.InstanceView
	decode(t, w, &got)
	if w.Code != 200 || got.Status != registry.StatusPassing || got.Output != "heartbeat received" || !got.Since.Equal(t0.Add(time.Minute)) {
		t.Fatalf("heartbeat: %d %+v", w.Code, got)
	}
}

func TestMaintenance(t *testing.T) {
	e := newEnv(t, nil)
	path := "/v1/services/web/instances/web-1/maintenance"
	w := e.do(t, request{method: "PUT", path: path, body: `{"enabled":true,"reason":"kernel upgrade"}`})
	var got admin.InstanceView
	decode(t, w, &got)
	want := &registry.Maintenance{Reason: "kernel upgrade", Since: t0}
	if got.Status != registry.StatusMaintenance || got.Health != registry.StatusPassing || !reflect.DeepEqual(got.Maintenance, want) {
		t.Fatalf("drain: %+v", got)
	}
	if in, _ := e.reg.Snapshot().Instance("web", "web-1"); in.Status() != registry.StatusMaintenance {
		t.Errorf("registry status after drain = %s", in.Status())
	}
	w = e.do(t, request{method: "PUT", path: path, body: `{"enabled":false}`})
	got = admin.InstanceView{}
	decode(t, w, &got)
	if got.Status != registry.StatusPassing || got.Maintenance != nil {
		t.Fatalf("undrain: %+v", got)
	}
	if strings.Contains(w.Body.String(), `"maintenance"`) {
		t.Errorf("undrained instance still shows maintenance: %s", w.Body)
	}
}

func TestReloadZones(t *testing.T) {
	calls := 0
	e := newEnv(t, func(c *admin.Config, _ *registry.Registry) {
		c.ReloadZones = func(context.Context) (any, error) {
			calls++
			return map[string]any{"loaded": []string{"example.com."}, "failed": map[string]string{"bad.zone": "bad.zone:3: syntax error"}}, nil
		}
	})
	w := e.do(t, request{method: "POST", path: "/v1/zones/reload"})
	if w.Code != 200 || calls != 1 {
		t.Fatalf("reload: %d after %d calls: %s", w.Code, calls, w.Body)
	}
	var got map[string]any
	decode(t, w, &got)
	if got["failed"].(map[string]any)["bad.zone"] != "bad.zone:3: syntax error" {
		t.Errorf("report = %v", got)
	}
}

func TestTokenAndProbes(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Write([]byte("disco_up 1\n"))
	})
	ready := false
	e := newEnv(t, func(c *admin.Config, _ *registry.Registry) {
		c.Token = testToken
		c.Metrics = metrics
		c.Ready = func() bool { return ready }
	})
	cases := []struct {
		name   string
		req    request
		status int
		body   string
	}{
		{"healthz without token", request{method: "GET", path: "/healthz"}, 200, `{"status":"alive"}`},
		{"readyz before ready", request{method: "GET", path: "/readyz"}, 503, "not ready"},
		{"metrics without token", request{method: "GET", path: "/metrics"}, 200, "disco_up 1"},
		{"list with token", request{method: "GET", path: "/v1/services", auth: "Bearer " + testToken}, 200, `"name":"web"`},
		{"scheme is case-insensitive", request{method: "GET", path: "/v1/services/web", auth: "bearer " + testToken}, 200, `"name":"web"`},
		{"write with token", request{method: "PUT", path: "/v1/services/web/instances/web-2", body: `{"address":"10.0.0.2","port":80}`, auth: "Bearer " + testToken}, 200, `"id":"web-2"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := e.do(t, tc.req)
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.body) {
				t.Errorf("%d %s, want %d with %q", w.Code, w.Body, tc.status, tc.body)
			}
		})
	}
	ready = true
	if w := e.do(t, request{method: "GET", path: "/readyz"}); w.Code != 200 {
		t.Errorf("readyz when ready: %d %s", w.Code, w.Body)
	}
}

// TestPanicAnswers500 checks that a fault in a handler becomes a JSON 500,
// not a dropped connection.
func TestPanicAnswers500(t *testing.T) {
	e := newEnv(t, func(c *admin.Config, _ *registry.Registry) {
		c.ReloadZones = func(context.Context) (any, error) { panic("zones: nil map") }
	})
	w := e.do(t, request{method: "POST", path: "/v1/zones/reload"})
	var eb admin.ErrorBody
	decode(t, w, &eb)
	if w.Code != 500 || !strings.Contains(eb.Error, "zones: nil map") {
		t.Errorf("%d %q", w.Code, eb.Error)
	}
}

// TestInstanceJSONShape checks the shape of the instance view as clients see it.
func TestInstanceJSONShape(t *testing.T) {
	e := newEnv(t, nil)
	e.do(t, request{method: "PUT", path: "/v1/services/web/instances/web-1/maintenance", body: `{"enabled":true,"reason":"r"}`})
	w := e.do(t, request{method: "GET", path: "/v1/services/web"})
	var raw struct {
		Instances []map[string]json.RawMessage `json:"instances"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range raw.Instances[0] {
		keys = append(keys, k)
	}
	want := []string{"address", "checks", "health", "id", "maintenance", "meta", "output", "port", "priority", "registered", "service", "since", "status", "tags", "weight"}
	if !sameSet(keys, want) {
		t.Errorf("instance keys = %q, want %q", keys, want)
	}
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestLogLevels(t *testing.T) {
	var buf strings.Builder
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	cases := []struct {
		name string
		req  request
		want string
	}{
		{"write at debug", request{method: "PUT", path: "/v1/services/web/instances/web-2", body: `{"address":"10.0.0.2","port":80}`, auth: "Bearer " + testToken},
			`level=DEBUG msg="instance registered" component=admin service=web instance=web-2`},
		{"client mistake at debug", request{method: "PUT", path: "/v1/services/web/instances/web-2", body: `{}`, auth: "Bearer " + testToken},
			`level=DEBUG msg="admin request failed" component=admin method=PUT path=/v1/services/web/instances/web-2 status=400`},
		{"refused token at warn", request{method: "GET", path: "/v1/services"},
			`level=WARN msg="admin request failed" component=admin method=GET path=/v1/services status=401`},
		{"server fault at error", request{method: "POST", path: "/v1/zones/reload", auth: "Bearer " + testToken},
			`level=ERROR msg="admin request failed" component=admin method=POST path=/v1/zones/reload status=500`},
	}
	e := newEnv(t, func(c *admin.Config, _ *registry.Registry) {
		c.Logger = logger
		c.Token = testToken
		c.ReloadZones = func(context.Context) (any, error) { return nil, errors.New("boom") }
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			buf.Reset()
			e.do(t, tc.req)
			if got := buf.String(); !strings.Contains(got, tc.want) || strings.Count(got, "\n") != 1 {
				t.Errorf("log\n%s\nwant one line containing\n%s", got, tc.want)
			}
		})
	}
}

// TestConcurrentWrites registers instances from many clients at once
// through a store, so that the registry commits them in groups.
func TestConcurrentWrites(t *testing.T) {
	e := newEnvWithStore(t, okStore{}, nil)
	const n = 32
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Go(func() {
			w := e.do(t, request{method: "PUT", path: fmt.Sprintf("/v1/services/load/instances/i-%d", i),
				body: fmt.Sprintf(`{"address":"10.1.0.%d","port":80}`, i+1)})
			codes[i] = w.Code
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("request %d: status %d", i, c)
		}
	}
	if svc, ok := e.reg.Snapshot().Service("load"); !ok || svc.Counts().Passing != n {
		t.Fatalf("service load after %d registrations: %v", n, ok)
	}
}

func BenchmarkRegister(b *testing.B) {
	e := newEnv(b, nil)
	body := `{"address":"10.0.0.2","port":8080,"tags":["v2"],"checks":[{"type":"http","url":"http://10.0.0.2:8080/health"}]}`
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		w := e.do(b, request{method: "PUT", path: fmt.Sprintf("/v1/services/web/instances/web-%d", i%1000), body: body})
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

func BenchmarkGetService(b *testing.B) {
	e := newEnv(b, nil)
	for i := range 100 {
		w := e.do(b, request{method: "PUT", path: fmt.Sprintf("/v1/services/web/instances/web-%d", i), body: `{"address":"10.0.0.2","port":8080}`})
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if w := e.do(b, request{method: "GET", path: "/v1/services/web"}); w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}
