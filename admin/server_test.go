package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"disco/admin"
	"disco/registry"
)

// t0 is the fixed time of the tests' registry clock.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const testToken = "s3cret-token"

// env is a registry seeded with web/web-1 (no checks) and db/db-1 (a ttl
// check), and the admin API over it.
type env struct {
	reg     *registry.Registry
	handler http.Handler
}

// heartbeatFor stands in for the health monitor: it renews the ttl check of
// an instance by marking it passing, with the errors the monitor returns.
func heartbeatFor(reg *registry.Registry) func(registry.Key) error {
	return func(k registry.Key) error {
		in, ok := reg.Snapshot().Instance(k.Service, k.ID)
		if !ok {
			return registry.NotFound("instance %q of service %q is not registered", k.ID, k.Service)
		}
		if !slices.ContainsFunc(in.Checks, func(c registry.Check) bool { return c.Type == registry.CheckTTL }) {
			return registry.Invalid("instance %s has no ttl check to renew", k)
		}
		reg.SetHealth(k, in.Revision, registry.Health{Status: registry.StatusPassing, Output: "heartbeat received", Since: t0.Add(time.Minute)})
		return nil
	}
}

func newEnv(t testing.TB, tweak func(*admin.Config, *registry.Registry)) *env {
	t.Helper()
	return newEnvWithStore(t, nil, tweak)
}

func newEnvWithStore(t testing.TB, store registry.Store, tweak func(*admin.Config, *registry.Registry)) *env {
	t.Helper()
	reg := registry.New(registry.Config{Store: store, Now: func() time.Time { return t0 }})
	seed(t, reg)
	cfg := admin.Config{Registry: reg, Heartbeat: heartbeatFor(reg)}
	if tweak != nil {
		tweak(&cfg, reg)
	}
	return &env{reg: reg, handler: admin.New(cfg).Handler()}
}

func seed(t testing.TB, reg *registry.Registry) {
	t.Helper()
	for _, r := range []struct {
		service, id string
		reg         registry.Registration
	}{
		{"web", "web-1", registry.Registration{Address: "10.0.0.1", Port: 80, Tags: []string{"v1"}}},
		{"db", "db-1", registry.Registration{Address: "fd00::5", Port: 5432,
			Checks: []registry.Check{{Type: registry.CheckTTL, TTL: registry.Duration(30 * time.Second)}}}},
	} {
		in, err := registry.NewInstance(r.service, r.id, r.reg)
		if err != nil {
			t.Fatalf("seed %s/%s: %v", r.service, r.id, err)
		}
		if _, err := reg.Register(context.Background(), in); err != nil {
			t.Fatalf("seed %s/%s: %v", r.service, r.id, err)
		}
	}
}

// request describes one request to the API.
type request struct {
	method, path, body string
	// contentType defaults to application/json when there is a body; "-"
	// sends none.
	contentType string
	auth        string
}

func (e *env) do(t testing.TB, rq request) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	r := httptest.NewRequest(rq.method, rq.path, body)
	switch {
	case rq.contentType == "-":
	case rq.contentType != "":
		r.Header.Set("Content-Type", rq.contentType)
	case rq.body != "":
		r.Header.Set("Content-Type", "application/json")
	}
	if rq.auth != "" {
		r.Header.Set("Authorization", rq.auth)
	}
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	return w
}

// decode decodes a JSON answer strictly into v.
func decode(t testing.TB, w *httptest.ResponseRecorder, v any) {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json; body %s", ct, w.Body)
	}
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode answer: %v", err)
	}
}

type errorCase struct {
	name  string
	tweak func(*admin.Config, *registry.Registry)
	store registry.Store
	req   request
	// status and the substrings the error message must contain.
	status int
	want   []string
	// header that must be set on the answer, "Name: value".
	header string
}

// brokenStore is a Store whose disk is full.
type brokenStore struct{}

func (brokenStore) Load(context.Context) (*registry.State, error) { return &registry.State{}, nil }
func (brokenStore) Commit(context.Context, []registry.Change) error {
	return errors.New("write journal: no space left on device")
}

// okStore is a Store that accepts every commit.
type okStore struct{}

func (okStore) Load(context.Context) (*registry.State, error)   { return &registry.State{}, nil }
func (okStore) Commit(context.Context, []registry.Change) error { return nil }

func withToken(c *admin.Config, _ *registry.Registry) { c.Token = testToken }

func TestBadRequestsChangeNothing(t *testing.T) {
	const web1 = "/v1/services/web/instances/web-1"
	const valid = `{"address":"10.0.0.2","port":8080}`
	cases := []errorCase{
		// Names in the path.
		{name: "bad service name", req: request{method: "PUT", path: "/v1/services/web_app/instances/web-1", body: valid},
			status: 400, want: []string{`service name "web_app" must be lower-case letters, digits and inner hyphens`}},
		{name: "bad instance id", req: request{method: "PUT", path: "/v1/services/web/instances/-web", body: valid},
			status: 400, want: []string{`instance id "-web" must be`}},
		{name: "escaped slash in id", req: request{method: "PUT", path: "/v1/services/web/instances/a%2Fb", body: valid},
			status: 400, want: []string{`instance id "a/b" must be`}},
		{name: "service name too long", req: request{method: "PUT", path: "/v1/services/" + strings.Repeat("a", 64), body: `{}`},
			status: 400, want: []string{"is 64 characters, at most 63 allowed"}},
		{name: "bad names on delete", req: request{method: "DELETE", path: "/v1/services/Web!/instances/x_y"},
			status: 400, want: []string{`service name "web!"`, `instance id "x_y"`}},
		{name: "bad name on get", req: request{method: "GET", path: "/v1/services/-web"},
			status: 400, want: []string{`service name "-web"`}},
		{name: "bad names on maintenance", req: request{method: "PUT", path: "/v1/services/web/instances/web.1/maintenance", body: `{"enabled":true}`},
			status: 400, want: []string{`instance id "web.1"`}},
		{name: "bad names on heartbeat", req: request{method: "PUT", path: "/v1/services/db_x/instances/db-1/heartbeat"},
			status: 400, want: []string{`service name "db_x"`}},

		// Registration content.
		{name: "bad address", req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.x","port":80}`},
			status: 400, want: []string{`address "10.0.0.x" is not an IPv4 or IPv6 literal`}},
		{name: "missing address", req: request{method: "PUT", path: web1, body: `{"port":80}`},
			status: 400, want: []string{"address is required"}},
		{name: "hostname address", req: request{method: "PUT", path: web1, body: `{"address":"web.example.com","port":80}`},
			status: 400, want: []string{`address "web.example.com" is not an IPv4 or IPv6 literal`}},
		{name: "port zero", req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.1"}`},
			status: 400, want: []string{"port 0 is out of range 1-65535"}},
		{name: "port too big", req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.1","port":65536}`},
			status: 400, want: []string{"port 65536 is out of range 1-65535"}},
		{name: "port as string", req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.1","port":"80"}`},
			status: 400, want: []string{`field "port" must be an integer, got string`}},
		{name: "port fractional", req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.1","port":80.5}`},
			status: 400, want: []string{`field "port" must be an integer, got number 80.5`}},
		{name: "weight out of range", req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.1","port":80,"weight":70000}`},
			status: 400, want: []string{"weight 70000 is out of range 0-65535"}},
		{name: "bad tag", req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.1","port":80,"tags":["v 2"]}`},
			status: 400, want: []string{`tag "v 2" must be`}},
		{name: "bad meta key", req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.1","port":80,"meta":{"a b":"c"}}`},
			status: 400, want: []string{`meta key "a b" may hold only`}},
		{name: "check without url", req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.1","port":80,"checks":[{"type":"http"}]}`},
			status: 400, want: []string{"check 1: http check: url is required"}},
		{name: "unknown check type", req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.1","port":80,"checks":[{"type":"icmp"}]}`},
			status: 400, want: []string{`unknown check type "icmp" (want http, tcp, grpc, exec or ttl)`}},
		{name: "exec check without --enable-exec-checks", req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.1","port":80,"checks":[{"type":"exec","command":["/bin/true"]}]}`},
			status: 400, want: []string{"check 1: exec checks are disabled on this server; start disco serve with --enable-exec-checks to allow them"}},
		{name: "exec check with an empty command", tweak: func(c *admin.Config, _ *registry.Registry) { c.ExecChecks = true },
			req:    request{method: "PUT", path: web1, body: `{"address":"10.0.0.1","port":80,"checks":[{"type":"exec","command":[]}]}`},
			status: 400, want: []string{"check 1: exec check: command is required"}},
		{name: "exec command as a string", tweak: func(c *admin.Config, _ *registry.Registry) { c.ExecChecks = true },
			req:    request{method: "PUT", path: web1, body: `{"address":"10.0.0.1","port":80,"checks":[{"type":"exec","command":"/bin/true -v"}]}`},
			status: 400, want: []string{`field "checks.command" must be an array, got string`, `as a list, as in ["/usr/lib/nagios/plugins/check_disk","-w","10%"]`}},
		{name: "bad http method", req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.1","port":80,"checks":[{"type":"http","url":"http://10.0.0.1/","method":"GE T"}]}`},
			status: 400, want: []string{`check 1: http check: method "GE T" is not an HTTP method`}},
		{name: "header value not a list", req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.1","port":80,"checks":[{"type":"http","url":"http://10.0.0.1/","headers":{"X-Probe":"yes"}}]}`},
			status: 400, want: []string{`field "checks.headers" must be an array, got string`, `headers map each name to a list of values, as in {"X-Probe":["yes"]}`}},
		{name: "grpc address without port", req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.1","port":80,"checks":[{"type":"grpc","address":"10.0.0.1"}]}`},
			status: 400, want: []string{`check 1: grpc check: address "10.0.0.1" has no port: give host:port, as in 10.0.0.5:50051`}},
		{name: "grpc tls as a string", req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.1","port":80,"checks":[{"type":"grpc","address":"10.0.0.1:5","tls":"yes"}]}`},
			status: 400, want: []string{`field "checks.tls" must be true or false, got string`}},
		{name: "bad duration", req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.1","port":80,"checks":[{"type":"ttl","ttl":"soon"}]}`},
			status: 400, want: []string{`duration "soon"`, `"10s"`}},
		{name: "numeric duration", req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.1","port":80,"checks":[{"type":"ttl","ttl":30}]}`},
			status: 400, want: []string{`duration must be a string such as "10s"`}},
		{name: "every problem reported", req: request{method: "PUT", path: "/v1/services/web/instances/web-1", body: `{"address":"nope","port":0}`},
			status: 400, want: []string{`address "nope" is not`, "; port 0 is out of range"}},

		// Body encoding.
		{name: "broken JSON", req: request{method: "PUT", path: web1, body: "{\n  \"address\" \"10.0.0.1\"}"},
			status: 400, want: []string{"malformed JSON at line 2, column 13", "after object key"}},
		{name: "truncated JSON", req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.1",`},
			status: 400, want: []string{"malformed JSON: the body ends inside the object"}},
		{name: "unknown field", req: request{method: "PUT", path: web1, body: `{"adress":"10.0.0.1","port":80}`},
			status: 400, want: []string{`unknown field "adress"; accepted fields: address, port, tags, meta, weight, priority, checks (checks: type, url, method, headers, body, address, service, tls, tls_skip_verify, tls_server_name, command, ttl`}},
		{name: "unknown check field", req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.1","port":80,"checks":[{"type":"ttl","ttl":"5s","every":"1s"}]}`},
			status: 400, want: []string{`unknown field "every"`}},
		{name: "trailing data", req: request{method: "PUT", path: web1, body: valid + "\n{}"},
			status: 400, want: []string{"data after the JSON object at line 2, column 1"}},
		{name: "trailing garbage", req: request{method: "PUT", path: web1, body: valid + "x"},
			status: 400, want: []string{"data after the JSON object"}},
		{name: "array body", req: request{method: "PUT", path: web1, body: `[` + valid + `]`},
			status: 400, want: []string{"request body must be a JSON object"}},
		{name: "null body", req: request{method: "PUT", path: "/v1/services/web", body: `null`},
			status: 400, want: []string{"request body must be a JSON object"}},
		{name: "empty body", req: request{method: "PUT", path: web1},
			status: 400, want: []string{"request body is empty"}},
		{name: "body too large", req: request{method: "PUT", path: web1, body: `{"address":"10.0.0.1","port":80,"meta":{"k":"` + strings.Repeat("x", admin.DefaultMaxBodyBytes) + `"}}`},
			status: 413, want: []string{"request body is larger than the 1048576 bytes allowed"}},
		{name: "body over a small limit", tweak: func(c *admin.Config, _ *registry.Registry) { c.MaxBodyBytes = 16 },
			req:    request{method: "PUT", path: web1, body: valid},
			status: 413, want: []string{"larger than the 16 bytes allowed"}},
		{name: "wrong content type", req: request{method: "PUT", path: web1, body: valid, contentType: "text/plain"},
			status: 415, want: []string{`Content-Type "text/plain" is not JSON`}},
		{name: "form content type", req: request{method: "PUT", path: web1, body: valid, contentType: "application/x-www-form-urlencoded"},
			status: 415, want: []string{"is not JSON"}},
		{name: "unparsable content type", req: request{method: "PUT", path: "/v1/services/web", body: `{}`, contentType: "json;;"},
			status: 415, want: []string{`Content-Type "json;;" is not JSON`}},

		// Unknown things.
		{name: "get unknown service", req: request{method: "GET", path: "/v1/services/mail"},
			status: 404, want: []string{`service "mail" is not registered`}},
		{name: "drain unknown instance", req: request{method: "PUT", path: "/v1/services/web/instances/web-9/maintenance", body: `{"enabled":true}`},
			status: 404, want: []string{`instance "web-9" of service "web" is not registered`}},
		{name: "heartbeat unknown instance", req: request{method: "PUT", path: "/v1/services/db/instances/db-9/heartbeat"},
			status: 404, want: []string{`instance "db-9" of service "db" is not registered`}},
		{name: "unknown endpoint", req: request{method: "GET", path: "/v1/servics"},
			status: 404, want: []string{"no such endpoint: GET /v1/servics"}},
		{name: "instance collection", req: request{method: "GET", path: "/v1/services/web/instances"},
			status: 404, want: []string{"no such endpoint"}},
		{name: "zones not configured", req: request{method: "POST", path: "/v1/zones/reload"},
			status: 404, want: []string{"zone reloading is not enabled", "--zones-dir"}},
		{name: "metrics not configured", req: request{method: "GET", path: "/metrics"},
			status: 404, want: []string{"metrics are not enabled"}},

		// Other requests.
		{name: "maintenance without enabled", req: request{method: "PUT", path: "/v1/services/web/instances/web-1/maintenance", body: `{"reason":"upgrade"}`},
			status: 400, want: []string{`field "enabled" is required`}},
		{name: "maintenance enabled as string", req: request{method: "PUT", path: "/v1/services/web/instances/web-1/maintenance", body: `{"enabled":"yes"}`},
			status: 400, want: []string{`field "enabled" must be true or false, got string`}},
		{name: "maintenance reason too long", req: request{method: "PUT", path: "/v1/services/web/instances/web-1/maintenance", body: `{"enabled":true,"reason":"` + strings.Repeat("r", 257) + `"}`},
			status: 400, want: []string{"reason is 257 bytes, at most 256 allowed"}},
		{name: "settings out of range", req: request{method: "PUT", path: "/v1/services/web", body: `{"dns_ttl":-1}`},
			status: 400, want: []string{"dns_ttl -1 is out of range 0-86400 seconds"}},
		{name: "settings unknown field", req: request{method: "PUT", path: "/v1/services/web", body: `{"ttl":30}`},
			status: 400, want: []string{`unknown field "ttl"; accepted fields: dns_ttl, min_healthy_percent`}},
		{name: "heartbeat without ttl check", req: request{method: "PUT", path: "/v1/services/web/instances/web-1/heartbeat"},
			status: 400, want: []string{"instance web/web-1 has no ttl check to renew"}},
		{name: "heartbeat without health checks", tweak: func(c *admin.Config, _ *registry.Registry) { c.Heartbeat = nil },
			req:    request{method: "PUT", path: "/v1/services/db/instances/db-1/heartbeat"},
			status: 503, want: []string{"health checks not running"}},

		// Methods.
		{name: "POST on instance", req: request{method: "POST", path: web1, body: valid},
			status: 405, want: []string{"method POST is not allowed on /v1/services/web/instances/web-1; use GET, HEAD, PUT, DELETE"}, header: "Allow: GET, HEAD, PUT, DELETE"},
		{name: "DELETE on service list", req: request{method: "DELETE", path: "/v1/services"},
			status: 405, want: []string{"use GET, HEAD"}, header: "Allow: GET, HEAD"},
		{name: "GET on heartbeat", req: request{method: "GET", path: "/v1/services/db/instances/db-1/heartbeat"},
			status: 405, want: []string{"use PUT"}, header: "Allow: PUT"},
		{name: "GET on reload", req: request{method: "GET", path: "/v1/zones/reload"},
			status: 405, want: []string{"use POST"}},
		{name: "POST on healthz", req: request{method: "POST", path: "/healthz"},
			status: 405, want: []string{"use GET, HEAD"}},

		// Authentication.
		{name: "missing token", tweak: withToken, req: request{method: "PUT", path: web1, body: valid},
			status: 401, want: []string{`missing "Authorization: Bearer <token>" header`}, header: `WWW-Authenticate: Bearer realm="disco"`},
		{name: "missing token on read", tweak: withToken, req: request{method: "GET", path: "/v1/services"},
			status: 401, want: []string{"missing"}, header: `WWW-Authenticate: Bearer realm="disco"`},
		{name: "wrong token", tweak: withToken, req: request{method: "DELETE", path: web1, auth: "Bearer " + testToken + "x"},
			status: 401, want: []string{"wrong admin token"}, header: `WWW-Authenticate: Bearer realm="disco"`},
		{name: "token prefix", tweak: withToken, req: request{method: "DELETE", path: web1, auth: "Bearer s3cret"},
			status: 401, want: []string{"wrong admin token"}},
		{name: "basic auth", tweak: withToken, req: request{method: "DELETE", path: web1, auth: "Basic " + testToken},
			status: 401, want: []string{`must be "Bearer <token>"`}},
		{name: "auth before method check", tweak: withToken, req: request{method: "POST", path: web1},
			status: 401, want: []string{"missing"}},
		{name: "auth on unknown /v1 path", tweak: withToken, req: request{method: "GET", path: "/v1/secret"},
			status: 401, want: []string{"missing"}},

		// Failures of the server's parts.
		{name: "store unavailable", store: brokenStore{}, req: request{method: "PUT", path: web1, body: valid},
			status: 503, want: []string{"store unavailable", "no space left on device"}},
		{name: "store unavailable on drain", store: brokenStore{}, req: request{method: "PUT", path: web1 + "/maintenance", body: `{"enabled":true}`},
			status: 503, want: []string{"store unavailable"}},
		{name: "zone reload fails", tweak: func(c *admin.Config, _ *registry.Registry) {
			c.ReloadZones = func(context.Context) (any, error) {
				return nil, errors.New("reload zones: read zones dir: permission denied")
			}
		}, req: request{method: "POST", path: "/v1/zones/reload"},
			status: 500, want: []string{"reload zones: read zones dir: permission denied"}},
		{name: "zone file with an error", tweak: func(c *admin.Config, _ *registry.Registry) {
			c.ReloadZones = func(context.Context) (any, error) {
				return nil, admin.Unprocessable(errors.New("reload zones: z/example.com.zone:3: bad A record"))
			}
		}, req: request{method: "POST", path: "/v1/zones/reload"},
			status: 422, want: []string{"reload zones: z/example.com.zone:3: bad A record"}},
		{name: "not ready", tweak: func(c *admin.Config, _ *registry.Registry) { c.Ready = func() bool { return false } },
			req: request{method: "GET", path: "/readyz"}, status: 503, want: []string{"not ready"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e *env
			if tc.store != nil {
				// Seed through a working store, then break it.
				st := &switchStore{}
				e = newEnvWithStore(t, st, tc.tweak)
				st.broken = tc.store
			} else {
				e = newEnv(t, tc.tweak)
			}
			before := e.reg.Snapshot()
			w := e.do(t, tc.req)
			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tc.status, w.Body)
			}
			var eb admin.ErrorBody
			decode(t, w, &eb)
			for _, want := range tc.want {
				if !strings.Contains(eb.Error, want) {
					t.Errorf("error %q does not contain %q", eb.Error, want)
				}
			}
			if strings.Contains(eb.Error, "\n") || strings.Contains(eb.Error, "invalid: ") {
				t.Errorf("error %q is not one clean line", eb.Error)
			}
			if tc.header != "" {
				name, value, _ := strings.Cut(tc.header, ": ")
				if got := w.Header().Get(name); got != value {
					t.Errorf("header %s = %q, want %q", name, got, value)
				}
			}
			if after := e.reg.Snapshot(); after != before {
				t.Errorf("registry changed: version %d -> %d", before.Version(), after.Version())
			}
		})
	}
}

// switchStore accepts commits until broken is set, then fails like broken.
type switchStore struct {
	okStore
	broken registry.Store
}

func (s *switchStore) Commit(ctx context.Context, c []registry.Change) error {
	if s.broken != nil {
		return s.broken.Commit(ctx, c)
	}
	return nil
}

func TestCheckExposure(t *testing.T) {
	cases := []struct {
		addr, token string
		want        string // substring of the error; "" for none
	}{
		{"127.0.0.1:8054", "", ""},
		{"127.0.0.2:8054", "", ""},
		{"[::1]:8054", "", ""},
		{"localhost:8054", "", ""},
		{"[::ffff:127.0.0.1]:8054", "", ""},
		{"0.0.0.0:8054", "", "refusing to serve the admin API on 0.0.0.0:8054 without --admin-token"},
		{":8054", "", "refusing to serve the admin API on :8054 without --admin-token"},
		{"[::]:8054", "", "without --admin-token"},
		{"10.0.0.5:8054", "", "without --admin-token"},
		{"admin.example.com:8054", "", "without --admin-token"},
		{"0.0.0.0:8054", "t", ""},
		{"10.0.0.5:8054", "t", ""},
		{"127.0.0.1", "", `admin address "127.0.0.1": want host:port`},
	}
	for _, tc := range cases {
		t.Run(tc.addr+"/"+tc.token, func(t *testing.T) {
			err := admin.CheckExposure(tc.addr, tc.token)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("CheckExposure(%q, %q) = %v, want nil", tc.addr, tc.token, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("CheckExposure(%q, %q) = %v, want an error containing %q", tc.addr, tc.token, err, tc.want)
			}
		})
	}
}
