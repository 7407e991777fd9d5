package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"disco/admin"
	"disco/registry"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// server is a real admin API over a real registry, counting requests.
type server struct {
	url      string
	reg      *registry.Registry
	requests atomic.Int64
}

func newServer(t *testing.T, token string) *server {
	t.Helper()
	s := &server{reg: registry.New(registry.Config{Now: func() time.Time { return t0 }})}
	h := admin.New(admin.Config{Registry: s.reg, Token: token, Heartbeat: func(k registry.Key) error {
		in, ok := s.reg.Snapshot().Instance(k.Service, k.ID)
		if !ok {
			return registry.ErrNotFound
		}
		s.reg.SetHealth(k, in.Revision, registry.Health{Status: registry.StatusPassing, Output: "heartbeat received", Since: t0})
		return nil
	}}).Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	s.url = hs.URL
	return s
}

// run runs the disco CLI as main does, with args as typed after "disco".
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout bytes.Buffer
	err := runApp(context.Background(), newApp(&stdout, io.Discard), append([]string{"disco"}, args...))
	return stdout.String(), err
}

// mustRun runs the CLI against s and fails the test on error.
func (s *server) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, append(args, "--admin", s.url)...)
	if err != nil {
		t.Fatalf("disco %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func TestRegisterCommand(t *testing.T) {
	s := newServer(t, "")
	cases := []struct {
		name string
		args []string
		out  string
		want registry.Instance // the fields compared: address, port, tags, meta, weight, priority, checks
	}{
		{
			name: "flags after positionals",
			args: []string{"register", "web", "web-2", "10.0.0.2:8080", "--tag", "v2", "--tag", "canary", "--meta", "version=2.1",
				"--meta", "hosts=a,b", "--weight", "5", "--priority", "2",
				"--check-http", "http://10.0.0.2:8080/health", "--interval", "5s", "--timeout", "1s"},
			out: "registered web/web-2 at 10.0.0.2:8080: critical (waiting for the first check)\n",
			want: registry.Instance{Tags: []string{"canary", "v2"}, Meta: map[string]string{"version": "2.1", "hosts": "a,b"},
				Weight: 5, Priority: 2, Checks: []registry.Check{{Type: registry.CheckHTTP, URL: "http://10.0.0.2:8080/health",
					Interval: registry.Duration(5 * time.Second), Timeout: registry.Duration(time.Second), Rise: 1, Fall: 3}}},
		},
		{
			name: "IPv6 with a tcp check and zero weight",
			args: []string{"register", "DB", "DB-1", "[fd00::1]:5432", "--check-tcp", "[fd00::1]:5432", "--weight", "0"},
			out:  "registered db/db-1 at [fd00::1]:5432: critical (waiting for the first check)\n",
			want: registry.Instance{Tags: []string{}, Meta: map[string]string{}, Weight: 0, Priority: 1,
				Checks: []registry.Check{{Type: registry.CheckTCP, Address: "[fd00::1]:5432",
					Interval: registry.Duration(registry.DefaultInterval), Timeout: registry.Duration(registry.DefaultTimeout), Rise: 1, Fall: 3}}},
		},
		{
			name: "ttl check",
			args: []string{"register", "batch", "worker-1", "10.0.0.9:9000", "--check-ttl", "30s"},
			out:  "registered batch/worker-1 at 10.0.0.9:9000: critical (waiting for the first check)\n",
			want: registry.Instance{Tags: []string{}, Meta: map[string]string{}, Weight: 1, Priority: 1,
				Checks: []registry.Check{{Type: registry.CheckTTL, TTL: registry.Duration(30 * time.Second),
					Interval: registry.Duration(registry.DefaultInterval), Timeout: registry.Duration(registry.DefaultTimeout), Rise: 1, Fall: 3}}},
		},
		{
			name: "no checks",
			args: []string{"register", "web", "web-1", "10.0.0.1:80"},
			out:  "registered web/web-1 at 10.0.0.1:80: passing (no checks)\n",
			want: registry.Instance{Tags: []string{}, Meta: map[string]string{}, Weight: 1, Priority: 1, Checks: []registry.Check{}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := s.mustRun(t, tc.args...)
			if out != tc.out {
				t.Errorf("output %q, want %q", out, tc.out)
			}
			service, id := registry.Fold(tc.args[1]), registry.Fold(tc.args[2])
			in, ok := s.reg.Snapshot().Instance(service, id)
			if !ok {
				t.Fatalf("%s/%s not registered", service, id)
			}
			got := registry.Instance{Tags: in.Tags, Meta: in.Meta, Weight: in.Weight, Priority: in.Priority, Checks: in.Checks}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("registered\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// populate registers web-1 (passing), web-2 (critical, tagged) and web-3
// (drained), and db-1.
func (s *server) populate(t *testing.T) {
	t.Helper()
	s.mustRun(t, "register", "web", "web-1", "10.0.0.1:80")
	s.mustRun(t, "register", "web", "web-2", "10.0.0.2:80", "--tag", "v2", "--tag", "canary", "--check-tcp", "10.0.0.2:80")
	s.mustRun(t, "register", "web", "web-3", "[fd00::3]:8080")
	s.mustRun(t, "maintenance", "web", "web-3", "on", "--reason", "kernel upgrade")
	s.mustRun(t, "register", "db", "db-1", "10.0.1.1:5432")
}

func TestTables(t *testing.T) {
	s := newServer(t, "")
	s.populate(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"services", []string{"services"}, `
SERVICE  INSTANCES  PASSING  WARNING  CRITICAL  MAINT
db       1          1        0        0         0
web      3          1        0        1         1
`},
		{"instances", []string{"instances", "web"}, `
ID     ADDRESS   PORT  STATUS       TAGS       SINCE                 OUTPUT
web-1  10.0.0.1  80    passing      -          2025-03-01T12:00:00Z  no checks
web-2  10.0.0.2  80    critical     canary,v2  2025-03-01T12:00:00Z  waiting for the first check
web-3  fd00::3   8080  maintenance  -          2025-03-01T12:00:00Z  drained: kernel upgrade (checks: passing)
`},
		{"settings", []string{"settings", "web", "--dns-ttl", "30"}, `
SERVICE  DNS_TTL  MIN_HEALTHY
web      30s      default
`},
		{"settings kept", []string{"settings", "web", "--min-healthy-percent", "50"}, `
SERVICE  DNS_TTL  MIN_HEALTHY
web      30s      50%
`},
		{"settings shown", []string{"settings", "web"}, `
SERVICE  DNS_TTL  MIN_HEALTHY
web      30s      50%
`},
		{"settings reset", []string{"settings", "web", "--reset"}, `
SERVICE  DNS_TTL  MIN_HEALTHY
web      default  default
`},
		{"settings create a service", []string{"settings", "mail", "--dns-ttl", "60"}, `
SERVICE  DNS_TTL  MIN_HEALTHY
mail     60s      default
`},
		{"empty service", []string{"instances", "mail"}, `
ID  ADDRESS  PORT  STATUS  TAGS  SINCE  OUTPUT
`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := s.mustRun(t, tc.args...)
			if want := strings.TrimPrefix(tc.want, "\n"); got != want {
				t.Errorf("output\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestJSONOutput(t *testing.T) {
	s := newServer(t, "")
	s.populate(t)
	cases := []struct {
		args []string
		path string
	}{
		{[]string{"services", "--json"}, "/v1/services"},
		{[]string{"instances", "web", "--json"}, "/v1/services/web"},
		{[]string{"settings", "web", "--json"}, "/v1/services/web"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out := s.mustRun(t, tc.args...)
			resp, err := http.Get(s.url + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var fromCLI, fromAPI any
			if err := json.Unmarshal([]byte(out), &fromCLI); err != nil {
				t.Fatalf("CLI output is not JSON: %v\n%s", err, out)
			}
			if err := json.NewDecoder(resp.Body).Decode(&fromAPI); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fromCLI, fromAPI) {
				t.Errorf("CLI JSON\n%s\ndiffers from the API's", out)
			}
		})
	}
}

func TestWriteCommands(t *testing.T) {
	s := newServer(t, "")
	s.populate(t)
	cases := []struct {
		args []string
		out  string
		// id is the web instance changed; status its status afterwards
		// ("" when it is gone).
		id     string
		status registry.Status
	}{
		{[]string{"maintenance", "web", "web-1", "on"}, "web/web-1 is in maintenance; DNS no longer serves it\n", "web-1", registry.StatusMaintenance},
		{[]string{"maintenance", "web", "web-1", "OFF"}, "web/web-1 is out of maintenance: passing\n", "web-1", registry.StatusPassing},
		{[]string{"heartbeat", "web", "web-2"}, "heartbeat recorded for web/web-2: passing\n", "web-2", registry.StatusPassing},
		{[]string{"deregister", "web", "WEB-2"}, "deregistered web/web-2; DNS no longer serves it\n", "web-2", ""},
		{[]string{"deregister", "web", "web-2"}, "web/web-2 is not registered; nothing to deregister\n", "web-2", ""},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			if out := s.mustRun(t, tc.args...); out != tc.out {
				t.Errorf("output %q, want %q", out, tc.out)
			}
			var status registry.Status
			if in, ok := s.reg.Snapshot().Instance("web", tc.id); ok {
				status = in.Status()
			}
			if status != tc.status {
				t.Errorf("web/%s status = %q, want %q", tc.id, status, tc.status)
			}
		})
	}
}

func TestTokenAndEnvironment(t *testing.T) {
	s := newServer(t, "tok")
	t.Setenv("DISCO_ADMIN", s.url)
	if _, err := run(t, "services"); err == nil || !strings.Contains(err.Error(), "server said 401 Unauthorized: missing") {
		t.Fatalf("without token: %v", err)
	}
	if _, err := run(t, "services", "--token", "nope"); err == nil || !strings.Contains(err.Error(), "wrong admin token") {
		t.Fatalf("wrong token: %v", err)
	}
	t.Setenv("DISCO_TOKEN", "tok")
	out, err := run(t, "register", "web", "web-1", "10.0.0.1:80")
	if err != nil || !strings.HasPrefix(out, "registered web/web-1") {
		t.Fatalf("with DISCO_TOKEN: %q, %v", out, err)
	}
}

func TestClientErrors(t *testing.T) {
	s := newServer(t, "")
	s.populate(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	_, closedPort, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()

	cases := []struct {
		name string
		args []string
		want string
		// sent is whether the command reached the server.
		sent bool
	}{
		// The server is unreachable.
		{"unreachable", []string{"services", "--admin", closed},
			"list services: cannot reach the disco admin API at " + closed + ": dial tcp 127.0.0.1:" + closedPort +
				": connect: connection refused; is disco serve running there? Point --admin (or DISCO_ADMIN) at its admin API", false},
		{"unreachable register", []string{"register", "web", "web-9", "10.0.0.9:80", "--admin", closed},
			"register web/web-9: cannot reach the disco admin API at " + closed, false},

		// The server refuses.
		{"bad service name", []string{"register", "web_app", "x", "10.0.0.1:80"},
			`register web_app/x: server said 400 Bad Request: service name "web_app" must be lower-case letters`, true},
		{"bad check URL", []string{"register", "web", "web-9", "10.0.0.9:80", "--check-http", "10.0.0.9/health"},
			`server said 400 Bad Request: check 1: http check: url "10.0.0.9/health" must be an absolute http:// or https:// URL`, true},
		{"timeout not under interval", []string{"register", "web", "web-9", "10.0.0.9:80", "--check-tcp", "10.0.0.9:80", "--interval", "1s", "--timeout", "2s"},
			"server said 400 Bad Request: check 1: tcp check: timeout 2s must be shorter than interval 1s", true},
		{"weight out of range", []string{"register", "web", "web-9", "10.0.0.9:80", "--weight", "70000"},
			"server said 400 Bad Request: weight 70000 is out of range 0-65535", true},
		{"unknown instance", []string{"heartbeat", "web", "web-9"},
			`heartbeat web/web-9: server said 404 Not Found: instance "web-9" of service "web" is not registered (disco services lists`, true},
		{"unknown service", []string{"instances", "mail"},
			`get service mail: server said 404 Not Found: service "mail" is not registered`, true},
		{"drain unknown", []string{"maintenance", "web", "web-9", "on"}, "server said 404 Not Found", true},
		{"settings of unknown service", []string{"settings", "mail"}, "server said 404 Not Found", true},
		{"dns ttl out of range", []string{"settings", "web", "--dns-ttl", "2400h"},
			"server said 400 Bad Request: dns_ttl 8640000 is out of range", true},

		// Bad arguments never reach the server.
		{"register without address", []string{"register", "web", "web-9"},
			"register takes 3 arguments, got 2; usage: disco register <service> <id> <address>:<port>", false},
		{"register with extra argument", []string{"register", "web", "web-9", "10.0.0.9:80", "v2"},
			"register takes 3 arguments, got 4", false},
		{"address without port", []string{"register", "web", "web-9", "10.0.0.9"},
			`"10.0.0.9" is not <address>:<port>, as in 10.0.0.1:8080; usage: disco register`, false},
		{"IPv6 without brackets", []string{"register", "web", "web-9", "fd00::1:5432"},
			`"fd00::1:5432" is not <address>:<port>: write an IPv6 address in brackets, as in [fd00::1]:5432`, false},
		{"hostname", []string{"register", "web", "web-9", "web.local:80"},
			`address "web.local" in "web.local:80" is not an IPv4 or IPv6 literal`, false},
		{"port zero", []string{"register", "web", "web-9", "10.0.0.9:0"}, `port "0" in "10.0.0.9:0" must be a number 1-65535`, false},
		{"port name", []string{"register", "web", "web-9", "10.0.0.9:http"}, `port "http" in "10.0.0.9:http" must be a number 1-65535`, false},
		{"two checks", []string{"register", "web", "web-9", "10.0.0.9:80", "--check-http", "http://10.0.0.9/", "--check-ttl", "10s"},
			"--check-http and --check-ttl are mutually exclusive: give one check", false},
		{"interval without check", []string{"register", "web", "web-9", "10.0.0.9:80", "--interval", "5s"},
			"--interval and --timeout apply to a check", false},
		{"bad duration", []string{"register", "web", "web-9", "10.0.0.9:80", "--check-ttl", "soon"},
			`--check-ttl "soon": want a duration such as 10s, 500ms or 1m30s, or whole seconds such as 10`, false},
		{"negative duration", []string{"register", "web", "web-9", "10.0.0.9:80", "--check-ttl", "-30"},
			`--check-ttl -30s: want a positive duration`, false},
		{"dns ttl negative", []string{"settings", "web", "--dns-ttl", "-5"}, "--dns-ttl -5s: want whole seconds", false},
		{"dns ttl fraction", []string{"settings", "web", "--dns-ttl", "1.5s"}, "--dns-ttl 1.5s: want whole seconds", false},
		{"bad output", []string{"services", "--output", "yaml"}, `--output "yaml": want table or json`, false},
		{"output and json disagree", []string{"instances", "web", "--output", "table", "--json"}, "--output table and --json disagree", false},
		{"meta without value", []string{"register", "web", "web-9", "10.0.0.9:80", "--meta", "version"},
			`--meta "version": want key=value`, false},
		{"weight not a number", []string{"register", "web", "web-9", "10.0.0.9:80", "--weight", "heavy"},
			`--weight "heavy": want a whole number`, false},
		{"unknown flag", []string{"register", "web", "web-9", "10.0.0.9:80", "--tags", "v2"},
			"flag provided but not defined: -tags; usage: disco register", false},
		{"deregister one argument", []string{"deregister", "web"}, "deregister takes 2 arguments, got 1; usage: disco deregister <service> <id>", false},
		{"services with argument", []string{"services", "web"}, "services takes 0 arguments, got 1", false},
		{"instances without service", []string{"instances"}, "instances takes 1 argument, got 0; usage: disco instances <service> [--json]", false},
		{"heartbeat three arguments", []string{"heartbeat", "a", "b", "c"}, "heartbeat takes 2 arguments, got 3", false},
		{"maintenance without mode", []string{"maintenance", "web", "web-1"}, "maintenance takes 3 arguments, got 2", false},
		{"maintenance bad mode", []string{"maintenance", "web", "web-1", "maybe"},
			`"maybe" is neither on nor off; usage: disco maintenance <service> <id> on|off [--reason R]`, false},
		{"reason with off", []string{"maintenance", "web", "web-1", "off", "--reason", "done"},
			"--reason applies to maintenance on, not off", false},
		{"settings without service", []string{"settings"}, "settings takes 1 argument, got 0", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := s.reg.Snapshot()
			n := s.requests.Load()
			args := slices.Concat(tc.args, []string{"--admin", s.url})
			if slices.Contains(tc.args, "--admin") {
				args = tc.args
			}
			out, err := run(t, args...)
			if err == nil {
				t.Fatalf("disco %s succeeded with %q", strings.Join(tc.args, " "), out)
			}
			msg := oneLine(err)
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q\ndoes not contain %q", msg, tc.want)
			}
			if msg != err.Error() {
				t.Errorf("error is not one line: %q", err)
			}
			if out != "" {
				t.Errorf("printed %q on stdout", out)
			}
			if sent := s.requests.Load() > n; sent != tc.sent {
				t.Errorf("request sent: %v, want %v", sent, tc.sent)
			}
			if s.reg.Snapshot() != before {
				t.Errorf("registry changed")
			}
		})
	}
}
