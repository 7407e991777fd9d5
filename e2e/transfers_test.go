package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const (
	// transfersDoc is the guide whose secondary configurations the tests
	// run.
	transfersDoc = "../docs/transfers.md"
	// zoneD is the discovery domain, disco's default.
	zoneD = "disco.internal."
	// docSecret is the example key's secret in the guide's snippets; the
	// tests put a fresh one in its place.
	docSecret = "JDLZKNuBPnieS7zSkKzi1RQi/O6n9O3SM+TPtQPRD84="
	// propagationBound is how soon after disco a secondary must answer a
	// change.
	propagationBound = 2 * time.Second
	// propagationWait bounds the wait for a change to reach a secondary,
	// so that a slow one is reported with the time it took.
	propagationWait = 10 * time.Second
	// pollEvery is the pause between two probes of a polled condition.
	pollEvery = 10 * time.Millisecond
)

// tsigKey is a TSIG key: made here (newTSIGKey) or by tsig-keygen (keygen).
type tsigKey struct {
	name, alg, secret string
	file              string // the key alone, as tsig-keygen writes it (nsupdate -k); "" until written
}

// newTSIGKey returns a key with a fresh random secret, as tsig-keygen
// makes one.
func newTSIGKey(t *testing.T, name string) tsigKey {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return tsigKey{name: name, alg: "hmac-sha256", secret: base64.StdEncoding.EncodeToString(b)}
}

// writeFile writes the key in dir in the syntax tsig-keygen writes, which
// disco's --tsig-keys and BIND's include read, and returns its path.
func (k tsigKey) writeFile(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, k.name+".key")
	text := fmt.Sprintf("key %q {\n\talgorithm hmac-sha256;\n\tsecret %q;\n};\n", k.name, k.secret)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// secondarySetup is what a secondary's configuration is made of.
type secondarySetup struct {
	dir         string  // the server's working directory: zone, state, pid file
	port        int     // the loopback port it answers on, UDP and TCP
	primaryPort int     // disco's DNS port on 127.0.0.1
	key         tsigKey // the transfer key, named as in the guide
}

// secondaryKind is a secondary server the tests run with its
// configuration from docs/transfers.md.
type secondaryKind struct {
	name string // its subsection's snippet name in the guide
	bin  string
	// start writes the configuration for s into s.dir and runs the server
	// in the foreground.
	start func(t *testing.T, bin string, s secondarySetup) *proc
	// refreshFailed matches the log line of a failed attempt to fetch
	// the discovery zone.
	refreshFailed *regexp.Regexp
}

var secondaryKinds = []secondaryKind{
	{
		name:          "knot",
		bin:           "knotd",
		start:         startKnot,
		refreshFailed: regexp.MustCompile(`\[disco\.internal\.\] refresh, .*failed`),
	},
	{
		name:          "nsd",
		bin:           "nsd",
		start:         startNSD,
		refreshFailed: regexp.MustCompile(`xfrd: zone disco\.internal\.(,| ).*(bad|error)`),
	},
	{
		name:          "bind",
		bin:           "named",
		start:         startBIND,
		refreshFailed: regexp.MustCompile(`zone disco\.internal/IN: refresh: failure|transfer of 'disco\.internal/IN' .*Transfer status: [^s]`),
	},
}

// fromDoc returns the guide's snippet name with each old string of pairs
// (old, new, old, new, ...) replaced by the new one, in order. An old string
// the snippet lacks fails the test: the guide and the test change together.
func fromDoc(t *testing.T, name string, pairs ...string) string {
	t.Helper()
	s := docSnippetOf(t, transfersDoc, name)
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("the %s snippet of %s has no %q for the test to replace with %q:\n%s",
				name, transfersDoc, pairs[i], pairs[i+1], s)
		}
		s = strings.ReplaceAll(s, pairs[i], pairs[i+1])
	}
	return s
}

// writeConf writes text to dir/name and returns the path.
func writeConf(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startKnot runs knotd with the guide's Knot configuration. The test adds
// logging to stderr and one worker thread of each kind.
func startKnot(t *testing.T, bin string, s secondarySetup) *proc {
	t.Helper()
	conf := fromDoc(t, "knot",
		"listen: 10.0.0.2@53", fmt.Sprintf("listen: 127.0.0.1@%d", s.port),
		"address: 10.0.0.1@53", fmt.Sprintf("address: 127.0.0.1@%d", s.primaryPort),
		"address: 10.0.0.1\n", "address: 127.0.0.1\n",
		`"/run/knot"`, strconv.Quote(s.dir),
		`"/var/lib/knot"`, strconv.Quote(s.dir),
		docSecret, s.key.secret,
		"  - target: syslog", "  - target: stderr",
		"server:\n", "server:\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n",
	)
	return startGroup(t, bin, "-c", writeConf(t, s.dir, "knot.conf", conf))
}

// startNSD runs nsd in the foreground with the guide's NSD configuration.
// The test adds that NSD keeps the user it was started as, with one
// server process.
func startNSD(t *testing.T, bin string, s secondarySetup) *proc {
	t.Helper()
	conf := fromDoc(t, "nsd",
		"ip-address: 10.0.0.2\n", "ip-address: 127.0.0.1\n",
		"port: 53\n", fmt.Sprintf("port: %d\n", s.port),
		"request-xfr: 10.0.0.1 xfr", fmt.Sprintf("request-xfr: 127.0.0.1@%d xfr", s.primaryPort),
		"allow-notify: 10.0.0.1 xfr", "allow-notify: 127.0.0.1 xfr",
		`"/var/lib/nsd`, `"`+s.dir,
		`"/run/nsd/nsd.pid"`, strconv.Quote(filepath.Join(s.dir, "nsd.pid")),
		docSecret, s.key.secret,
		"server:\n", "server:\n    username: \"\"\n    server-count: 1\n",
	)
	return startGroup(t, bin, "-d", "-c", writeConf(t, s.dir, "nsd.conf", conf))
}

// startBIND runs named in the foreground (-g: logs to stderr) with the
// guide's BIND configuration and the key file in s.dir. The test adds its
// own pid and session key files and turns the control channel off, so
// that it never meets another named's.
func startBIND(t *testing.T, bin string, s secondarySetup) *proc {
	t.Helper()
	conf := fromDoc(t, "bind",
		"listen-on port 53 { 10.0.0.2; };", fmt.Sprintf("listen-on port %d { 127.0.0.1; };", s.port),
		"primaries { 10.0.0.1 key xfr; };", fmt.Sprintf("primaries port %d { 127.0.0.1 key xfr; };", s.primaryPort),
		`"/var/cache/bind"`, strconv.Quote(s.dir),
		`"/etc/bind/disco-tsig.conf"`, strconv.Quote(s.key.writeFile(t, s.dir)),
		"options {\n", fmt.Sprintf("options {\n    pid-file %q;\n    session-keyfile %q;\n",
			filepath.Join(s.dir, "named.pid"), filepath.Join(s.dir, "session.key")),
	) + "controls { };\n"
	return startGroup(t, bin, "-g", "-n", "1", "-c", writeConf(t, s.dir, "named.conf", conf))
}

// startGroup starts a server in a process group of its own, so that the
// processes it forks end with it: at the end of the test the group gets
// SIGTERM, then SIGKILL. Its output is logged if the test failed.
func startGroup(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: filepath.Base(name), out: newLogLines(), done: make(chan struct{})}
	p.cmd = exec.Command(name, args...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	p.cmd.Env = childEnv()
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		stopGroup(p)
		if t.Failed() {
			t.Logf("output of %s %s:\n%s", p.name, strings.Join(args, " "), p.out)
		}
	})
	return p
}

// stopGroup ends a process started by startGroup and what is left of its
// group.
func stopGroup(p *proc) {
	pgid := p.cmd.Process.Pid
	if !p.exited() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(wait):
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
}

// secondary is a running secondary server.
type secondary struct {
	kind string
	p    *proc
	addr string // 127.0.0.1:port
}

// ask sends one query and returns the reply, falling back to TCP when
// the UDP reply is truncated. Unlike exchange it does not fail the test,
// so that pollers can use it.
func ask(server, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	m.SetEdns0(dns.DefaultMsgSize, false)
	c := &dns.Client{Timeout: time.Second}
	r, _, err := c.Exchange(m, server)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.Exchange(m, server)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s to %s: %w", name, dns.TypeToString[qtype], server, err)
	}
	return r, nil
}

// answerOf renders a reply's rcode and answer records, sorted and with
// TTL 0: two servers agree when their renderings are equal.
func answerOf(r *dns.Msg) string {
	rrs := make([]string, 0, len(r.Answer))
	for _, rr := range r.Answer {
		rr = dns.Copy(rr)
		rr.Header().Ttl = 0
		rrs = append(rrs, strings.Join(strings.Fields(rr.String()), " "))
	}
	slices.Sort(rrs)
	return strings.Join(append([]string{dns.RcodeToString[r.Rcode]}, rrs...), "; ")
}

// answerAt is server's answer to name and qtype as answerOf renders it, or
// the error.
func answerAt(server, name string, qtype uint16) string {
	r, err := ask(server, name, qtype)
	if err != nil {
		return "error: " + err.Error()
	}
	return answerOf(r)
}

// serialAt returns the SOA serial that server answers for D.
func serialAt(server string) (uint32, error) {
	r, err := ask(server, zoneD, dns.TypeSOA)
	if err != nil {
		return 0, err
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial, nil
		}
	}
	return 0, fmt.Errorf("%s answers %s for the SOA of %s", server, answerOf(r), zoneD)
}

// waitSynced waits until the secondary answers the SOA serial that the
// primary answers, and returns how long that took.
func waitSynced(t *testing.T, s *secondary, primary string) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(wait)
	for {
		want, errP := serialAt(primary)
		got, errS := serialAt(s.addr)
		if errP == nil && errS == nil && got == want {
			return time.Since(start)
		}
		if s.p.exited() {
			t.Fatalf("%s exited: %v", s.kind, s.p.err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has not the serial of the primary %s after %s: primary %d (%v), %s %d (%v)",
				s.kind, primary, wait, want, errP, s.kind, got, errS)
		}
		time.Sleep(pollEvery)
	}
}

// waitAnswer polls server until its answer to name and qtype satisfies
// ok, and returns the time it did and that answer; at the deadline it
// fails the test.
func waitAnswer(t *testing.T, server, name string, qtype uint16, within time.Duration, ok func(string) bool) (time.Time, string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := answerAt(server, name, qtype)
		if ok(got) {
			return time.Now(), got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s at %s is still %q after %s", name, dns.TypeToString[qtype], server, got, within)
		}
		time.Sleep(pollEvery)
	}
}

// follow waits, for every secondary at once, until it answers name and
// qtype with want, and returns how long after since each did. A
// secondary that takes longer than propagationBound, or does not get there
// within propagationWait, fails the test.
func follow(t *testing.T, secs []*secondary, change string, since time.Time, name string, qtype uint16, want string) map[string]time.Duration {
	t.Helper()
	type result struct {
		took time.Duration
		last string
		ok   bool
	}
	results := make([]result, len(secs))
	var wg sync.WaitGroup
	for i, s := range secs {
		wg.Go(func() {
			deadline := since.Add(propagationWait)
			for {
				got := answerAt(s.addr, name, qtype)
				if got == want {
					results[i] = result{took: time.Since(since), last: got, ok: true}
					return
				}
				if time.Now().After(deadline) || s.p.exited() {
					results[i] = result{took: time.Since(since), last: got}
					return
				}
				time.Sleep(pollEvery)
			}
		})
	}
	wg.Wait()
	took := make(map[string]time.Duration)
	for i, r := range results {
		s := secs[i]
		switch {
		case !r.ok:
			t.Errorf("%s: %s: %s %s is still %q after %s, want %q (exited: %v)",
				s.kind, change, name, dns.TypeToString[qtype], r.last, r.took.Round(time.Millisecond), want, s.p.exited())
		case r.took > propagationBound:
			t.Errorf("%s: %s: answered after %s, want within %s", s.kind, change, r.took.Round(time.Millisecond), propagationBound)
		}
		if r.ok {
			took[s.kind] = r.took
		}
		t.Logf("%s: %s: %s %s answered after %s", s.kind, change, name, dns.TypeToString[qtype], r.took.Round(time.Millisecond))
	}
	return took
}

// sameAnswers compares the secondary's answers with disco's for every
// query of sample ("name TYPE", the name relative to D or "@"): rcode and
// answer records, up to order and TTL. The queries of negativeOnly, names
// that hold no record, may instead be NODATA at disco and NXDOMAIN at the
// secondary, as docs/transfers.md says.
func sameAnswers(t *testing.T, s *secondary, disco string, sample []string, negativeOnly map[string]bool) {
	t.Helper()
	for _, q := range sample {
		name, typ, _ := strings.Cut(q, " ")
		if name == "@" {
			name = zoneD
		} else {
			name += "." + zoneD
		}
		qtype, ok := dns.StringToType[typ]
		if !ok {
			t.Fatalf("query %q: unknown type %q", q, typ)
		}
		want := answerAt(disco, name, qtype)
		got := answerAt(s.addr, name, qtype)
		if got == want || negativeOnly[q] && want == "NOERROR" && got == "NXDOMAIN" {
			continue
		}
		t.Errorf("%s %s:\n  disco: %s\n  %s: %s", name, typ, want, s.kind, got)
	}
}

// tcpTarget is a loopback listener for a TCP health check: passing while it
// accepts, critical once closed.
func tcpTarget(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}

// secondarySample is the queries ("name TYPE", the name relative to D)
// that the secondaries must answer as disco does, once db-1 has come,
// web-2 is gone, and web-3 and api-1 are critical.
var secondarySample = []string{
	"@ SOA", "@ NS", "ns1 A", "nope A",
	"web.service A", "web.service AAAA", "web.service SRV", "web.service TXT",
	"blue.web.service A", "blue.web.service SRV", "green.web.service A",
	"_web._tcp.service SRV", "_web._udp.service SRV", "_web._blue.service SRV", "_web._green.service SRV",
	"_blue._web.service SRV",
	"db.service AAAA", "db.service A", "db.service SRV", "_db._tcp.service SRV",
	"cache.service AAAA", "_cache._tcp.service SRV",
	"web-1.web.instance A", "web-1.web.instance AAAA", "web-1.web.instance SRV", "web-1.web.instance TXT",
	"web-2.web.instance A", "web-2.web.instance SRV",
	"web-3.web.instance A", "web-3.web.instance SRV", "web-3.web.instance TXT",
	"api-1.api.instance A", "api-1.api.instance SRV",
	"db-1.db.instance AAAA", "db-1.db.instance SRV", "db-1.db.instance TXT",
	"x.web-1.web.instance A",
	"0a000001.addr A", "0a000002.addr A", "0a000003.addr A", "0a000009.addr A", "c0000201.addr A",
	"fd000000000000000000000000000004.addr AAAA", "fd000000000000000000000000000007.addr AAAA",
	"service A", "_tcp.service SRV", "instance A", "web.instance A", "addr A",
	"nope.service A", "nope.web.service A", "_nope._tcp.service SRV", "_web._nope.service SRV", "nope.instance A",
	"_services._dns-sd._udp.service PTR", "_web._tcp.service PTR",
	// Names that serve no instance hold a TXT saying why, so that the
	// secondaries know them and answer NODATA as disco does.
	"api.service A", "api.service AAAA", "api.service SRV", "api.service TXT",
	"_api._tcp.service SRV", "_api._tcp.service TXT", "_api._udp.service SRV",
	"canary.web.service A", "canary.web.service SRV", "canary.web.service TXT", "_web._canary.service SRV",
	// A name that holds no record (negativeOnly).
	"_nope.service A",
}

// negativeOnly is the queries of secondarySample at names that hold no
// record: an underscore name under service.D, which disco answers NODATA
// as the parent of possible tag names; a secondary holds no such name and
// may answer NXDOMAIN (docs/transfers.md, "What a transfer carries").
var negativeOnly = map[string]bool{
	"_nope.service A": true,
}

// startSecondaries starts each installed kind on its port, a secondary of
// disco at primaryPort with key; a kind not installed gets a skipped
// subtest.
func startSecondaries(t *testing.T, ports map[string]int, primaryPort int, key tsigKey) []*secondary {
	t.Helper()
	var secs []*secondary
	for _, k := range secondaryKinds {
		port, ok := ports[k.name]
		if !ok {
			continue
		}
		bin, _ := lookBin(k.bin)
		s := secondarySetup{dir: t.TempDir(), port: port, primaryPort: primaryPort, key: key}
		secs = append(secs, &secondary{kind: k.name, p: k.start(t, bin, s), addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))})
	}
	return secs
}

// installedSecondaries returns a free port for every installed kind and
// reports the others as skipped subtests.
func installedSecondaries(t *testing.T) map[string]int {
	t.Helper()
	ports := make(map[string]int)
	for _, k := range secondaryKinds {
		if _, ok := lookBin(k.bin); !ok {
			t.Run(k.name, func(t *testing.T) {
				t.Skipf("%s is not installed (Debian: apt-get install knot nsd bind9)", k.bin)
			})
			continue
		}
		ports[k.name] = freePort(t)
	}
	if len(ports) == 0 {
		t.Skip("none of knotd, nsd and named is installed")
	}
	return ports
}

// TestSecondaries runs Knot, NSD and BIND, configured as in
// docs/transfers.md, as TSIG-authenticated secondaries of disco, which
// NOTIFYs each of them. After a registration, a deregistration and a health
// change each secondary answers the new data within propagationBound, and
// in the end it answers as disco does for a sample of names.
func TestSecondaries(t *testing.T) {
	ports := installedSecondaries(t)
	key := newTSIGKey(t, "xfr")
	args := []string{"--tsig-keys", key.writeFile(t, t.TempDir()), "--transfer-allow", "key:xfr", "--notify-key", "xfr"}
	for _, k := range secondaryKinds {
		if port, ok := ports[k.name]; ok {
			args = append(args, "--notify", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		}
	}
	d := startDisco(t, args...)
	_, p, err := net.SplitHostPort(d.dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	primaryPort, _ := strconv.Atoi(p)

	target := tcpTarget(t)
	check := `[{"type":"tcp","address":"` + target.Addr().String() + `","interval":"1s","timeout":"500ms","rise":1,"fall":1}]`
	d.register(t, "web", "web-1", `{"address":"10.0.0.1","port":8080,"tags":["blue"],"meta":{"version":"1.2","zone":"a"},"weight":10,"priority":2}`)
	d.register(t, "web", "web-2", `{"address":"10.0.0.2","port":8080,"tags":["green"]}`)
	d.register(t, "web", "web-3", `{"address":"10.0.0.3","port":8081,"tags":["blue","canary"],"meta":{"checked":"yes"},"checks":`+check+`}`)
	d.register(t, "api", "api-1", `{"address":"10.0.0.9","port":443,"checks":`+check+`}`)
	d.register(t, "cache", "cache-1", `{"address":"fd00::7","port":6379}`)
	// The checked instances pass before the secondaries start.
	waitAnswer(t, d.dnsAddr, "web.service."+zoneD, dns.TypeA, wait, func(a string) bool { return strings.Contains(a, "10.0.0.3") })
	waitAnswer(t, d.dnsAddr, "api.service."+zoneD, dns.TypeA, wait, func(a string) bool { return strings.Contains(a, "10.0.0.9") })

	secs := startSecondaries(t, ports, primaryPort, key)
	for _, s := range secs {
		t.Logf("%s: first transfer done %s after start", s.kind, waitSynced(t, s, d.dnsAddr).Round(time.Millisecond))
	}
	if t.Failed() {
		return
	}
	times := make(map[string][]string)
	record := func(change string, took map[string]time.Duration) {
		for kind, d := range took {
			times[kind] = append(times[kind], fmt.Sprintf("%s %s", change, d.Round(time.Millisecond)))
		}
	}

	// A registration: a new service with an IPv6 address.
	d.register(t, "db", "db-1", `{"address":"fd00::4","port":5432,"meta":{"role":"primary"}}`)
	since := time.Now()
	name := "db.service." + zoneD
	want := answerAt(d.dnsAddr, name, dns.TypeAAAA)
	if want != "NOERROR; "+name+" 0 IN AAAA fd00::4" {
		t.Fatalf("disco answers %s AAAA with %q right after the registration", name, want)
	}
	record("registration", follow(t, secs, "registration", since, name, dns.TypeAAAA, want))

	// A deregistration.
	if code, body := d.api(t, http.MethodDelete, "/v1/services/web/instances/web-2", ""); code != http.StatusOK && code != http.StatusNoContent {
		t.Fatalf("deregister web-2: HTTP %d %s", code, body)
	}
	since = time.Now()
	name = "web.service." + zoneD
	want = answerAt(d.dnsAddr, name, dns.TypeA)
	if strings.Contains(want, "10.0.0.2") || !strings.Contains(want, "10.0.0.1") {
		t.Fatalf("disco answers %s A with %q right after web-2's deregistration", name, want)
	}
	record("deregistration", follow(t, secs, "deregistration", since, name, dns.TypeA, want))

	// A health change: the checks' target goes away, web-3 and api-1 turn
	// critical. There is no API reply to time from: the clock starts when
	// disco answers without web-3.
	target.Close()
	want = "NOERROR; " + name + " 0 IN A 10.0.0.1"
	since, _ = waitAnswer(t, d.dnsAddr, name, dns.TypeA, wait, func(a string) bool { return a == want })
	record("health", follow(t, secs, "health change", since, name, dns.TypeA, want))
	waitAnswer(t, d.dnsAddr, "api.service."+zoneD, dns.TypeA, wait, func(a string) bool { return !strings.Contains(a, "10.0.0.9") })

	for _, s := range secs {
		t.Logf("%s: propagation after the API's reply (health: after disco's answer changed): %s", s.kind, strings.Join(times[s.kind], ", "))
	}
	for _, s := range secs {
		t.Run(s.kind+"/same answers as disco", func(t *testing.T) {
			waitSynced(t, s, d.dnsAddr)
			sameAnswers(t, s, d.dnsAddr, secondarySample, negativeOnly)
		})
	}
}

// TestSecondaryWrongSecret runs each secondary with the configuration of
// docs/transfers.md but a secret of its own for the key: disco refuses its
// requests, and it has no zone to serve.
func TestSecondaryWrongSecret(t *testing.T) {
	t.Parallel()
	ports := installedSecondaries(t)
	key := newTSIGKey(t, "xfr")
	d := startDisco(t, "--tsig-keys", key.writeFile(t, t.TempDir()), "--transfer-allow", "key:xfr")
	d.register(t, "web", "web-1", `{"address":"10.0.0.1","port":8080}`)
	_, p, err := net.SplitHostPort(d.dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	primaryPort, _ := strconv.Atoi(p)
	for _, k := range secondaryKinds {
		port, ok := ports[k.name]
		if !ok {
			continue
		}
		t.Run(k.name, func(t *testing.T) {
			bin, _ := lookBin(k.bin)
			s := secondarySetup{dir: t.TempDir(), port: port, primaryPort: primaryPort, key: newTSIGKey(t, "xfr")}
			p := k.start(t, bin, s)
			line := p.waitLine(t, "a failed refresh", k.refreshFailed.MatchString)
			t.Logf("%s: %s", k.name, line)
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			for _, q := range []string{zoneD + " SOA", "web.service." + zoneD + " A"} {
				name, typ, _ := strings.Cut(q, " ")
				if got := answerAt(addr, name, dns.StringToType[typ]); !strings.HasPrefix(got, "SERVFAIL") {
					t.Errorf("%s %s: %s, want SERVFAIL (no zone)", name, typ, got)
				}
			}
		})
	}
}
