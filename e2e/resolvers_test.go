package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// rootDS is the DS record of the root zone's key-signing key (KSK-2017),
// the trust anchor a validating resolver starts from. The resolvers below
// never reach the root; the anchor only makes them validate, as deployed
// resolvers do, so that the guide's DNSSEC exemptions are put to the test.
const rootDS = ". DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"

// resolver runs one caching resolver configured with a snippet of
// docs/forwarding.md.
type resolver struct {
	name string
	// docAddr is how the snippet names disco's default address
	// (127.0.0.1, port 8053); the test replaces the port.
	docAddr string
	// start runs the resolver on 127.0.0.1:port with the snippet (disco's
	// port already in it) and returns the process.
	start func(t *testing.T, bin string, port int, snippet string) *proc
}

var resolvers = []resolver{
	{name: "unbound", docAddr: "127.0.0.1@8053", start: startUnbound},
	{name: "dnsmasq", docAddr: "127.0.0.1#8053", start: startDnsmasq},
}

// startUnbound runs Unbound in the foreground as a validating resolver
// that strips private addresses (private-address), the two defaults the
// guide's snippet must overcome, followed by the snippet.
func startUnbound(t *testing.T, bin string, port int, snippet string) *proc {
	dir := t.TempDir()
	conf := fmt.Sprintf(`server:
    interface: 127.0.0.1@%d
    do-daemonize: no
    username: ""
    chroot: ""
    directory: %q
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 1
    num-threads: 1
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    module-config: "validator iterator"
    trust-anchor: %q
    private-address: 10.0.0.0/8
    private-address: 192.168.0.0/16
remote-control:
    control-enable: no

`, port, dir, rootDS) + snippet
	path := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return startProc(t, bin, "-d", "-c", path)
}

// startDnsmasq runs dnsmasq in the foreground with DNSSEC validation and
// DNS rebinding protection on, no upstream but what the snippet adds.
func startDnsmasq(t *testing.T, bin string, port int, snippet string) *proc {
	dir := t.TempDir()
	path := filepath.Join(dir, "dnsmasq.conf")
	if err := os.WriteFile(path, []byte(snippet), 0o644); err != nil {
		t.Fatal(err)
	}
	// dnsmasq wants the anchor as class,domain,tag,algorithm,type,digest.
	f := strings.Fields(rootDS)
	anchor := strings.Join([]string{f[0], f[2], f[3], f[4], f[5]}, ",")
	return startProc(t, bin, "--keep-in-foreground", "--conf-file="+path, "--no-resolv", "--no-hosts",
		"--port="+strconv.Itoa(port), "--listen-address=127.0.0.1", "--bind-interfaces",
		"--pid-file="+filepath.Join(dir, "dnsmasq.pid"), "--log-facility=-", "--log-queries",
		"--stop-dns-rebind", "--dnssec", "--trust-anchor="+anchor)
}

// TestResolvers puts Unbound and dnsmasq, configured with the snippets of
// docs/forwarding.md, in front of a real disco and resolves through them.
func TestResolvers(t *testing.T) {
	t.Parallel()
	d := startDisco(t)
	d.register(t, "web", "web-1", `{"address":"10.0.0.1","port":8080}`)
	d.register(t, "web", "web-2", `{"address":"192.168.1.2","port":8081}`)
	for i := range 60 {
		d.register(t, "big", fmt.Sprintf("big-%d", i), fmt.Sprintf(`{"address":"10.1.0.%d","port":9000}`, i+1))
	}
	_, discoPort, err := net.SplitHostPort(d.dnsAddr)
	if err != nil {
		t.Fatal(err)
	}

	for _, r := range resolvers {
		t.Run(r.name, func(t *testing.T) {
			bin, ok := lookBin(r.name)
			if !ok {
				t.Skipf("%s is not installed (Debian: apt-get install unbound dnsmasq-base)", r.name)
			}
			snippet := docSnippet(t, r.name)
			if !strings.Contains(snippet, r.docAddr) {
				t.Fatalf("the %s snippet of %s does not send to %s, so the test cannot point it at disco:\n%s",
					r.name, forwardingDoc, r.docAddr, snippet)
			}
			snippet = strings.ReplaceAll(snippet, r.docAddr, strings.TrimSuffix(r.docAddr, "8053")+discoPort)

			port := freePort(t)
			p := r.start(t, bin, port, snippet)
			server := "127.0.0.1:" + strconv.Itoa(port)
			waitResolver(t, p, server)

			t.Run("A", func(t *testing.T) {
				m := exchange(t, server, "udp", "web.service.disco.internal", dns.TypeA, true)
				if got, want := values(m), []string{"10.0.0.1", "192.168.1.2"}; m.Rcode != dns.RcodeSuccess || !slices.Equal(got, want) {
					t.Errorf("%s %v, want NOERROR %v\n%v", dns.RcodeToString[m.Rcode], got, want, m)
				}
				if !m.RecursionAvailable {
					t.Errorf("RA=0: the answer did not come from the resolver\n%v", m)
				}
			})
			t.Run("SRV", func(t *testing.T) {
				m := exchange(t, server, "udp", "_web._tcp.service.disco.internal", dns.TypeSRV, true)
				want := []string{"1 1 8080 0a000001.addr.disco.internal.", "1 1 8081 c0a80102.addr.disco.internal."}
				if got := values(m); m.Rcode != dns.RcodeSuccess || !slices.Equal(got, want) {
					t.Errorf("%s %v, want NOERROR %v\n%v", dns.RcodeToString[m.Rcode], got, want, m)
				}
				// The SRV target resolves through the resolver too.
				m = exchange(t, server, "udp", "c0a80102.addr.disco.internal", dns.TypeA, true)
				if got := values(m); !slices.Equal(got, []string{"192.168.1.2"}) {
					t.Errorf("SRV target: %v, want 192.168.1.2\n%v", got, m)
				}
			})
			t.Run("large answer over TCP", func(t *testing.T) {
				// disco truncates this answer over UDP: the resolver must
				// have fetched it over TCP.
				m := exchange(t, server, "tcp", "big.service.disco.internal", dns.TypeSRV, true)
				if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 60 {
					t.Errorf("%s with %d answers, want NOERROR with 60", dns.RcodeToString[m.Rcode], len(m.Answer))
				}
			})
			t.Run("missing name", func(t *testing.T) {
				m := exchange(t, server, "udp", "nope.service.disco.internal", dns.TypeA, true)
				if m.Rcode != dns.RcodeNameError || len(m.Answer) != 0 {
					t.Fatalf("%s with %d answers, want NXDOMAIN\n%v", dns.RcodeToString[m.Rcode], len(m.Answer), m)
				}
				// The negative answer is cached no longer than disco's
				// negative TTL (5 s by default).
				var soa *dns.SOA
				for _, rr := range m.Ns {
					if s, ok := rr.(*dns.SOA); ok {
						soa = s
					}
				}
				if soa == nil || soa.Hdr.Name != "disco.internal." || soa.Hdr.Ttl > 5 {
					t.Errorf("authority %v, want disco.internal.'s SOA with a TTL of at most 5 s", m.Ns)
				}
			})
		})
	}
}

// waitResolver waits until the resolver at server answers for the
// discovery domain.
func waitResolver(t *testing.T, p *proc, server string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		m := new(dns.Msg)
		m.SetQuestion("disco.internal.", dns.TypeSOA)
		c := &dns.Client{Timeout: 500 * time.Millisecond}
		r, _, err := c.Exchange(m, server)
		if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1 {
			return
		}
		if p.exited() {
			t.Fatalf("%s exited: %v", p.name, p.err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s at %s does not answer for disco.internal. within %s: %v %v", p.name, server, wait, r, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
