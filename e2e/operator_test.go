package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestVersion(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	out, err := exec.CommandContext(ctx, discoBin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("disco version: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`^disco \S+ \(revision \S+\)\n$`).Match(out) {
		t.Errorf("disco version printed %q, want \"disco VERSION (revision REV)\"", out)
	}
}

const exampleZone = `$ORIGIN example.com.
$TTL 60
@   IN SOA ns1 hostmaster 1 3600 600 86400 60
@   IN NS  ns1
ns1 IN A   192.0.2.53
www IN A   %s
`

// TestOperator drives the binary as an operator does: readiness, JSON
// logs, the query log, a zone reload on SIGHUP, metrics, and a graceful
// stop on SIGTERM.
func TestOperator(t *testing.T) {
	t.Parallel()
	zonesDir := t.TempDir()
	zoneFile := filepath.Join(zonesDir, "example.com.zone")
	writeZone := func(addr string) {
		t.Helper()
		// Write aside and rename, as editors and config management do, so
		// a reload never sees half a file.
		tmp := zoneFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(strings.Replace(exampleZone, "%s", addr, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, zoneFile); err != nil {
			t.Fatal(err)
		}
	}
	writeZone("192.0.2.1")

	// A TCP service for a health check to probe.
	ln := tcpTarget(t)

	d := startDisco(t, "--zones-dir", zonesDir, "--query-log")

	t.Run("readyz and healthz", func(t *testing.T) {
		for _, path := range []string{"/readyz", "/healthz"} {
			if code, body := d.api(t, http.MethodGet, path, ""); code != http.StatusOK {
				t.Errorf("GET %s: HTTP %d %s, want 200", path, code, body)
			}
		}
	})

	d.register(t, "web", "web-1", `{"address":"127.0.0.1","port":`+portOf(t, ln.Addr())+
		`,"checks":[{"type":"tcp","address":"`+ln.Addr().String()+`","interval":"1s","timeout":"500ms"}]}`)
	d.register(t, "api", "api-1", `{"address":"10.0.0.9","port":443}`)

	t.Run("query log", func(t *testing.T) {
		for range 3 {
			if m := exchange(t, d.dnsAddr, "udp", "nope.service.disco.internal", dns.TypeA, false); m.Rcode != dns.RcodeNameError {
				t.Fatalf("missing name: %s, want NXDOMAIN", dns.RcodeToString[m.Rcode])
			}
		}
		if m := exchange(t, d.dnsAddr, "tcp", "api.service.disco.internal", dns.TypeA, false); len(m.Answer) != 1 {
			t.Fatalf("api over tcp: %v", m.Answer)
		}
		for _, want := range []struct{ qname, rcode, transport string }{
			{"nope.service.disco.internal.", "NXDOMAIN", "udp"},
			{"api.service.disco.internal.", "NOERROR", "tcp"},
		} {
			d.waitLine(t, "the query log line for "+want.qname, func(l string) bool {
				var rec map[string]any
				if json.Unmarshal([]byte(l), &rec) != nil {
					return false
				}
				client, _ := rec["client"].(string)
				return rec["component"] == "query" && rec["msg"] == "query" && rec["level"] == "INFO" &&
					rec["qname"] == want.qname && rec["qtype"] == "A" && rec["rcode"] == want.rcode &&
					rec["transport"] == want.transport && strings.HasPrefix(client, "127.0.0.1:") && rec["duration"] != nil
			})
		}
	})

	t.Run("SIGHUP reloads zones", func(t *testing.T) {
		if got := values(exchange(t, d.dnsAddr, "udp", "www.example.com", dns.TypeA, false)); !slices.Equal(got, []string{"192.0.2.1"}) {
			t.Fatalf("www.example.com: %v, want 192.0.2.1", got)
		}
		writeZone("192.0.2.2")
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		d.waitLine(t, "the reload", func(l string) bool { return strings.Contains(l, "SIGHUP: reloading zones") })
		deadline := time.Now().Add(wait)
		for {
			got := values(exchange(t, d.dnsAddr, "udp", "www.example.com", dns.TypeA, false))
			if slices.Equal(got, []string{"192.0.2.2"}) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("www.example.com still %v %s after SIGHUP, want 192.0.2.2", got, wait)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		// The check's first probe runs within its interval; its instance
		// then passes.
		var text string
		deadline := time.Now().Add(wait)
		for {
			code, body := d.api(t, http.MethodGet, "/metrics", "")
			if code != http.StatusOK {
				t.Fatalf("GET /metrics: HTTP %d", code)
			}
			text = body
			if v, _ := metric(text, "disco_instances", `service="web"`, `status="passing"`); v == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("web-1 not passing after %s:\n%s", wait, grepLines(text, "disco_instances", "disco_health"))
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, c := range []struct {
			name   string
			labels []string
			min    float64
		}{
			{"disco_dns_queries_total", []string{`qtype="A"`, `rcode="NXDOMAIN"`, `transport="udp"`}, 3},
			{"disco_dns_queries_total", []string{`qtype="A"`, `rcode="NOERROR"`, `transport="tcp"`}, 1},
			{"disco_dns_response_duration_seconds_bucket", []string{`le="+Inf"`}, 5},
			{"disco_instances", []string{`service="api"`, `status="passing"`}, 1},
			{"disco_build_info", []string{`version="`, `revision="`, `goversion="go`}, 1},
			{"disco_health_checks_total", []string{`type="tcp"`, `result="passing"`}, 1},
			{"disco_store_commits_total", []string{`result="ok"`}, 1},
			{"disco_zone_reloads_total", []string{`result="ok"`}, 2},
		} {
			v, ok := metric(text, c.name, c.labels...)
			if !ok || v < c.min {
				t.Errorf("%s%v = %v (found %v), want at least %v\n%s", c.name, c.labels, v, ok, c.min, grepLines(text, c.name))
			}
		}
	})

	t.Run("SIGTERM stops gracefully", func(t *testing.T) {
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-d.done:
		case <-time.After(wait):
			t.Fatalf("disco still running %s after SIGTERM", wait)
		}
		if d.err != nil {
			t.Errorf("exit: %v, want status 0", d.err)
		}
		d.waitLine(t, `"disco stopped"`, func(l string) bool { return strings.Contains(l, `"msg":"disco stopped"`) })
	})

	t.Run("every log line is JSON with level and msg", func(t *testing.T) {
		lines, _ := d.out.snapshot()
		if len(lines) < 5 {
			t.Fatalf("only %d log lines", len(lines))
		}
		for _, l := range lines {
			var rec map[string]any
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Errorf("not JSON: %q: %v", l, err)
				continue
			}
			if _, ok := rec["level"].(string); !ok {
				t.Errorf("no level: %q", l)
			}
			if _, ok := rec["msg"].(string); !ok {
				t.Errorf("no msg: %q", l)
			}
		}
	})
}

// TestSIGTERMWhileBusy stops a server that is answering a stream of
// queries: it exits 0 and says so.
func TestSIGTERMWhileBusy(t *testing.T) {
	d := startDisco(t)
	d.register(t, "web", "web-1", `{"address":"10.0.0.1","port":80}`)
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		c := &dns.Client{Timeout: 200 * time.Millisecond}
		m := new(dns.Msg)
		m.SetQuestion("web.service.disco.internal.", dns.TypeA)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, _, _ = c.Exchange(m, d.dnsAddr) // errors are expected once it stops
		}
	}()
	defer func() { close(stop); <-sent }()
	if m := exchange(t, d.dnsAddr, "udp", "web.service.disco.internal", dns.TypeA, false); len(m.Answer) != 1 {
		t.Fatalf("web: %v", m.Answer)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(wait):
		t.Fatalf("disco still running %s after SIGTERM", wait)
	}
	if d.err != nil {
		t.Errorf("exit: %v, want status 0", d.err)
	}
	d.waitLine(t, `"disco stopped"`, func(l string) bool { return strings.Contains(l, `"msg":"disco stopped"`) })
}

func portOf(t *testing.T, a net.Addr) string {
	t.Helper()
	_, port, err := net.SplitHostPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// metric returns the value of the first sample of name in the Prometheus
// text exposition whose labels contain every one of labels.
func metric(text, name string, labels ...string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (len(rest) > 0 && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		matched := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				matched = false
				break
			}
		}
		if !matched {
			continue
		}
		fields := strings.Fields(rest)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			continue
		}
		return v, true
	}
	return 0, false
}

// grepLines returns the lines of text that start with one of prefixes.
func grepLines(text string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
