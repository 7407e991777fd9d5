package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	t.Parallel()
	zonesDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(zonesDir, "example.com.zone"), []byte(faceZone), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDisco(t, "--zones-dir", zonesDir)
	d.register(t, "web", "web-1", `{"address":"10.0.0.1","port":8080,"tags":["v2"]}`)
	d.register(t, "web", "web-2", `{"address":"10.0.0.2","port":8080,"checks":[{"type":"ttl","ttl":"1m"}]}`)
	d.register(t, "web", "web-3", `{"address":"10.0.0.3","port":8080}`)
	if code, body := d.api(t, "PUT", "/v1/services/web/instances/web-3/maintenance", `{"enabled":true,"reason":"upgrade"}`); code != 200 {
		t.Fatalf("maintenance: %d %s", code, body)
	}
	cl := admin.NewClient(d.admin, testToken, nil)
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
		m := d.query(t, "udp", q.name, q.qtype, 1232)
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

	r := runDisco(t, nil, "explain", "web.service.disco.internal", "--admin", d.admin, "--token", testToken)
	if r.code != 0 {
		t.Fatalf("disco explain: %v", r)
	}
	out := r.stdout
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
	r = runDisco(t, nil, "explain", "x.example.org", "AAAA", "--json", "--admin", d.admin, "--token", testToken)
	var je admin.Explanation
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &je) != nil || je.Rcode != "REFUSED" || je.Type != "AAAA" {
		t.Errorf("explain --json: %v", r)
	}
	for _, args := range [][]string{{"explain"}, {"explain", "a", "A", "extra"}, {"explain", "web", "BOGUS"}} {
		if r := runDisco(t, nil, append(args, "--admin", d.admin, "--token", testToken)...); !r.oneLineErr() {
			t.Errorf("disco %s: %v, want one error line", strings.Join(args, " "), r)
		}
	}
}

// TestWatchCommand runs disco watch against a running server and checks
// that it prints changes as they happen.
func TestWatchCommand(t *testing.T) {
	t.Parallel()
	d := startDisco(t)
	d.register(t, "web", "web-1", `{"address":"10.0.0.1","port":8080}`)
	for _, tc := range []struct {
		args  []string
		first string          // printed at the start
		do    func()          // the change
		want  []string        // printed after it
		more  func() []string // a second change, and what it prints
	}{
		{args: []string{"watch", "web"}, first: "web has 1 instances",
			do:   func() { d.register(t, "web", "web-5", `{"address":"10.0.0.5","port":8080,"tags":["v2"]}`) },
			want: []string{"+ web-5 10.0.0.5:8080 passing [v2]: no checks"},
			more: func() []string {
				d.api(t, "PUT", "/v1/services/web/instances/web-5/maintenance", `{"enabled":true,"reason":"swap"}`)
				d.api(t, "DELETE", "/v1/services/web/instances/web-1", "")
				return []string{"~ web-5 10.0.0.5:8080 maintenance [v2]: drained: swap (checks: passing) (was passing)", "- web-1 removed"}
			}},
		{args: []string{"watch"}, first: "+ web 1 instances: 0 passing, 0 warning, 0 critical, 1 maintenance",
			do:   func() { d.register(t, "db", "db-1", `{"address":"10.0.0.7","port":5432}`) },
			want: []string{"+ db 1 instances: 1 passing, 0 warning, 0 critical, 0 maintenance"},
			more: func() []string {
				d.api(t, "DELETE", "/v1/services/db/instances/db-1", "")
				return []string{"- db removed"}
			}},
		{args: []string{"watch", "api"}, first: "api is not registered; waiting for it",
			do:   func() { d.register(t, "api", "api-1", `{"address":"10.0.0.8","port":443}`) },
			want: []string{"+ api-1 10.0.0.8:443 passing: no checks"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			w := startProc(t, discoBin, append(tc.args, "--admin", d.admin, "--token", testToken)...)
			waitFor := func(words ...string) {
				t.Helper()
				eventually(t, "watch prints "+strings.Join(words, ", "), 5*time.Second, func() bool {
					out := w.out.String()
					for _, word := range words {
						if !strings.Contains(out, word) {
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
			w.terminate(t)
		})
	}
	if r := runDisco(t, nil, "watch", "web", "--admin", d.admin, "--token", "wrong"); !r.oneLineErr() || !strings.Contains(r.stderr, "401") {
		t.Errorf("watch with a wrong token: %v, want a 401 error", r)
	}
}
