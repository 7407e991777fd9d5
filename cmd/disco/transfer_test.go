package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"disco/dnsserver"
	"disco/tsig"
)

const xfrSecret = "KkOLrzVLMGhOYI6ie8rShwMQ9jYGRu98kRvQwFSeccE="

const keysFile = `key "xfr" {
	algorithm hmac-sha256;
	secret "` + xfrSecret + `";
};
`

// TestServeTransferFlags: the TSIG, transfer and NOTIFY flags are checked
// before anything starts, each problem named.
func TestServeTransferFlags(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "keys.conf")
	if err := os.WriteFile(good, []byte(keysFile), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(bad, []byte("key \"x\" {\n\talgorithm hmac-md5;\n\tsecret \"c2VjcmV0\";\n};\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"bad key file", []string{"--tsig-keys", bad}, nil, []string{"--tsig-keys: " + bad + `:2: key "x": algorithm "hmac-md5" is not supported`}},
		{"missing key file", []string{"--tsig-keys", filepath.Join(dir, "none")}, nil, []string{"--tsig-keys: tsig keys: open " + filepath.Join(dir, "none")}},
		{"rules", []string{"--tsig-keys", good, "--transfer-allow", "key:other", "--transfer-allow", "10.0.0.0/33", "--transfer-allow", "key:xfr"}, nil,
			[]string{`--transfer-allow key:other: no key "other" in --tsig-keys`, `transfer rule "10.0.0.0/33": want key:NAME, a CIDR prefix`}},
		{"key rule without keys", []string{"--transfer-allow", "key:xfr"}, nil, []string{`no key "xfr" in --tsig-keys (not given)`}},
		{"notify", []string{"--notify", "secondary", "--notify", "10.0.0.1:99999", "--notify-key", "xfr"}, nil,
			[]string{`--notify "secondary": want HOST:PORT`, `--notify "10.0.0.1:99999": bad port`, `--notify-key "xfr": no such key in --tsig-keys (not given)`}},
		{"from the environment", nil, map[string]string{"DISCO_TSIG_KEYS": good, "DISCO_TRANSFER_ALLOW": "key:xfr,nonsense", "DISCO_NOTIFY_KEY": "nokey"},
			[]string{`transfer rule "nonsense"`, `--notify-key "nokey": no such key in --tsig-keys ` + good}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := run(t, append([]string{"serve", "--dns-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, tt.args...)...)
			if err == nil {
				t.Fatal("serve started")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not say %q", err, w)
				}
			}
		})
	}
}

// notifyCatcher is a DNS server on loopback UDP that answers NOTIFY, as a
// secondary does, and keeps the serials it was told, checking TSIG.
type notifyCatcher struct {
	addr string
	mu   sync.Mutex
	got  map[string][]uint32 // zone -> serials
	bad  int                 // messages without a valid signature
}

func startNotifyCatcher(t *testing.T) *notifyCatcher {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &notifyCatcher{addr: pc.LocalAddr().String(), got: map[string][]uint32{}}
	srv := &dns.Server{PacketConn: pc, TsigSecret: map[string]string{"xfr.": xfrSecret},
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if m.IsTsig() == nil || w.TsigStatus() != nil || len(m.Answer) != 1 {
				c.bad++
				return
			}
			c.got[m.Question[0].Name] = append(c.got[m.Question[0].Name], m.Answer[0].(*dns.SOA).Serial)
			r := new(dns.Msg)
			r.SetReply(m)
			r.SetTsig("xfr.", dns.HmacSHA256, 300, time.Now().Unix())
			_ = w.WriteMsg(r)
		})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return c
}

func (c *notifyCatcher) serials(zone string) []uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]uint32(nil), c.got[zone]...)
}

func xfrKeys(t *testing.T) *tsig.Keyring {
	t.Helper()
	ring, err := tsig.Parse(strings.NewReader(keysFile), "keys.conf")
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

// axfrIn transfers zone from addr with miekg/dns's client (which checks
// every message's TSIG).
func axfrIn(t *testing.T, addr, zone string, qtype uint16, serial uint32) []dns.RR {
	t.Helper()
	m := new(dns.Msg)
	if qtype == dns.TypeIXFR {
		m.SetIxfr(zone, serial, "ns.", "h.")
	} else {
		m.SetAxfr(zone)
	}
	m.SetTsig("xfr.", dns.HmacSHA256, 300, time.Now().Unix())
	tr := &dns.Transfer{TsigSecret: map[string]string{"xfr.": xfrSecret}}
	env, err := tr.In(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	var rrs []dns.RR
	for e := range env {
		if e.Error != nil {
			t.Fatalf("%s %s: %v", zone, dns.TypeToString[qtype], e.Error)
		}
		rrs = append(rrs, e.RR...)
	}
	return rrs
}

// TestTransfersEndToEnd runs the server with the transfer flags' values: a
// secondary is told at start-up and after a registration, transfers with
// TSIG, and the serial never goes back across a restart.
func TestTransfersEndToEnd(t *testing.T) {
	catcher := startNotifyCatcher(t)
	keys := xfrKeys(t)
	notifyKey, _ := keys.Key("xfr")
	zonesDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(zonesDir, "example.com.zone"), []byte(
		"$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 host 42 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.10\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	mod := func(c *serveConfig) {
		c.DataDir, c.ZonesDir = dataDir, zonesDir
		c.Transfer = transferConfig{Keys: keys, TransferAllow: []dnsserver.TransferRule{{Key: "xfr."}},
			Notify: []string{catcher.addr}, NotifyKey: notifyKey}
	}
	s := startServer(t, mod)
	waitUntil(t, "NOTIFY of both zones at start-up", func() bool {
		return len(catcher.serials("disco.internal.")) > 0 && len(catcher.serials("example.com.")) > 0
	})
	if got := catcher.serials("example.com."); got[0] != 42 {
		t.Errorf("NOTIFY of example.com. with serial %v, want 42", got)
	}
	first := catcher.serials("disco.internal.")[0]

	s.register(t, "web", "web-1", `{"address":"10.0.0.1","port":8080}`)
	start := time.Now()
	s.register(t, "web", "web-2", `{"address":"10.0.0.2","port":8080}`)
	soa := s.query(t, "udp", "disco.internal.", dns.TypeSOA, 0).Answer[0].(*dns.SOA)
	if soa.Serial != first+2 {
		t.Errorf("serial %d after two registrations, want %d", soa.Serial, first+2)
	}
	waitUntil(t, "NOTIFY of the new serial", func() bool {
		got := catcher.serials("disco.internal.")
		return got[len(got)-1] == soa.Serial
	})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("NOTIFY came %s after the change", took)
	}

	rrs := axfrIn(t, s.dnsAddr, "disco.internal.", dns.TypeAXFR, 0)
	var addrs []string
	for _, rr := range rrs {
		if a, ok := rr.(*dns.A); ok && a.Hdr.Name == "web.service.disco.internal." {
			addrs = append(addrs, a.A.String())
		}
	}
	if strings.Join(addrs, " ") != "10.0.0.1 10.0.0.2" && strings.Join(addrs, " ") != "10.0.0.2 10.0.0.1" {
		t.Errorf("AXFR holds web at %v", addrs)
	}
	if static := axfrIn(t, s.dnsAddr, "example.com.", dns.TypeAXFR, 0); len(static) != 5 {
		t.Errorf("AXFR of example.com.: %d records, want 5", len(static))
	}
	ixfr := axfrIn(t, s.dnsAddr, "disco.internal.", dns.TypeIXFR, first+1)
	if len(ixfr) < 4 || ixfr[1].(*dns.SOA).Serial != first+1 || len(ixfr) >= len(rrs) {
		t.Errorf("IXFR from %d: %d records (AXFR %d)", first+1, len(ixfr), len(rrs))
	}
	if catcher.bad > 0 {
		t.Errorf("%d NOTIFY messages without a valid signature", catcher.bad)
	}

	// A restart on the same data: the serial does not go back.
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	s = startServer(t, mod)
	after := s.query(t, "udp", "disco.internal.", dns.TypeSOA, 0).Answer[0].(*dns.SOA).Serial
	if after != soa.Serial && !(after-soa.Serial < 1<<31) {
		t.Errorf("serial %d after the restart, %d before", after, soa.Serial)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "zone-serial")); err != nil {
		t.Errorf("no serial file in the data dir: %v", err)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
