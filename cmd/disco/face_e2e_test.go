package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"disco/admin"
)

const faceZone = `$ORIGIN example.com.
$TTL 300
@    IN SOA ns1.example.com. hostmaster.example.com. 1 3600 600 86400 60
@    IN NS  ns1.example.com.
ns1  IN A   192.0.2.53
www  IN A   192.0.2.10
web  IN CNAME web.service.disco.internal.
`

// TestExplainEndToEnd asks the running server to explain questions over
// the API and the CLI, and checks each against a real DNS query.
func TestExplainEndToEnd(t *testing.T) {
	zonesDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(zonesDir, "example.com.zone"), []byte(faceZone), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, func(c *serveConfig) { c.ZonesDir = zonesDir })
	s.register(t, "web", "web-1", `{"address":"10.0.0.1","port":8080,"tags":["v2"]}`)
	s.register(t, "web", "web-2", `{"address":"10.0.0.2","port":8080,"checks":[{"type":"ttl","ttl":"1m"}]}`)
	s.register(t, "web", "web-3", `{"address":"10.0.0.3","port":8080}`)
	if code, body := s.api(t, "PUT", "/v1/services/web/instances/web-3/maintenance", `{"enabled":true,"reason":"upgrade"}`); code != 200 {
		t.Fatalf("maintenance: %d %s", code, body)
	}
	cl := admin.NewClient(s.admin, testToken, nil)
	for _, q := range []struct {
		name  string
		qtype uint16
		rcode string
	}{
		{"web.service.disco.internal.", dns.TypeA, "NOERROR"},
		{"_web._tcp.service.disco.internal.", dns.TypeSRV, "NOERROR"},
		{"v2.web.service.disco.internal.", dns.TypeA, "NOERROR"},
		{"nope.web.service.disco.internal.", dns.TypeA, "NXDOMAIN"},
		{"nope.service.disco.internal.", dns.TypeA, "NXDOMAIN"},
		{"web-2.web.instance.disco.internal.", dns.TypeA, "NOERROR"},
		{"0a000001.addr.disco.internal.", dns.TypeA, "NOERROR"},
		{"disco.internal.", dns.TypeSOA, "NOERROR"},
		{"www.example.com.", dns.TypeA, "NOERROR"},
		{"web.example.com.", dns.TypeA, "NOERROR"},
		{"elsewhere.example.org.", dns.TypeA, "REFUSED"},
	} {
		e, err := cl.Explain(context.Background(), q.name, dns.TypeToString[q.qtype])
		if err != nil {
			t.Fatalf("explain %s: %v", q.name, err)
		}
		m := s.query(t, "udp", q.name, q.qtype, 1232)
		var got []string
		for _, rr := range m.Answer {
			got = append(got, rr.String())
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(e.Answer))
		if e.Rcode != q.rcode || dns.RcodeToString[m.Rcode] != e.Rcode || !slices.Equal(got, want) {
			t.Errorf("%s %s: explain says %s %q, DNS says %s %q", q.name, dns.TypeToString[q.qtype], e.Rcode, want, dns.RcodeToString[m.Rcode], got)
		}
		if e.Reason == "" {
			t.Errorf("%s: no reason", q.name)
		}
	}

	e, err := cl.Explain(context.Background(), "elsewhere.example.org", "A")
	if err != nil || !strings.Contains(e.Reason, "outside every zone this server answers for: disco.internal. (the discovery domain), example.com.") {
		t.Errorf("outside: %+v %v", e, err)
	}
	e, err = cl.Explain(context.Background(), "web.service.disco.internal", "A")
	if err != nil || e.Service == nil || e.TTL == nil || *e.TTL != 5 || !strings.Contains(e.TTLSource, "--dns-ttl") {
		t.Fatalf("web: %+v %v", e, err)
	}
	for _, in := range e.Service.Instances {
		want := map[string]string{"web-1": "passing since", "web-2": "critical since", "web-3": "upgrade"}[in.ID]
		if in.Served != (in.ID == "web-1") || !strings.Contains(in.Reason, want) {
			t.Errorf("%s: served=%v reason %q, want %q", in.ID, in.Served, in.Reason, want)
		}
	}

	out, err := run(t, "explain", "web.service.disco.internal", "--admin", s.admin, "--token", testToken)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"web.service.disco.internal. A: NOERROR (zone disco.internal., authoritative)",
		"web.service.disco.internal. 5 IN A 10.0.0.1",
		"ttl: 5s, from the server's --dns-ttl",
		"policy: passing instances; min_healthy_percent 0 (the server's --min-healthy-percent); not failing open",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("disco explain does not say %q:\n%s", want, out)
		}
	}
	for _, row := range [][]string{{"web-1", "served", "passing since"}, {"web-2", "left out", "critical since"}, {"web-3", "left out", "upgrade"}} {
		if !slices.ContainsFunc(strings.Split(out, "\n"), func(l string) bool {
			return strings.Contains(l, row[0]) && strings.Contains(l, row[1]) && strings.Contains(l, row[2])
		}) {
			t.Errorf("disco explain has no line with %q:\n%s", row, out)
		}
	}
	out, err = run(t, "explain", "x.example.org", "AAAA", "--json", "--admin", s.admin, "--token", testToken)
	var je admin.Explanation
	if err != nil || json.Unmarshal([]byte(out), &je) != nil || je.Rcode != "REFUSED" || je.Type != "AAAA" {
		t.Errorf("explain --json: %v %s", err, out)
	}
	for _, args := range [][]string{{"explain"}, {"explain", "a", "A", "extra"}, {"explain", "web", "BOGUS"}} {
		if _, err := run(t, append(args, "--admin", s.admin, "--token", testToken)...); err == nil {
			t.Errorf("disco %s: no error", strings.Join(args, " "))
		}
	}
}

// syncBuffer is an io.Writer safe for a command writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWatchCommand runs disco watch against a running server and checks
// that it prints changes as they happen.
func TestWatchCommand(t *testing.T) {
	s := startServer(t, nil)
	s.register(t, "web", "web-1", `{"address":"10.0.0.1","port":8080}`)
	for _, tc := range []struct {
		args  []string
		first string          // printed at the start
		do    func()          // the change
		want  []string        // printed after it
		more  func() []string // a second change, and what it prints
	}{
		{args: []string{"watch", "web"}, first: "web has 1 instances",
			do:   func() { s.register(t, "web", "web-5", `{"address":"10.0.0.5","port":8080,"tags":["v2"]}`) },
			want: []string{"+ web-5 10.0.0.5:8080 passing [v2]: no checks"},
			more: func() []string {
				s.api(t, "PUT", "/v1/services/web/instances/web-5/maintenance", `{"enabled":true,"reason":"swap"}`)
				s.api(t, "DELETE", "/v1/services/web/instances/web-1", "")
				return []string{"~ web-5 10.0.0.5:8080 maintenance [v2]: drained: swap (checks: passing) (was passing)", "- web-1 removed"}
			}},
		{args: []string{"watch"}, first: "+ web 1 instances: 0 passing, 0 warning, 0 critical, 1 maintenance",
			do:   func() { s.register(t, "db", "db-1", `{"address":"10.0.0.7","port":5432}`) },
			want: []string{"+ db 1 instances: 1 passing, 0 warning, 0 critical, 0 maintenance"},
			more: func() []string {
				s.api(t, "DELETE", "/v1/services/db/instances/db-1", "")
				return []string{"- db removed"}
			}},
		{args: []string{"watch", "api"}, first: "api is not registered; waiting for it",
			do:   func() { s.register(t, "api", "api-1", `{"address":"10.0.0.8","port":443}`) },
			want: []string{"+ api-1 10.0.0.8:443 passing: no checks"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out := &syncBuffer{}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- runApp(ctx, newApp(out, out), append([]string{"disco"}, append(tc.args, "--admin", s.admin, "--token", testToken)...))
			}()
			waitFor := func(words ...string) {
				t.Helper()
				eventually(t, "watch prints "+strings.Join(words, ", "), 5*time.Second, func() bool {
					for _, w := range words {
						if !strings.Contains(out.String(), w) {
							return false
						}
					}
					return true
				})
			}
			waitFor(tc.first)
			tc.do()
			waitFor(tc.want...)
			if tc.more != nil {
				waitFor(tc.more()...)
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("watch ended with %v", err)
			}
		})
	}
	if _, err := run(t, "watch", "web", "--admin", s.admin, "--token", "wrong"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("watch with a wrong token: %v, want a 401 error", err)
	}
}
