package admin_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"disco/admin"
	"disco/health"
	"disco/registry"
)

// TestErrorMessages pins the status and the whole message of the answers to
// failed requests, by the kind of error that failed them: the message is
// what the error carries for the client, without the kind's name.
func TestErrorMessages(t *testing.T) {
	const web1 = "/v1/services/web/instances/web-1"
	noTTL := func(c *admin.Config, reg *registry.Registry) {
		// What health.Monitor and cluster.Heartbeats answer for an instance
		// without a ttl check.
		c.Heartbeat = func(k registry.Key) error {
			return registry.Invalid("the instance has no ttl check").In("heartbeat " + k.String())
		}
	}
	stopped := func(c *admin.Config, reg *registry.Registry) {
		c.Heartbeat = health.New(health.Config{Source: reg, Reporter: reg}).Heartbeat
	}
	cases := []struct {
		name   string
		tweak  func(*admin.Config, *registry.Registry)
		store  registry.Store
		req    request
		status int
		want   string
	}{
		{name: "one invalid field", req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.2","port":0}`},
			status: http.StatusBadRequest, want: "port 0 is out of range 1-65535"},
		{name: "every invalid field", req: request{method: "PUT", path: web1, body: `{"address":"","port":0,"tags":["a_b"]}`},
			status: http.StatusBadRequest,
			want:   `address is required (an IPv4 or IPv6 literal); port 0 is out of range 1-65535; tag "a_b" must be lower-case letters, digits and inner hyphens (one DNS label)`},
		{name: "invalid check", req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.2","port":80,"checks":[{"type":"ttl","ttl":"30s"},{"type":"tcp","address":"10.0.0.2"}]}`},
			status: http.StatusBadRequest, want: `check 2: tcp check: address "10.0.0.2" must be host:port`},
		{name: "grpc check without port", req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.2","port":80,"checks":[{"type":"grpc","address":"10.0.0.2"}]}`},
			status: http.StatusBadRequest, want: `check 1: grpc check: address "10.0.0.2" has no port: give host:port, as in 10.0.0.5:50051`},
		{name: "invalid names in the path", req: request{method: "DELETE", path: "/v1/services/web_x/instances/-a"},
			status: http.StatusBadRequest,
			want:   `service name "web_x" must be lower-case letters, digits and inner hyphens (one DNS label); instance id "-a" must be lower-case letters, digits and inner hyphens (one DNS label)`},
		{name: "invalid settings", req: request{method: "PUT", path: "/v1/services/web", body: `{"min_healthy_percent":101}`},
			status: http.StatusBadRequest, want: "min_healthy_percent 101 is out of range 0-100"},
		{name: "unknown service", req: request{method: "GET", path: "/v1/services/mail"},
			status: http.StatusNotFound, want: `service "mail" is not registered`},
		{name: "unknown instance", req: request{method: "GET", path: "/v1/services/web/instances/web-9"},
			status: http.StatusNotFound, want: `instance "web-9" of service "web" is not registered`},
		{name: "invalid with context", tweak: noTTL, req: request{method: "PUT", path: web1 + "/heartbeat"},
			status: http.StatusBadRequest, want: "heartbeat web/web-1: the instance has no ttl check"},
		{name: "unavailable keeps its kind", tweak: stopped, req: request{method: "PUT", path: "/v1/services/db/instances/db-1/heartbeat"},
			status: http.StatusServiceUnavailable, want: "heartbeat db/db-1: store unavailable: health checks are not running"},
		{name: "store unavailable", store: brokenStore{}, req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.2","port":80}`},
			status: http.StatusServiceUnavailable, want: "register web/web-1: store unavailable: write journal: no space left on device"},
		{name: "unprocessable", tweak: func(c *admin.Config, _ *registry.Registry) {
			c.ReloadZones = func(context.Context) (any, error) {
				return nil, admin.Unprocessable(errors.New("reload zones: z/example.com.zone:3: bad A record"))
			}
		}, req: request{method: "POST", path: "/v1/zones/reload"},
			status: http.StatusUnprocessableEntity, want: "reload zones: z/example.com.zone:3: bad A record"},
		{name: "unprocessable with context", tweak: func(c *admin.Config, _ *registry.Registry) {
			c.ReloadZones = func(context.Context) (any, error) {
				return nil, fmt.Errorf("reload zones: %w", admin.Unprocessable(errors.New("z/example.com.zone:3: bad A record")))
			}
		}, req: request{method: "POST", path: "/v1/zones/reload"},
			status: http.StatusUnprocessableEntity, want: "reload zones: z/example.com.zone:3: bad A record"},
		{name: "server fault", tweak: func(c *admin.Config, _ *registry.Registry) {
			c.ReloadZones = func(context.Context) (any, error) {
				return nil, errors.New("reload zones: read zones dir: permission denied")
			}
		}, req: request{method: "POST", path: "/v1/zones/reload"},
			status: http.StatusInternalServerError, want: "reload zones: read zones dir: permission denied"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e *env
			if tc.store != nil {
				st := &switchStore{}
				e = newEnvWithStore(t, st, tc.tweak)
				st.broken = tc.store
			} else {
				e = newEnv(t, tc.tweak)
			}
			w := e.do(t, tc.req)
			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tc.status, w.Body)
			}
			var eb admin.ErrorBody
			decode(t, w, &eb)
			if eb.Error != tc.want {
				t.Errorf("error = %q\n     want %q", eb.Error, tc.want)
			}
		})
	}
}
