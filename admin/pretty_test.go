package admin_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"disco/admin"
	"disco/registry"
)

// TestPretty: ?pretty indents the JSON of GETs, answers and errors alike,
// and changes nothing else.
func TestPretty(t *testing.T) {
	e := newEnv(t, func(c *admin.Config, _ *registry.Registry) {
		c.Metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("disco_up 1\n"))
		})
	})
	cases := []struct {
		name   string
		req    request
		status int
		pretty bool
	}{
		{"list", request{method: "GET", path: "/v1/services?pretty"}, 200, true},
		{"one service", request{method: "GET", path: "/v1/services/web?pretty=true"}, 200, true},
		{"error", request{method: "GET", path: "/v1/services/mail?pretty=1"}, 404, true},
		{"pretty=false", request{method: "GET", path: "/v1/services?pretty=false"}, 200, false},
		{"without", request{method: "GET", path: "/v1/services"}, 200, false},
		{"not a GET", request{method: "PUT", path: "/v1/services/web?pretty", body: `{"dns_ttl":30}`}, 200, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := e.do(t, tc.req)
			body := w.Body.Bytes()
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, body); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, body)
			}
			var indented bytes.Buffer
			json.Indent(&indented, compact.Bytes(), "", "  ")
			want := compact.String() + "\n"
			if tc.pretty {
				want = indented.String() + "\n"
			}
			if string(body) != want {
				t.Errorf("body:\n%s\nwant:\n%s", body, want)
			}
		})
	}
	// Other content passes through untouched.
	w := e.do(t, request{method: "GET", path: "/metrics?pretty"})
	if w.Code != 200 || w.Body.String() != "disco_up 1\n" || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		t.Errorf("metrics with ?pretty: %d %q", w.Code, w.Body)
	}
}
