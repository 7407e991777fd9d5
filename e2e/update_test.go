package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const domain = "disco.internal."

var keyRE = regexp.MustCompile(`key "([^"]+)" \{\s*algorithm ([\w-]+);\s*secret "([^"]+)";`)

// keygen runs tsig-keygen for name and writes the key to its own file in dir.
func keygen(t *testing.T, bin, dir, name string) tsigKey {
	t.Helper()
	out, err := exec.Command(bin, "-a", "hmac-sha256", name).Output()
	if err != nil {
		t.Fatalf("tsig-keygen %s: %v", name, err)
	}
	m := keyRE.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("tsig-keygen wrote %q", out)
	}
	k := tsigKey{name: m[1], alg: m[2], secret: m[3], file: filepath.Join(dir, name+".key")}
	if err := os.WriteFile(k.file, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

// updateServer starts disco taking updates signed with upd (xfr is known
// but not allowed) and serving 10.0.0.0/8 and fd00::/8 in reverse, with
// start (startDisco, or startDiscoPlain for a flood).
func updateServer(t *testing.T, start func(*testing.T, ...string) *disco) (d *disco, upd, xfr tsigKey) {
	t.Helper()
	keygenBin, ok := lookBin("tsig-keygen")
	if !ok {
		t.Skip("tsig-keygen not installed (Debian bind9-utils)")
	}
	dir := t.TempDir()
	upd, xfr = keygen(t, keygenBin, dir, "upd"), keygen(t, keygenBin, dir, "xfr")
	var keys []byte
	for _, k := range []tsigKey{upd, xfr} {
		b, err := os.ReadFile(k.file)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, b...)
	}
	keysFile := filepath.Join(dir, "keys.conf")
	if err := os.WriteFile(keysFile, keys, 0o600); err != nil {
		t.Fatal(err)
	}
	d = start(t, "--tsig-keys", keysFile, "--update-allow", "key:upd",
		"--reverse-zone", "10.0.0.0/8", "--reverse-zone", "fd00::/8")
	return d, upd, xfr
}

// values returns the answer records of name/qtype as sorted zone-text data.
func answerData(t *testing.T, d *disco, name string, qtype uint16) []string {
	t.Helper()
	r := exchange(t, d.dnsAddr, "udp", name, qtype, false)
	var out []string
	for _, rr := range r.Answer {
		out = append(out, strings.TrimPrefix(rr.String(), rr.Header().String()))
	}
	slices.Sort(out)
	return out
}

// instanceJSON returns "address:port pP wW k=v,..." of an instance as the
// admin API shows it, or "" when it is not registered.
func instanceJSON(t *testing.T, d *disco, service, id string) string {
	t.Helper()
	code, body := d.api(t, http.MethodGet, "/v1/services/"+service, "")
	if code != http.StatusOK {
		return ""
	}
	var v struct {
		Instances []struct {
			ID       string            `json:"id"`
			Address  string            `json:"address"`
			Port     int               `json:"port"`
			Priority int               `json:"priority"`
			Weight   int               `json:"weight"`
			Meta     map[string]string `json:"meta"`
		} `json:"instances"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("GET /v1/services/%s: %v: %s", service, err, body)
	}
	for _, in := range v.Instances {
		if in.ID == id {
			var meta []string
			for k, val := range in.Meta {
				meta = append(meta, k+"="+val)
			}
			slices.Sort(meta)
			return fmt.Sprintf("%s p%d w%d %s", net.JoinHostPort(in.Address, fmt.Sprint(in.Port)), in.Priority, in.Weight, strings.Join(meta, ","))
		}
	}
	return ""
}

// TestNsupdate registers, changes and deregisters instances with BIND's
// nsupdate, over UDP and TCP, and checks what DNS and the API then say.
func TestNsupdate(t *testing.T) {
	t.Parallel()
	bin, ok := lookBin("nsupdate")
	if !ok {
		t.Skip("nsupdate not installed (Debian bind9-dnsutils)")
	}
	d, upd, xfr := updateServer(t, startDisco)
	host, port, _ := net.SplitHostPort(d.dnsAddr)
	I := "instance." + domain
	// nsupdate runs a script with key (nil: unsigned) and extra flags, and
	// returns its exit error and output.
	nsupdate := func(key *tsigKey, flags []string, lines ...string) (string, error) {
		script := fmt.Sprintf("server %s %s\nzone %s\n%s\nsend\n", host, port, domain, strings.Join(lines, "\n"))
		args := append([]string{"-t", "5", "-u", "2", "-r", "0"}, flags...)
		if key != nil {
			args = append(args, "-k", key.file)
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stdin = strings.NewReader(script)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	ok1 := func(key *tsigKey, flags []string, lines ...string) {
		t.Helper()
		if out, err := nsupdate(key, flags, lines...); err != nil {
			t.Fatalf("nsupdate %v: %v\n%s", lines, err, out)
		}
	}
	failed := func(want string, key *tsigKey, lines ...string) {
		t.Helper()
		out, err := nsupdate(key, nil, lines...)
		if err == nil || !strings.Contains(out, "update failed: "+want) {
			t.Errorf("nsupdate %v: %v %q, want update failed: %s", lines, err, out, want)
		}
	}

	ok1(&upd, nil,
		"update add db-1.db."+I+" 60 A 10.0.0.21",
		"update add db-1.db."+I+" 60 SRV 2 7 5432 db-1.db."+I,
		`update add db-1.db.`+I+` 60 TXT "role=primary" "zone=a"`)
	if got := answerData(t, d, "db.service."+domain, dns.TypeA); !slices.Equal(got, []string{"10.0.0.21"}) {
		t.Errorf("db A: %v", got)
	}
	if got := answerData(t, d, "21.0.0.10.in-addr.arpa.", dns.TypePTR); !slices.Equal(got, []string{"db-1.db." + I}) {
		t.Errorf("PTR: %v", got)
	}
	if got := instanceJSON(t, d, "db", "db-1"); got != "10.0.0.21:5432 p2 w7 role=primary,zone=a" {
		t.Errorf("API: %q", got)
	}

	// Over TCP (-v), with a prerequisite, moving to IPv6.
	ok1(&upd, []string{"-v"},
		"prereq yxrrset db-1.db."+I+" A",
		"update delete db-1.db."+I+" A",
		"update add db-1.db."+I+" 60 AAAA fd00::21")
	if got := instanceJSON(t, d, "db", "db-1"); got != "[fd00::21]:5432 p2 w7 role=primary,zone=a" {
		t.Errorf("API after the move: %q", got)
	}
	if got := answerData(t, d, "1.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", dns.TypePTR); !slices.Equal(got, []string{"db-1.db." + I}) {
		t.Errorf("ip6.arpa PTR: %v", got)
	}

	// Forty instances in one message: too big for UDP, so nsupdate takes
	// TCP by itself.
	var many []string
	for i := 1; i <= 40; i++ {
		name := fmt.Sprintf("b-%d.big.%s", i, I)
		many = append(many, fmt.Sprintf("update add %s 60 A 10.0.1.%d", name, i), "update add "+name+" 60 SRV 1 1 80 "+name)
	}
	ok1(&upd, nil, many...)
	if got := answerData(t, d, "big.service."+domain, dns.TypeA); len(got) != 40 {
		t.Errorf("big: %d addresses, want 40", len(got))
	}

	failed("REFUSED", nil, "update add r-1.r."+I+" 60 A 10.0.0.66", "update add r-1.r."+I+" 60 SRV 1 1 80 r-1.r."+I)
	failed("REFUSED", &xfr, "update add r-1.r."+I+" 60 A 10.0.0.66", "update add r-1.r."+I+" 60 SRV 1 1 80 r-1.r."+I)
	failed("YXDOMAIN", &upd, "prereq nxdomain db-1.db."+I, "update add db-2.db."+I+" 60 A 10.0.0.22", "update add db-2.db."+I+" 60 SRV 1 1 5432 db-2.db."+I)
	failed("REFUSED", &upd, "update add c-1.c."+I+" 60 A 10.0.0.31")
	if got := exchange(t, d.dnsAddr, "udp", "r-1.r."+I, dns.TypeA, false).Rcode; got != dns.RcodeNameError {
		t.Errorf("r-1 after refused updates: %s", dns.RcodeToString[got])
	}

	ok1(&upd, nil, "update delete db-1.db."+I)
	if got := instanceJSON(t, d, "db", "db-1"); got != "" {
		t.Errorf("API after delete: %q", got)
	}
	if got := exchange(t, d.dnsAddr, "udp", "db-1.db."+I, dns.TypeA, false).Rcode; got != dns.RcodeNameError {
		t.Errorf("db-1 after delete: %s", dns.RcodeToString[got])
	}
}

// TestKnsupdate registers and deregisters with Knot's knsupdate.
func TestKnsupdate(t *testing.T) {
	t.Parallel()
	bin, ok := lookBin("knsupdate")
	if !ok {
		t.Skip("knsupdate not installed (Debian knot-dnsutils)")
	}
	d, upd, _ := updateServer(t, startDisco)
	host, port, _ := net.SplitHostPort(d.dnsAddr)
	I := "instance." + domain
	knsupdate := func(key tsigKey, lines ...string) (string, error) {
		script := fmt.Sprintf("server %s %s\nzone %s\n%s\nsend\nanswer\n", host, port, domain, strings.Join(lines, "\n"))
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "-t", "5", "-r", "0", "-y", key.alg+":"+key.name+":"+key.secret)
		cmd.Stdin = strings.NewReader(script)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := knsupdate(upd,
		"update add web-1.web."+I+" 60 A 10.0.0.1",
		"update add web-1.web."+I+" 60 SRV 1 5 8080 web-1.web."+I,
		`update add web-1.web.`+I+` 60 TXT "path=/"`); err != nil || !strings.Contains(out, "status: NOERROR") {
		t.Fatalf("knsupdate add: %v\n%s", err, out)
	}
	if got := instanceJSON(t, d, "web", "web-1"); got != "10.0.0.1:8080 p1 w5 path=/" {
		t.Errorf("API: %q", got)
	}
	if got := answerData(t, d, "web-1._web._tcp.service."+domain, dns.TypeTXT); !slices.Equal(got, []string{`"path=/"`}) {
		t.Errorf("DNS-SD TXT: %v", got)
	}
	if out, err := knsupdate(upd, "update add web-2.web."+I+" 60 A 10.0.0.2"); err == nil || !strings.Contains(out, "status: REFUSED") {
		t.Errorf("knsupdate of an address alone: %v\n%s", err, out)
	}
	if out, err := knsupdate(upd, "update delete web-1.web."+I); err != nil || !strings.Contains(out, "status: NOERROR") {
		t.Fatalf("knsupdate delete: %v\n%s", err, out)
	}
	if got := instanceJSON(t, d, "web", "web-1"); got != "" {
		t.Errorf("API after delete: %q", got)
	}
}

// TestUpdateFlood sends signed UPDATEs from many clients at once while
// another client queries: every query is answered, every update is
// either applied or refused as busy, and what was applied is exactly what
// the registry holds.
func TestUpdateFlood(t *testing.T) {
	d, upd, _ := updateServer(t, startDiscoPlain)
	const (
		clients = 96 // more than the 64 updates disco processes at once
		perUDP  = 15 // updates per client: 1,440 in all
	)
	secret := map[string]string{upd.name + ".": upd.secret}
	var applied, busy, other atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(60 * time.Second)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &dns.Client{Net: "udp", Timeout: 5 * time.Second, TsigSecret: secret}
			for i := range perUDP {
				if time.Now().After(deadline) {
					return
				}
				name := fmt.Sprintf("f-%d-%d.flood.instance.%s", c, i, domain)
				m := new(dns.Msg)
				m.SetUpdate(domain)
				m.Insert([]dns.RR{
					&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(10, 2, byte(c), byte(i+1))},
					&dns.SRV{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 60}, Priority: 1, Weight: 1, Port: 80, Target: name},
				})
				m.SetTsig(upd.name+".", dns.HmacSHA256, 300, time.Now().Unix())
				r, _, err := cl.Exchange(m, d.dnsAddr)
				switch {
				case err == nil && r.Rcode == dns.RcodeSuccess:
					applied.Add(1)
				case err == nil && r.Rcode == dns.RcodeServerFailure:
					busy.Add(1)
				default:
					other.Add(1)
				}
			}
		}()
	}
	// Queries keep being answered meanwhile.
	stop := make(chan struct{})
	var queries, slow atomic.Int64
	var qwg sync.WaitGroup
	qwg.Add(1)
	go func() {
		defer qwg.Done()
		cl := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
		for {
			select {
			case <-stop:
				return
			default:
			}
			m := new(dns.Msg)
			m.SetQuestion("ns1."+domain, dns.TypeA)
			r, rtt, err := cl.Exchange(m, d.dnsAddr)
			if err != nil || r.Rcode != dns.RcodeSuccess {
				t.Errorf("query during the flood: %v %v", err, r)
				return
			}
			queries.Add(1)
			if rtt > 500*time.Millisecond {
				slow.Add(1)
			}
		}
	}()
	wg.Wait()
	close(stop)
	qwg.Wait()
	t.Logf("%d updates applied, %d busy, %d other; %d queries answered during the flood, %d over 500ms",
		applied.Load(), busy.Load(), other.Load(), queries.Load(), slow.Load())
	if other.Load() != 0 || applied.Load() == 0 {
		t.Errorf("%d updates failed otherwise than busy; %d applied", other.Load(), applied.Load())
	}
	if queries.Load() == 0 {
		t.Error("no query answered during the flood")
	}
	code, body := d.api(t, http.MethodGet, "/v1/services/flood", "")
	var v struct {
		Instances []json.RawMessage `json:"instances"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &v) != nil {
		t.Fatalf("GET /v1/services/flood: %d %s", code, body)
	}
	if int64(len(v.Instances)) != applied.Load() {
		t.Errorf("registry holds %d flood instances, %d updates were applied", len(v.Instances), applied.Load())
	}
}

// bonjourScript browses and resolves with Net::Bonjour (Debian
// libnet-bonjour-perl), a DNS-SD client that does unicast DNS-SD for any
// domain but "local": the service types of the domain, then each type's
// instances with SRV, address and TXT attributes. Net::DNS takes the
// server from RES_NAMESERVERS and RES_OPTIONS.
const bonjourScript = `
use strict;
use Net::Bonjour;
my $domain = shift;
foreach my $res (sort { $a->service cmp $b->service } Net::Bonjour->all_services($domain)) {
	printf "type %s %s\n", $res->service, $res->protocol;
	$res->discover;
	foreach my $e (sort { $a->name cmp $b->name } $res->entries) {
		my %attr = $e->all_attrs;
		printf "instance %s %s:%s %s %s\n", $e->name, $e->address, $e->port, $e->hostname,
			join(",", map { "$_=$attr{$_}" } sort keys %attr);
	}
}
`

// TestDNSSDBrowse browses and resolves disco's DNS-SD names with a real
// DNS-SD client library.
func TestDNSSDBrowse(t *testing.T) {
	t.Parallel()
	perl, ok := lookBin("perl")
	if !ok || exec.Command(perl, "-MNet::Bonjour", "-e", "1").Run() != nil {
		t.Skip("Net::Bonjour not installed (Debian libnet-bonjour-perl)")
	}
	d := startDisco(t)
	d.register(t, "web", "web-1", `{"address":"10.0.0.1","port":8080,"meta":{"path":"/","version":"2"}}`)
	d.register(t, "web", "web-2", `{"address":"10.0.0.2","port":8081}`)
	d.register(t, "db", "db-1", `{"address":"10.0.0.5","port":5432,"meta":{"role":"primary"}}`)
	d.register(t, "down", "down-1", `{"address":"10.0.0.9","port":80}`)
	if code, b := d.api(t, http.MethodPut, "/v1/services/down/instances/down-1/maintenance", `{"enabled":true}`); code != http.StatusOK {
		t.Fatalf("maintenance: %d %s", code, b)
	}
	host, port, _ := net.SplitHostPort(d.dnsAddr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, perl, "-e", bonjourScript, "service."+domain)
	cmd.Env = append(childEnv(), "RES_NAMESERVERS="+host, "RES_OPTIONS=port:"+port)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("Net::Bonjour: %v\n%s", err, out)
	}
	want := strings.Join([]string{
		"type db tcp",
		"instance db-1 10.0.0.5:5432 db-1.db.instance.disco.internal role=primary",
		"type web tcp",
		"instance web-1 10.0.0.1:8080 web-1.web.instance.disco.internal path=/,version=2",
		// No meta: the one empty string of RFC 6763 section 6.1, which
		// Net::Bonjour reads as an empty key.
		"instance web-2 10.0.0.2:8081 web-2.web.instance.disco.internal =",
	}, "\n") + "\n"
	if string(out) != want {
		t.Errorf("Net::Bonjour browsed:\n%s\nwant\n%s", out, want)
	}
}
