package registry_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"disco/registry"
)

func intp(v int) *int { return &v }

func dur(d time.Duration) registry.Duration { return registry.Duration(d) }

// good is a valid registration the table cases start from.
func good() registry.Registration {
	return registry.Registration{Address: "10.0.0.1", Port: 80}
}

func with(mod func(r *registry.Registration)) registry.Registration {
	r := good()
	mod(&r)
	return r
}

func withCheck(c registry.Check) registry.Registration {
	return with(func(r *registry.Registration) { r.Checks = []registry.Check{c} })
}

func TestNewInstanceRejects(t *testing.T) {
	long := strings.Repeat("a", 64)
	tags := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "t" + strings.Repeat("x", i)
		}
		return out
	}
	meta := func(n int) map[string]string {
		out := make(map[string]string, n)
		for i := range n {
			out[fmt.Sprintf("k%d", i)] = "v"
		}
		return out
	}
	checks := func(n int) []registry.Check {
		out := make([]registry.Check, n)
		for i := range out {
			out[i] = registry.Check{Type: registry.CheckTTL, TTL: dur(time.Minute)}
		}
		return out
	}
	tests := []struct {
		name        string
		service, id string
		reg         registry.Registration
		want        string // the whole error text; joined errors one per line
	}{
		// Names.
		{"empty service", "", "a1", good(), `invalid: service name is empty`},
		{"long service", long, "a1", good(), `invalid: service name "` + long + `" is 64 characters, at most 63 allowed`},
		{"service with underscore", "web_api", "a1", good(), `invalid: service name "web_api" must be lower-case letters, digits and inner hyphens (one DNS label)`},
		{"service with leading hyphen", "-web", "a1", good(), `invalid: service name "-web" must be lower-case letters, digits and inner hyphens (one DNS label)`},
		{"service with trailing hyphen", "web-", "a1", good(), `invalid: service name "web-" must be lower-case letters, digits and inner hyphens (one DNS label)`},
		{"service with a dot", "web.api", "a1", good(), `invalid: service name "web.api" must be lower-case letters, digits and inner hyphens (one DNS label)`},
		{"service not ASCII", "wéb", "a1", good(), `invalid: service name "wéb" must be lower-case letters, digits and inner hyphens (one DNS label)`},
		{"empty id", "web", "", good(), `invalid: instance id is empty`},
		{"id with slash", "web", "a/1", good(), `invalid: instance id "a/1" must be lower-case letters, digits and inner hyphens (one DNS label)`},
		{"long id", "web", long, good(), `invalid: instance id "` + long + `" is 64 characters, at most 63 allowed`},

		// Address.
		{"no address", "web", "a1", with(func(r *registry.Registration) { r.Address = "" }), `invalid: address is required (an IPv4 or IPv6 literal)`},
		{"host name", "web", "a1", with(func(r *registry.Registration) { r.Address = "db.example.com" }), `invalid: address "db.example.com" is not an IPv4 or IPv6 literal`},
		{"address with port", "web", "a1", with(func(r *registry.Registration) { r.Address = "10.0.0.1:80" }), `invalid: address "10.0.0.1:80" is not an IPv4 or IPv6 literal`},
		{"address out of range", "web", "a1", with(func(r *registry.Registration) { r.Address = "10.0.0.256" }), `invalid: address "10.0.0.256" is not an IPv4 or IPv6 literal`},
		{"address with zone", "web", "a1", with(func(r *registry.Registration) { r.Address = "fe80::1%eth0" }), `invalid: address "fe80::1%eth0" has a zone; give a plain IP address`},
		{"unspecified IPv4", "web", "a1", with(func(r *registry.Registration) { r.Address = "0.0.0.0" }), `invalid: address "0.0.0.0" is unspecified; give the instance's reachable address`},
		{"unspecified IPv6", "web", "a1", with(func(r *registry.Registration) { r.Address = "::" }), `invalid: address "::" is unspecified; give the instance's reachable address`},
		{"unspecified mapped", "web", "a1", with(func(r *registry.Registration) { r.Address = "::ffff:0.0.0.0" }), `invalid: address "::ffff:0.0.0.0" is unspecified; give the instance's reachable address`},

		// Numbers.
		{"port 0", "web", "a1", with(func(r *registry.Registration) { r.Port = 0 }), `invalid: port 0 is out of range 1-65535`},
		{"port negative", "web", "a1", with(func(r *registry.Registration) { r.Port = -1 }), `invalid: port -1 is out of range 1-65535`},
		{"port 65536", "web", "a1", with(func(r *registry.Registration) { r.Port = 65536 }), `invalid: port 65536 is out of range 1-65535`},
		{"weight negative", "web", "a1", with(func(r *registry.Registration) { r.Weight = intp(-1) }), `invalid: weight -1 is out of range 0-65535`},
		{"weight 65536", "web", "a1", with(func(r *registry.Registration) { r.Weight = intp(65536) }), `invalid: weight 65536 is out of range 0-65535`},
		{"priority negative", "web", "a1", with(func(r *registry.Registration) { r.Priority = intp(-1) }), `invalid: priority -1 is out of range 0-65535`},
		{"priority 65536", "web", "a1", with(func(r *registry.Registration) { r.Priority = intp(65536) }), `invalid: priority 65536 is out of range 0-65535`},

		// Tags.
		{"too many tags", "web", "a1", with(func(r *registry.Registration) { r.Tags = tags(33) }), `invalid: 33 tags given, at most 32 allowed`},
		{"bad tag", "web", "a1", with(func(r *registry.Registration) { r.Tags = []string{"v2", "canary_1"} }), `invalid: tag "canary_1" must be lower-case letters, digits and inner hyphens (one DNS label)`},
		{"empty tag", "web", "a1", with(func(r *registry.Registration) { r.Tags = []string{""} }), `invalid: tag is empty`},
		{"long tag", "web", "a1", with(func(r *registry.Registration) { r.Tags = []string{long} }), `invalid: tag "` + long + `" is 64 characters, at most 63 allowed`},

		// Meta.
		{"too much meta", "web", "a1", with(func(r *registry.Registration) { r.Meta = meta(65) }), `invalid: 65 meta keys given, at most 64 allowed`},
		{"empty meta key", "web", "a1", with(func(r *registry.Registration) { r.Meta = map[string]string{"": "x"} }), `invalid: meta key "" must be 1-63 characters`},
		{"long meta key", "web", "a1", with(func(r *registry.Registration) { r.Meta = map[string]string{long: "x"} }), `invalid: meta key "` + long + `" must be 1-63 characters`},
		{"meta key with space", "web", "a1", with(func(r *registry.Registration) { r.Meta = map[string]string{"build id": "x"} }), `invalid: meta key "build id" may hold only letters, digits, '-', '_' and '.'`},
		{"meta key with equals", "web", "a1", with(func(r *registry.Registration) { r.Meta = map[string]string{"a=b": "x"} }), `invalid: meta key "a=b" may hold only letters, digits, '-', '_' and '.'`},
		{"meta too long", "web", "a1", with(func(r *registry.Registration) { r.Meta = map[string]string{"k": strings.Repeat("v", 254)} }), `invalid: meta "k": key=value is 256 bytes, at most 255 allowed`},

		// Checks.
		{"too many checks", "web", "a1", with(func(r *registry.Registration) { r.Checks = checks(9) }), `invalid: 9 checks given, at most 8 allowed`},
		{"check without type", "web", "a1", withCheck(registry.Check{URL: "http://10.0.0.1/"}), `check 1: invalid: check type is required (http, tcp or ttl)`},
		{"unknown check type", "web", "a1", withCheck(registry.Check{Type: "icmp"}), `check 1: invalid: unknown check type "icmp" (want http, tcp or ttl)`},
		{"http without url", "web", "a1", withCheck(registry.Check{Type: registry.CheckHTTP}), `check 1: invalid: http check: url is required`},
		{"http with ftp url", "web", "a1", withCheck(registry.Check{Type: registry.CheckHTTP, URL: "ftp://10.0.0.1/"}), `check 1: invalid: http check: url "ftp://10.0.0.1/" must be an absolute http:// or https:// URL`},
		{"http with relative url", "web", "a1", withCheck(registry.Check{Type: registry.CheckHTTP, URL: "/health"}), `check 1: invalid: http check: url "/health" must be an absolute http:// or https:// URL`},
		{"http with unparsable url", "web", "a1", withCheck(registry.Check{Type: registry.CheckHTTP, URL: "http://[::1/"}), `check 1: invalid: http check: url "http://[::1/" must be an absolute http:// or https:// URL`},
		{"http with address", "web", "a1", withCheck(registry.Check{Type: registry.CheckHTTP, URL: "http://10.0.0.1/", Address: "10.0.0.1:80"}), `check 1: invalid: http check: only url applies, not address or ttl`},
		{"http with ttl", "web", "a1", withCheck(registry.Check{Type: registry.CheckHTTP, URL: "http://10.0.0.1/", TTL: dur(time.Minute)}), `check 1: invalid: http check: only url applies, not address or ttl`},
		{"tcp without address", "web", "a1", withCheck(registry.Check{Type: registry.CheckTCP}), `check 1: invalid: tcp check: address is required (host:port)`},
		{"tcp without port", "web", "a1", withCheck(registry.Check{Type: registry.CheckTCP, Address: "10.0.0.1"}), `check 1: invalid: tcp check: address "10.0.0.1" must be host:port`},
		{"tcp without host", "web", "a1", withCheck(registry.Check{Type: registry.CheckTCP, Address: ":80"}), `check 1: invalid: tcp check: address ":80" must be host:port`},
		{"tcp port 0", "web", "a1", withCheck(registry.Check{Type: registry.CheckTCP, Address: "10.0.0.1:0"}), `check 1: invalid: tcp check: address "10.0.0.1:0": port must be 1-65535`},
		{"tcp named port", "web", "a1", withCheck(registry.Check{Type: registry.CheckTCP, Address: "10.0.0.1:http"}), `check 1: invalid: tcp check: address "10.0.0.1:http": port must be 1-65535`},
		{"tcp with url", "web", "a1", withCheck(registry.Check{Type: registry.CheckTCP, Address: "10.0.0.1:80", URL: "http://10.0.0.1/"}), `check 1: invalid: tcp check: only address applies, not url or ttl`},
		{"ttl missing", "web", "a1", withCheck(registry.Check{Type: registry.CheckTTL}), `check 1: invalid: ttl check: ttl is required (e.g. "30s")`},
		{"ttl negative", "web", "a1", withCheck(registry.Check{Type: registry.CheckTTL, TTL: dur(-time.Second)}), `check 1: invalid: ttl check: ttl is required (e.g. "30s")`},
		{"ttl too short", "web", "a1", withCheck(registry.Check{Type: registry.CheckTTL, TTL: dur(50 * time.Millisecond)}), `check 1: invalid: ttl check: ttl 50ms is shorter than the minimum 100ms`},
		{"ttl with address", "web", "a1", withCheck(registry.Check{Type: registry.CheckTTL, TTL: dur(time.Minute), Address: "10.0.0.1:80"}), `check 1: invalid: ttl check: only ttl applies, not url or address`},
		{"negative interval", "web", "a1", withCheck(registry.Check{Type: registry.CheckTCP, Address: "10.0.0.1:80", Interval: dur(-time.Second)}), `check 1: invalid: tcp check: durations must not be negative`},
		{"negative deregister_after", "web", "a1", withCheck(registry.Check{Type: registry.CheckTCP, Address: "10.0.0.1:80", DeregisterAfter: dur(-time.Second)}), `check 1: invalid: tcp check: durations must not be negative`},
		{"interval too short", "web", "a1", withCheck(registry.Check{Type: registry.CheckTCP, Address: "10.0.0.1:80", Interval: dur(10 * time.Millisecond), Timeout: dur(time.Millisecond)}), `check 1: invalid: tcp check: interval 10ms is shorter than the minimum 100ms`},
		{"timeout equal to interval", "web", "a1", withCheck(registry.Check{Type: registry.CheckHTTP, URL: "http://10.0.0.1/", Interval: dur(2 * time.Second), Timeout: dur(2 * time.Second)}), `check 1: invalid: http check: timeout 2s must be shorter than interval 2s`},
		{"timeout over interval", "web", "a1", withCheck(registry.Check{Type: registry.CheckTCP, Address: "10.0.0.1:80", Timeout: dur(time.Minute)}), `check 1: invalid: tcp check: timeout 1m0s must be shorter than interval 10s`},
		{"rise negative", "web", "a1", withCheck(registry.Check{Type: registry.CheckTCP, Address: "10.0.0.1:80", Rise: -1}), `check 1: invalid: tcp check: rise -1 is out of range 1-100`},
		{"rise 101", "web", "a1", withCheck(registry.Check{Type: registry.CheckTCP, Address: "10.0.0.1:80", Rise: 101}), `check 1: invalid: tcp check: rise 101 is out of range 1-100`},
		{"fall 101", "web", "a1", withCheck(registry.Check{Type: registry.CheckTCP, Address: "10.0.0.1:80", Fall: 101}), `check 1: invalid: tcp check: fall 101 is out of range 1-100`},
		{"deregister_after under 1s", "web", "a1", withCheck(registry.Check{Type: registry.CheckTCP, Address: "10.0.0.1:80", DeregisterAfter: dur(500 * time.Millisecond)}), `check 1: invalid: tcp check: deregister_after 500ms is shorter than 1s`},
		{"second check bad", "web", "a1", with(func(r *registry.Registration) {
			r.Checks = []registry.Check{{Type: registry.CheckTTL, TTL: dur(time.Minute)}, {Type: registry.CheckTCP}}
		}), `check 2: invalid: tcp check: address is required (host:port)`},

		// Every problem is reported, in a fixed order.
		{"several problems", "Web_1", "", registry.Registration{Address: "nowhere", Port: 0, Tags: []string{"ok", "NOT_OK"}, Meta: map[string]string{"b c": "1", "a b": "2"}}, strings.Join([]string{
			`invalid: service name "web_1" must be lower-case letters, digits and inner hyphens (one DNS label)`,
			`invalid: instance id is empty`,
			`invalid: address "nowhere" is not an IPv4 or IPv6 literal`,
			`invalid: port 0 is out of range 1-65535`,
			`invalid: tag "not_ok" must be lower-case letters, digits and inner hyphens (one DNS label)`,
			`invalid: meta key "a b" may hold only letters, digits, '-', '_' and '.'`,
			`invalid: meta key "b c" may hold only letters, digits, '-', '_' and '.'`,
		}, "\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := registry.NewInstance(tt.service, tt.id, tt.reg)
			if err == nil {
				t.Fatalf("accepted: %+v", in)
			}
			if in != nil {
				t.Errorf("returned an instance with the error: %+v", in)
			}
			if !errors.Is(err, registry.ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n%s\nwant\n%s", err, tt.want)
			}
		})
	}
}

func TestNewInstanceAccepts(t *testing.T) {
	tests := []struct {
		name        string
		service, id string
		reg         registry.Registration
		want        string // the instance as JSON
	}{
		{"defaults", "web", "web-1", good(),
			`{"service":"web","id":"web-1","address":"10.0.0.1","port":80,"tags":[],"meta":{},"weight":1,"priority":1,"checks":[],"registered":"0001-01-01T00:00:00Z","revision":0}`},
		{"names and tags folded, tags sorted and deduplicated", "WEB", "Web-1", with(func(r *registry.Registration) { r.Tags = []string{"V2", "blue", "v2"} }),
			`{"service":"web","id":"web-1","address":"10.0.0.1","port":80,"tags":["blue","v2"],"meta":{},"weight":1,"priority":1,"checks":[],"registered":"0001-01-01T00:00:00Z","revision":0}`},
		{"63-character names", strings.Repeat("a", 63), "0", good(),
			`{"service":"` + strings.Repeat("a", 63) + `","id":"0","address":"10.0.0.1","port":80,"tags":[],"meta":{},"weight":1,"priority":1,"checks":[],"registered":"0001-01-01T00:00:00Z","revision":0}`},
		{"mapped IPv4 unmapped", "web", "a1", with(func(r *registry.Registration) { r.Address = "::ffff:10.0.0.7" }),
			`{"service":"web","id":"a1","address":"10.0.0.7","port":80,"tags":[],"meta":{},"weight":1,"priority":1,"checks":[],"registered":"0001-01-01T00:00:00Z","revision":0}`},
		{"IPv6, extremes of port, weight and priority", "web", "a1", registry.Registration{Address: "2001:DB8::1", Port: 65535, Weight: intp(0), Priority: intp(65535)},
			`{"service":"web","id":"a1","address":"2001:db8::1","port":65535,"tags":[],"meta":{},"weight":0,"priority":65535,"checks":[],"registered":"0001-01-01T00:00:00Z","revision":0}`},
		{"meta at the size limit, keys keep their case", "web", "a1", with(func(r *registry.Registration) {
			r.Meta = map[string]string{"k": strings.Repeat("v", 253), "Build.ID_x-y": ""}
		}), `{"service":"web","id":"a1","address":"10.0.0.1","port":80,"tags":[],"meta":{"Build.ID_x-y":"","k":"` + strings.Repeat("v", 253) + `"},"weight":1,"priority":1,"checks":[],"registered":"0001-01-01T00:00:00Z","revision":0}`},
		{"check defaults", "web", "a1", with(func(r *registry.Registration) {
			r.Checks = []registry.Check{
				{Type: registry.CheckHTTP, URL: "https://10.0.0.1/health"},
				{Type: registry.CheckTCP, Address: "[2001:db8::1]:443", Interval: dur(time.Second), Timeout: dur(500 * time.Millisecond), Rise: 2, Fall: 5, DeregisterAfter: dur(time.Minute)},
				{Type: registry.CheckTTL, TTL: dur(100 * time.Millisecond), Timeout: dur(time.Hour)},
			}
		}), `{"service":"web","id":"a1","address":"10.0.0.1","port":80,"tags":[],"meta":{},"weight":1,"priority":1,"checks":[` +
			`{"type":"http","url":"https://10.0.0.1/health","interval":"10s","timeout":"2s","rise":1,"fall":3},` +
			`{"type":"tcp","address":"[2001:db8::1]:443","interval":"1s","timeout":"500ms","rise":2,"fall":5,"deregister_after":"1m0s"},` +
			`{"type":"ttl","ttl":"100ms","interval":"10s","timeout":"1h0m0s","rise":1,"fall":3}` +
			`],"registered":"0001-01-01T00:00:00Z","revision":0}`},
		{"default timeout: 2s, or half a short interval", "web", "a1", with(func(r *registry.Registration) {
			r.Checks = []registry.Check{
				{Type: registry.CheckTCP, Address: "10.0.0.1:80", Interval: dur(2 * time.Second)},
				{Type: registry.CheckTCP, Address: "10.0.0.1:80", Interval: dur(4 * time.Second)},
				{Type: registry.CheckTCP, Address: "10.0.0.1:80", Interval: dur(5 * time.Second)},
				{Type: registry.CheckTCP, Address: "10.0.0.1:80", Interval: dur(100 * time.Millisecond)},
			}
		}), `{"service":"web","id":"a1","address":"10.0.0.1","port":80,"tags":[],"meta":{},"weight":1,"priority":1,"checks":[` +
			`{"type":"tcp","address":"10.0.0.1:80","interval":"2s","timeout":"1s","rise":1,"fall":3},` +
			`{"type":"tcp","address":"10.0.0.1:80","interval":"4s","timeout":"2s","rise":1,"fall":3},` +
			`{"type":"tcp","address":"10.0.0.1:80","interval":"5s","timeout":"2s","rise":1,"fall":3},` +
			`{"type":"tcp","address":"10.0.0.1:80","interval":"100ms","timeout":"50ms","rise":1,"fall":3}` +
			`],"registered":"0001-01-01T00:00:00Z","revision":0}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := registry.NewInstance(tt.service, tt.id, tt.reg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestSettingsValidate(t *testing.T) {
	tests := []struct {
		name string
		s    registry.Settings
		want string // "" for valid
	}{
		{"empty", registry.Settings{}, ""},
		{"ttl 0", registry.Settings{DNSTTL: intp(0)}, ""},
		{"ttl one day", registry.Settings{DNSTTL: intp(86400)}, ""},
		{"ttl negative", registry.Settings{DNSTTL: intp(-1)}, "invalid: dns_ttl -1 is out of range 0-86400 seconds"},
		{"ttl over a day", registry.Settings{DNSTTL: intp(86401)}, "invalid: dns_ttl 86401 is out of range 0-86400 seconds"},
		{"min healthy 100", registry.Settings{MinHealthyPercent: intp(100)}, ""},
		{"min healthy 101", registry.Settings{MinHealthyPercent: intp(101)}, "invalid: min_healthy_percent 101 is out of range 0-100"},
		{"min healthy negative", registry.Settings{MinHealthyPercent: intp(-5)}, "invalid: min_healthy_percent -5 is out of range 0-100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			var got string
			if err != nil {
				got = err.Error()
				if !errors.Is(err, registry.ErrInvalid) {
					t.Errorf("error does not wrap ErrInvalid: %v", err)
				}
			}
			if got != tt.want {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDurationJSON(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: `"10s"`, want: `"10s"`},
		{in: `"1500ms"`, want: `"1.5s"`},
		{in: `"1h"`, want: `"1h0m0s"`},
		{in: `10`, err: `duration must be a string such as "10s" or "500ms", got 10`},
		{in: `"ten seconds"`, err: `duration "ten seconds": want a string such as "10s" or "500ms"`},
		{in: `"10"`, err: `duration "10": want a string such as "10s" or "500ms"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var d registry.Duration
			err := json.Unmarshal([]byte(tt.in), &d)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("Unmarshal(%s) = %v, want error %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(d)
			if string(got) != tt.want {
				t.Errorf("round trip of %s gave %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}
