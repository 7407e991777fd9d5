package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestEndToEnd registers instances over the admin API and asks for them
// with miekg/dns over UDP and TCP, Go's resolver and dig: answers, tag
// filters, NXDOMAIN, REFUSED, changes visible to the next query,
// maintenance, truncation and several queries on one TCP connection.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	d := startDisco(t)
	for i, tag := range []string{"v1", "v1", "v2"} {
		d.register(t, "web", fmt.Sprintf("web-%d", i+1),
			fmt.Sprintf(`{"address":"10.0.0.%d","port":8080,"tags":["%s"],"meta":{"rev":"%d"}}`, i+1, tag, i+1))
	}
	d.register(t, "db", "db-1", `{"address":"fd00::5","port":5432}`)

	for _, transport := range []string{"udp", "tcp"} {
		t.Run("miekg/"+transport, func(t *testing.T) {
			m := d.query(t, transport, "web.service.disco.internal.", dns.TypeA, 0)
			if got, want := values(m), []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}; !slices.Equal(got, want) || !m.Authoritative {
				t.Errorf("A: %v aa=%v, want %v aa=true", got, m.Authoritative, want)
			}
			m = d.query(t, transport, "v2.web.service.disco.internal.", dns.TypeA, 1232)
			if got := values(m); !slices.Equal(got, []string{"10.0.0.3"}) {
				t.Errorf("tag filter: %v", got)
			}
			m = d.query(t, transport, "web-2.web.instance.disco.internal.", dns.TypeTXT, 0)
			if got := values(m); !slices.Equal(got, []string{"rev=2"}) {
				t.Errorf("instance TXT: %v", got)
			}
			m = d.query(t, transport, "db.service.disco.internal.", dns.TypeSRV, 0)
			if got := values(m); len(got) != 1 || len(m.Extra) != 1 {
				t.Errorf("db SRV %v with %d additional, want one and its AAAA", got, len(m.Extra))
			}
			m = d.query(t, transport, "nope.service.disco.internal.", dns.TypeA, 0)
			if m.Rcode != dns.RcodeNameError || len(m.Ns) != 1 {
				t.Errorf("missing service: %s with %d authority records, want NXDOMAIN and the SOA", dns.RcodeToString[m.Rcode], len(m.Ns))
			}
			m = d.query(t, transport, "example.com.", dns.TypeA, 0)
			if m.Rcode != dns.RcodeRefused {
				t.Errorf("outside the domain: %s, want REFUSED", dns.RcodeToString[m.Rcode])
			}
		})
	}

	t.Run("go resolver", func(t *testing.T) {
		r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, network, d.dnsAddr)
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hosts, err := r.LookupHost(ctx, "web.service.disco.internal")
		slices.Sort(hosts)
		if err != nil || !slices.Equal(hosts, []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}) {
			t.Errorf("LookupHost: %v %v", hosts, err)
		}
		cname, srvs, err := r.LookupSRV(ctx, "web", "tcp", "service.disco.internal")
		if err != nil || len(srvs) != 3 || cname != "_web._tcp.service.disco.internal." {
			t.Fatalf("LookupSRV: %q %v %v", cname, srvs, err)
		}
		addrs, err := r.LookupHost(ctx, srvs[0].Target)
		if err != nil || len(addrs) != 1 || !strings.HasPrefix(addrs[0], "10.0.0.") {
			t.Errorf("SRV target %s resolves to %v %v", srvs[0].Target, addrs, err)
		}
		if _, err := r.LookupHost(ctx, "nope.service.disco.internal"); !isNotFound(err) {
			t.Errorf("missing name: %v, want not found", err)
		}
		v6, err := r.LookupIP(ctx, "ip6", "db.service.disco.internal")
		if err != nil || len(v6) != 1 || v6[0].String() != "fd00::5" {
			t.Errorf("LookupIP ip6: %v %v", v6, err)
		}
	})

	t.Run("dig", func(t *testing.T) {
		if _, err := exec.LookPath("dig"); err != nil {
			t.Skip("dig not installed (Debian package dnsutils)")
		}
		host, port, _ := net.SplitHostPort(d.dnsAddr)
		out, err := exec.Command("dig", "@"+host, "-p", port, "+norecurse", "+time=2", "+tries=1",
			"_web._v1.service.disco.internal", "SRV").CombinedOutput()
		if err != nil {
			t.Fatalf("dig: %v\n%s", err, out)
		}
		text := string(out)
		for _, want := range []string{"status: NOERROR", "flags: qr aa", "0a000001.addr.disco.internal.", "0a000002.addr.disco.internal.", "ADDITIONAL SECTION"} {
			if !strings.Contains(text, want) {
				t.Errorf("dig output lacks %q:\n%s", want, text)
			}
		}
		if strings.Contains(text, "0a000003") {
			t.Errorf("tag v1 answer includes the v2 instance:\n%s", text)
		}
	})

	t.Run("changes visible to the next query", func(t *testing.T) {
		for i := range 20 {
			id := fmt.Sprintf("fresh-%d", i)
			d.register(t, "fresh", id, fmt.Sprintf(`{"address":"10.5.0.%d","port":80}`, i+1))
			m := d.query(t, "udp", id+".fresh.instance.disco.internal.", dns.TypeA, 0)
			if got := values(m); len(got) != 1 {
				t.Fatalf("just registered %s: answer %v", id, got)
			}
			if code, b := d.api(t, "DELETE", "/v1/services/fresh/instances/"+id, ""); code/100 != 2 {
				t.Fatalf("deregister: %d %s", code, b)
			}
			if m := d.query(t, "udp", id+".fresh.instance.disco.internal.", dns.TypeA, 0); len(m.Answer) != 0 {
				t.Fatalf("just deregistered %s still answered: %v", id, m.Answer)
			}
		}
	})

	t.Run("maintenance drains", func(t *testing.T) {
		if code, b := d.api(t, "PUT", "/v1/services/web/instances/web-1/maintenance", `{"enabled":true,"reason":"deploy"}`); code/100 != 2 {
			t.Fatalf("maintenance: %d %s", code, b)
		}
		m := d.query(t, "udp", "web.service.disco.internal.", dns.TypeA, 0)
		if got := values(m); !slices.Equal(got, []string{"10.0.0.2", "10.0.0.3"}) {
			t.Errorf("after draining web-1: %v", got)
		}
		d.api(t, "PUT", "/v1/services/web/instances/web-1/maintenance", `{"enabled":false}`)
	})

	t.Run("truncation and tcp", func(t *testing.T) {
		for i := range 60 {
			d.register(t, "big", fmt.Sprintf("big-%d", i), fmt.Sprintf(`{"address":"10.1.0.%d","port":9000}`, i+1))
		}
		udp := d.query(t, "udp", "big.service.disco.internal.", dns.TypeSRV, 1232)
		if !udp.Truncated || len(udp.Answer) >= 60 {
			t.Errorf("UDP: TC=%v with %d answers, want TC and fewer", udp.Truncated, len(udp.Answer))
		}
		tcp := d.query(t, "tcp", "big.service.disco.internal.", dns.TypeSRV, 1232)
		if tcp.Truncated || len(tcp.Answer) != 60 {
			t.Errorf("TCP: TC=%v with %d answers, want all 60", tcp.Truncated, len(tcp.Answer))
		}
	})

	t.Run("several queries on one tcp connection", func(t *testing.T) {
		conn, err := dns.Dial("tcp", d.dnsAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for i := range 5 {
			m := new(dns.Msg)
			m.SetQuestion("web.service.disco.internal.", dns.TypeA)
			if err := conn.WriteMsg(m); err != nil {
				t.Fatal(err)
			}
			r, err := conn.ReadMsg()
			if err != nil || r.Id != m.Id || len(r.Answer) == 0 {
				t.Fatalf("query %d on the same connection: %v %v", i, r, err)
			}
		}
	})
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return err != nil && errors.As(err, &de) && de.IsNotFound
}

// TestRestartKeepsRegistry checks what a restart keeps: every instance and
// its maintenance; health is re-derived (instances with checks start
// critical again, those without are served at once).
func TestRestartKeepsRegistry(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	d := startDisco(t, "--data-dir", dataDir)
	d.register(t, "web", "web-1", `{"address":"10.0.0.1","port":80}`)
	d.register(t, "web", "web-2", `{"address":"10.0.0.2","port":80}`)
	d.register(t, "web", "web-3", `{"address":"10.0.0.3","port":80,"checks":[{"type":"ttl","ttl":"1m"}]}`)
	if code, b := d.api(t, "PUT", "/v1/services/web/instances/web-3/heartbeat", ""); code/100 != 2 {
		t.Fatalf("heartbeat: %d %s", code, b)
	}
	if code, b := d.api(t, "PUT", "/v1/services/web/instances/web-2/maintenance", `{"enabled":true,"reason":"disk"}`); code/100 != 2 {
		t.Fatalf("maintenance: %d %s", code, b)
	}
	if code, b := d.api(t, "PUT", "/v1/services/web", `{"dns_ttl":42}`); code/100 != 2 {
		t.Fatalf("settings: %d %s", code, b)
	}
	if got := values(d.query(t, "udp", "web.service.disco.internal.", dns.TypeA, 0)); !slices.Equal(got, []string{"10.0.0.1", "10.0.0.3"}) {
		t.Fatalf("before restart: %v", got)
	}
	d.terminate(t)

	d = startDisco(t, "--data-dir", dataDir)
	m := d.query(t, "udp", "web.service.disco.internal.", dns.TypeA, 0)
	if got := values(m); !slices.Equal(got, []string{"10.0.0.1"}) {
		t.Errorf("after restart: %v, want web-1 only (web-2 drained, web-3 critical until its next heartbeat)", got)
	}
	if len(m.Answer) > 0 && m.Answer[0].Header().Ttl != 42 {
		t.Errorf("TTL %d after restart, want the service's dns_ttl 42", m.Answer[0].Header().Ttl)
	}
	code, body := d.api(t, "GET", "/v1/services/web", "")
	if code != 200 || !strings.Contains(body, `"reason":"disk"`) || strings.Count(body, `"status":"critical"`) != 1 {
		t.Errorf("service after restart: %d %s", code, body)
	}
}
