package admin_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"disco/admin"
	"disco/registry"
)

func TestInstanceDetail(t *testing.T) {
	e := newEnv(t, nil)
	in, _ := e.reg.Snapshot().Instance("db", "db-1")
	k := in.Key()
	e.reg.SetHealth(k, in.Revision, registry.Health{Status: registry.StatusPassing, Output: "heartbeat received", Since: t0.Add(time.Second)})
	e.reg.SetHealth(k, in.Revision, registry.Health{Status: registry.StatusCritical, Output: "no heartbeat within 30s", Since: t0.Add(time.Minute)})
	e.reg.ObserveCheck(k, in.Revision, registry.CheckRun{Time: t0.Add(2 * time.Minute), Status: registry.StatusCritical,
		Output: "no heartbeat within 30s", Failures: 2})

	w := e.do(t, request{method: "GET", path: "/v1/services/DB/instances/db-1"})
	var got admin.InstanceDetail
	decode(t, w, &got)
	want := []registry.Transition{
		{Time: t0.Add(time.Second), From: registry.StatusCritical, To: registry.StatusPassing, Output: "heartbeat received"},
		{Time: t0.Add(time.Minute), From: registry.StatusPassing, To: registry.StatusCritical, Output: "no heartbeat within 30s"},
	}
	if w.Code != 200 || got.ID != "db-1" || got.Status != registry.StatusCritical || got.Failures != 2 ||
		got.LastCheck == nil || !got.LastCheck.Equal(t0.Add(2*time.Minute)) || got.Output != "no heartbeat within 30s" {
		t.Errorf("instance %d %+v", w.Code, got.InstanceView)
	}
	if len(got.History) != len(want) {
		t.Fatalf("history %+v, want %+v", got.History, want)
	}
	for i := range want {
		if g := got.History[i]; !g.Time.Equal(want[i].Time) || g.From != want[i].From || g.To != want[i].To || g.Output != want[i].Output {
			t.Errorf("history[%d] = %+v, want %+v", i, g, want[i])
		}
	}
	if n := indexOf(t, w); n != e.reg.Snapshot().ServiceIndex("db") {
		t.Errorf("index %d, want the service's", n)
	}

	// An instance without checks or transitions: an empty history, no
	// last check.
	w = e.do(t, request{method: "GET", path: "/v1/services/web/instances/web-1"})
	var raw map[string]any
	if err := decodeAny(w, &raw); err != nil || w.Code != 200 {
		t.Fatalf("web-1: %d %v", w.Code, err)
	}
	if h, ok := raw["history"].([]any); !ok || len(h) != 0 {
		t.Errorf("history of web-1 = %v, want []", raw["history"])
	}
	if _, ok := raw["last_check"]; ok {
		t.Errorf("web-1 has no checks but a last_check: %v", raw["last_check"])
	}

	for _, tc := range []struct {
		path   string
		status int
		want   string
	}{
		{"/v1/services/web/instances/nope", 404, `instance "nope" of service "web" is not registered`},
		{"/v1/services/web/instances/-x", 400, `instance id "-x"`},
	} {
		w := e.do(t, request{method: "GET", path: tc.path})
		var eb admin.ErrorBody
		decode(t, w, &eb)
		if w.Code != tc.status || !strings.Contains(eb.Error, tc.want) {
			t.Errorf("%s: %d %q, want %d saying %q", tc.path, w.Code, eb.Error, tc.status, tc.want)
		}
	}
}

// unreachable is an Explainer for requests that must be refused before
// anything is asked of DNS.
type unreachable struct{ t *testing.T }

func (u unreachable) Explain(name string, qtype uint16) admin.DNSAnswer {
	u.t.Errorf("explain %s %d reached the DNS server", name, qtype)
	panic("unreachable")
}

func TestExplainBadInput(t *testing.T) {
	e := newEnv(t, func(c *admin.Config, _ *registry.Registry) { c.Explainer = unreachable{t} })
	for _, tc := range []struct {
		query, want string
	}{
		{"", "name is required"},
		{"name=", "name is required"},
		{"name=a..b", `name "a..b" is not a domain name`},
		{"name=" + strings.Repeat("a", 64) + ".com", "is not a domain name"},
		{"name=web.service.disco.internal&type=BOGUS", `type "BOGUS" is not a DNS record type`},
		{"name=web.service.disco.internal&type=TYPE70000", `type "TYPE70000" is not a DNS record type`},
	} {
		w := e.do(t, request{method: "GET", path: "/v1/explain?" + tc.query})
		var eb admin.ErrorBody
		decode(t, w, &eb)
		if w.Code != http.StatusBadRequest || !strings.Contains(eb.Error, tc.want) {
			t.Errorf("%q: %d %q, want 400 saying %q", tc.query, w.Code, eb.Error, tc.want)
		}
	}
	e = newEnv(t, nil)
	if w := e.do(t, request{method: "GET", path: "/v1/explain?name=x"}); w.Code != http.StatusNotFound {
		t.Errorf("without an explainer: %d, want 404", w.Code)
	}
}

func TestStatusPageAssets(t *testing.T) {
	e := newEnv(t, func(c *admin.Config, _ *registry.Registry) { c.Token = testToken })
	for _, tc := range []struct {
		path, ctype, has string
	}{
		{"/ui/", "text/html", `<script src="app.js"`},
		{"/ui/app.js", "text/javascript", "X-Disco-Index"},
		{"/ui/app.css", "text/css", ".st-critical"},
	} {
		w := e.do(t, request{method: "GET", path: tc.path})
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), tc.ctype) || !strings.Contains(w.Body.String(), tc.has) {
			t.Errorf("%s without a token: %d %q", tc.path, w.Code, w.Header().Get("Content-Type"))
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: Content-Security-Policy %q", tc.path, csp)
		}
		if strings.Contains(w.Body.String(), "web-1") || strings.Contains(w.Body.String(), "10.0.0.1") {
			t.Errorf("%s holds registry data", tc.path)
		}
	}
	if w := e.do(t, request{method: "GET", path: "/ui"}); w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "/ui/" {
		t.Errorf("/ui: %d to %q, want a redirect to /ui/", w.Code, w.Header().Get("Location"))
	}
	// The page's prefix opens nothing else.
	for _, path := range []string{"/ui/../v1/services", "/ui/%2e%2e/v1/services", "/ui/nope"} {
		w := e.do(t, request{method: "GET", path: path})
		if strings.Contains(w.Body.String(), "web-1") || w.Code == 200 {
			t.Errorf("%s without a token: %d %s", path, w.Code, w.Body)
		}
	}
	if w := e.do(t, request{method: "GET", path: "/v1/services"}); w.Code != http.StatusUnauthorized {
		t.Errorf("the API without a token: %d", w.Code)
	}
}

func decodeAny(w *httptest.ResponseRecorder, v any) error {
	return json.Unmarshal(w.Body.Bytes(), v)
}
