package registry_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"disco/registry"
)

func TestCheckKindsRejected(t *testing.T) {
	http := func(mod func(c *registry.Check)) registry.Check {
		c := registry.Check{Type: registry.CheckHTTP, URL: "https://10.0.0.5/health"}
		mod(&c)
		return c
	}
	tests := []struct {
		name  string
		check registry.Check
		want  string
	}{
		{"bad method", http(func(c *registry.Check) { c.Method = "PO ST" }),
			`http check: method "PO ST" is not an HTTP method (such as GET, POST or HEAD)`},
		{"method with a slash", http(func(c *registry.Check) { c.Method = "GET/1" }),
			`http check: method "GET/1" is not an HTTP method (such as GET, POST or HEAD)`},
		{"connect", http(func(c *registry.Check) { c.Method = "connect" }),
			`http check: method CONNECT cannot check health; use GET, HEAD, POST or another method`},
		{"header name with a colon", http(func(c *registry.Check) { c.Headers = map[string][]string{"X-Probe:": {"yes"}} }),
			`http check: header name "X-Probe:" is not valid: use letters, digits and -, as in X-Probe`},
		{"header without value", http(func(c *registry.Check) { c.Headers = map[string][]string{"x-probe": {}} }),
			`http check: header X-Probe has no value: give at least one, as in {"X-Probe":["v"]}`},
		{"header given twice", http(func(c *registry.Check) { c.Headers = map[string][]string{"x-probe": {"a"}, "X-PROBE": {"b"}} }),
			`http check: header X-Probe is given twice (names are case-insensitive)`},
		{"header with a line break", http(func(c *registry.Check) { c.Headers = map[string][]string{"X-A": {"1\r\nX-B: 2"}} }),
			`http check: header X-A: value "1\r\nX-B: 2" holds a control character (such as a line break)`},
		{"content-length header", http(func(c *registry.Check) { c.Headers = map[string][]string{"content-length": {"3"}} }),
			`http check: header Content-Length is set by the HTTP client and cannot be given`},
		{"two hosts", http(func(c *registry.Check) { c.Headers = map[string][]string{"Host": {"a", "b"}} }),
			`http check: header Host has 2 values; give one`},
		{"too many headers", http(func(c *registry.Check) {
			c.Headers = map[string][]string{}
			for i := range registry.MaxCheckHeaders + 1 {
				c.Headers["X-"+strings.Repeat("a", i+1)] = []string{"v"}
			}
		}), `http check: 33 headers given, at most 32 allowed`},
		{"headers too large", http(func(c *registry.Check) { c.Headers = map[string][]string{"X-Big": {strings.Repeat("v", 9000)}} }),
			`http check: headers take 9009 bytes, at most 8192 allowed`},
		{"body too large", http(func(c *registry.Check) { c.Body = strings.Repeat("b", registry.MaxCheckBody+1) }),
			`http check: body is 8193 bytes, at most 8192 allowed`},
		{"tls option on plain http", registry.Check{Type: registry.CheckHTTP, URL: "http://10.0.0.5/", TLSSkipVerify: true},
			`http check: tls_skip_verify and tls_server_name apply to https:// URLs only`},
		{"bad server name", http(func(c *registry.Check) { c.TLSServerName = "probe test" }),
			`http check: tls_server_name "probe test" is not a host name (such as api.example.com) or an IP address`},
		{"server name with a port", http(func(c *registry.Check) { c.TLSServerName = "probe.test:443" }),
			`http check: tls_server_name "probe.test:443" is not a host name (such as api.example.com) or an IP address`},
		{"http with command", http(func(c *registry.Check) { c.Command = []string{"/bin/true"} }),
			`http check: command does not apply (http checks take url, method, headers, body, tls_skip_verify, tls_server_name)`},

		{"grpc without address", registry.Check{Type: registry.CheckGRPC},
			`grpc check: address is required (host:port)`},
		{"grpc without port", registry.Check{Type: registry.CheckGRPC, Address: "10.0.0.5"},
			`grpc check: address "10.0.0.5" has no port: give host:port, as in 10.0.0.5:50051`},
		{"grpc port 0", registry.Check{Type: registry.CheckGRPC, Address: "10.0.0.5:0"},
			`grpc check: address "10.0.0.5:0": port must be 1-65535`},
		{"grpc service with a space", registry.Check{Type: registry.CheckGRPC, Address: "10.0.0.5:50051", Service: "my api"},
			`grpc check: service "my api" holds a space or control character`},
		{"grpc service too long", registry.Check{Type: registry.CheckGRPC, Address: "10.0.0.5:50051", Service: strings.Repeat("s", 256)},
			`grpc check: service name is 256 bytes, at most 255 allowed`},
		{"grpc tls option without tls", registry.Check{Type: registry.CheckGRPC, Address: "10.0.0.5:50051", TLSServerName: "api.test"},
			`grpc check: tls_skip_verify and tls_server_name apply only with "tls":true`},
		{"grpc with url and method", registry.Check{Type: registry.CheckGRPC, Address: "10.0.0.5:50051", URL: "http://x/", Method: "GET"},
			`grpc check: url, method do not apply (grpc checks take address, service, tls, tls_skip_verify, tls_server_name)`},

		{"exec without command", registry.Check{Type: registry.CheckExec},
			`exec check: command is required: the program and its arguments, as in ["/usr/lib/nagios/plugins/check_disk","-w","10%"]`},
		{"exec with an empty command", registry.Check{Type: registry.CheckExec, Command: []string{}},
			`exec check: command is required: the program and its arguments, as in ["/usr/lib/nagios/plugins/check_disk","-w","10%"]`},
		{"exec with an empty program", registry.Check{Type: registry.CheckExec, Command: []string{"", "-v"}},
			`exec check: command: the program (the first word) is empty`},
		{"exec with a relative path", registry.Check{Type: registry.CheckExec, Command: []string{"./check.sh"}},
			`exec check: command: program "./check.sh" is a relative path; give an absolute path or a bare name looked up in the server's PATH`},
		{"exec with a NUL", registry.Check{Type: registry.CheckExec, Command: []string{"/bin/echo", "a\x00b"}},
			`exec check: command: word 2 holds a NUL byte`},
		{"exec with too many words", registry.Check{Type: registry.CheckExec, Command: slices.Repeat([]string{"/bin/echo"}, 65)},
			`exec check: command has 65 words, at most 64 allowed`},
		{"exec with address", registry.Check{Type: registry.CheckExec, Command: []string{"/bin/true"}, Address: "10.0.0.5:1"},
			`exec check: address does not apply (exec checks take command)`},
		{"tcp with service", registry.Check{Type: registry.CheckTCP, Address: "10.0.0.5:1", Service: "api", TLS: true},
			`tcp check: service, tls do not apply (tcp checks take address)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := registry.NewInstance("web", "web-1", withCheck(tt.check))
			if err == nil {
				t.Fatalf("accepted: %+v", in.Checks)
			}
			if !errors.Is(err, registry.ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			if want := "check 1: invalid: " + tt.want; err.Error() != want {
				t.Errorf("error\n%s\nwant\n%s", err, want)
			}
		})
	}
}

func TestCheckKindsAccepted(t *testing.T) {
	reg := with(func(r *registry.Registration) {
		r.Checks = []registry.Check{
			{Type: registry.CheckHTTP, URL: "https://10.0.0.5/health", Method: "post",
				Headers: map[string][]string{"x-probe": {"yes"}, "HOST": {"api.test"}}, Body: `{"ping":1}`,
				TLSSkipVerify: true, TLSServerName: "Probe.Test."},
			{Type: registry.CheckHTTP, URL: "http://10.0.0.5/health", Headers: map[string][]string{}},
			{Type: registry.CheckGRPC, Address: "10.0.0.5:50051", Service: "grpc.health.v1.Health", TLS: true, TLSServerName: "10.0.0.5"},
			{Type: registry.CheckGRPC, Address: "[2001:db8::5]:50051"},
			{Type: registry.CheckExec, Command: []string{"check_disk", "-w", "10%"}},
		}
	})
	in, err := registry.NewInstance("web", "web-1", reg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(in.Checks)
	if err != nil {
		t.Fatal(err)
	}
	want := `[` +
		`{"type":"http","url":"https://10.0.0.5/health","method":"POST","headers":{"Host":["api.test"],"X-Probe":["yes"]},"body":"{\"ping\":1}","tls_skip_verify":true,"tls_server_name":"probe.test","interval":"10s","timeout":"2s","rise":1,"fall":3},` +
		`{"type":"http","url":"http://10.0.0.5/health","interval":"10s","timeout":"2s","rise":1,"fall":3},` +
		`{"type":"grpc","address":"10.0.0.5:50051","service":"grpc.health.v1.Health","tls":true,"tls_server_name":"10.0.0.5","interval":"10s","timeout":"2s","rise":1,"fall":3},` +
		`{"type":"grpc","address":"[2001:db8::5]:50051","interval":"10s","timeout":"2s","rise":1,"fall":3},` +
		`{"type":"exec","command":["check_disk","-w","10%"],"interval":"10s","timeout":"2s","rise":1,"fall":3}]`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// What was stored normalizes to itself: the store's canonical-form
	// check accepts it.
	again, err := registry.NewInstance("web", "web-1", registry.Registration{Address: "10.0.0.1", Port: 80, Checks: in.Checks})
	if err != nil {
		t.Fatal(err)
	}
	if !registry.EqualChecks(again.Checks, in.Checks) {
		t.Errorf("normalizing again changed the checks:\n%+v\n%+v", again.Checks, in.Checks)
	}
}

// TestCheckEqual changes each field of a check in turn, so that a field
// added to Check without a comparison in Equal fails here.
func TestCheckEqual(t *testing.T) {
	base := registry.Check{Type: registry.CheckHTTP, URL: "u", Method: "GET", Headers: map[string][]string{"A": {"1"}},
		Body: "b", Address: "a:1", Service: "s", Command: []string{"c"}, TTL: 1, Interval: 2, Timeout: 3, Rise: 4, Fall: 5, DeregisterAfter: 6}
	if !base.Equal(base) {
		t.Fatal("a check differs from itself")
	}
	typ := reflect.TypeOf(base)
	for i := range typ.NumField() {
		other := base
		other.Headers = map[string][]string{"A": {"1"}}
		other.Command = []string{"c"}
		f := reflect.ValueOf(&other).Elem().Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(f.String() + "x")
		case reflect.Bool:
			f.SetBool(!f.Bool())
		case reflect.Int, reflect.Int64:
			f.SetInt(f.Int() + 100)
		case reflect.Map:
			other.Headers["A"] = []string{"2"}
		case reflect.Slice:
			other.Command = append(other.Command, "d")
		default:
			t.Fatalf("field %s has kind %s; teach this test to change it", typ.Field(i).Name, f.Kind())
		}
		if base.Equal(other) || other.Equal(base) {
			t.Errorf("checks that differ in %s are equal", typ.Field(i).Name)
		}
	}
	if !(registry.Check{Headers: map[string][]string{}}).Equal(registry.Check{}) {
		t.Error("an empty header map differs from none (a stored record drops it)")
	}
}
