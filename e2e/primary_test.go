package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// notifyCatcher is a DNS server on loopback UDP that answers NOTIFY, as a
// secondary does, and keeps the serials it was told, checking TSIG with
// key.
type notifyCatcher struct {
	addr string
	mu   sync.Mutex
	got  map[string][]uint32 // zone -> serials
	bad  int                 // messages without a valid signature
}

func startNotifyCatcher(t *testing.T, key tsigKey) *notifyCatcher {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &notifyCatcher{addr: pc.LocalAddr().String(), got: map[string][]uint32{}}
	srv := &dns.Server{PacketConn: pc, TsigSecret: map[string]string{dns.Fqdn(key.name): key.secret},
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
			r.SetTsig(dns.Fqdn(key.name), dns.HmacSHA256, 300, time.Now().Unix())
			_ = w.WriteMsg(r)
		})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return c
}

// serials returns the serials of zone that c was told, in order.
func (c *notifyCatcher) serials(zone string) []uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]uint32(nil), c.got[zone]...)
}

// badCount returns how many messages came without a valid signature.
func (c *notifyCatcher) badCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bad
}

// axfrIn transfers zone from addr with miekg/dns's client, signed with key
// (the client checks every message's TSIG).
func axfrIn(t *testing.T, key tsigKey, addr, zone string, qtype uint16, serial uint32) []dns.RR {
	t.Helper()
	m := new(dns.Msg)
	if qtype == dns.TypeIXFR {
		m.SetIxfr(zone, serial, "ns.", "h.")
	} else {
		m.SetAxfr(zone)
	}
	m.SetTsig(dns.Fqdn(key.name), dns.HmacSHA256, 300, time.Now().Unix())
	tr := &dns.Transfer{TsigSecret: map[string]string{dns.Fqdn(key.name): key.secret}}
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
	key := newTSIGKey(t, "xfr")
	catcher := startNotifyCatcher(t, key)
	keysFile := key.writeFile(t, t.TempDir())
	zonesDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(zonesDir, "example.com.zone"), []byte(
		"$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 host 42 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.10\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	args := []string{"--data-dir", dataDir, "--zones-dir", zonesDir, "--tsig-keys", keysFile,
		"--transfer-allow", "key:xfr", "--notify", catcher.addr, "--notify-key", "xfr"}
	d := startDisco(t, args...)
	eventually(t, "NOTIFY of both zones at start-up", 10*time.Second, func() bool {
		return len(catcher.serials("disco.internal.")) > 0 && len(catcher.serials("example.com.")) > 0
	})
	if got := catcher.serials("example.com."); got[0] != 42 {
		t.Errorf("NOTIFY of example.com. with serial %v, want 42", got)
	}
	first := catcher.serials("disco.internal.")[0]

	d.register(t, "web", "web-1", `{"address":"10.0.0.1","port":8080}`)
	start := time.Now()
	d.register(t, "web", "web-2", `{"address":"10.0.0.2","port":8080}`)
	soa := d.query(t, "udp", "disco.internal.", dns.TypeSOA, 0).Answer[0].(*dns.SOA)
	if soa.Serial != first+2 {
		t.Errorf("serial %d after two registrations, want %d", soa.Serial, first+2)
	}
	eventually(t, "NOTIFY of the new serial", 10*time.Second, func() bool {
		got := catcher.serials("disco.internal.")
		return got[len(got)-1] == soa.Serial
	})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("NOTIFY came %s after the change", took)
	}

	rrs := axfrIn(t, key, d.dnsAddr, "disco.internal.", dns.TypeAXFR, 0)
	var addrs []string
	for _, rr := range rrs {
		if a, ok := rr.(*dns.A); ok && a.Hdr.Name == "web.service.disco.internal." {
			addrs = append(addrs, a.A.String())
		}
	}
	if strings.Join(addrs, " ") != "10.0.0.1 10.0.0.2" && strings.Join(addrs, " ") != "10.0.0.2 10.0.0.1" {
		t.Errorf("AXFR holds web at %v", addrs)
	}
	if static := axfrIn(t, key, d.dnsAddr, "example.com.", dns.TypeAXFR, 0); len(static) != 5 {
		t.Errorf("AXFR of example.com.: %d records, want 5", len(static))
	}
	ixfr := axfrIn(t, key, d.dnsAddr, "disco.internal.", dns.TypeIXFR, first+1)
	if len(ixfr) < 4 || ixfr[1].(*dns.SOA).Serial != first+1 || len(ixfr) >= len(rrs) {
		t.Errorf("IXFR from %d: %d records (AXFR %d)", first+1, len(ixfr), len(rrs))
	}
	if catcher.badCount() > 0 {
		t.Errorf("%d NOTIFY messages without a valid signature", catcher.badCount())
	}

	// A restart on the same data: the serial does not go back.
	d.terminate(t)
	d = startDisco(t, args...)
	after := d.query(t, "udp", "disco.internal.", dns.TypeSOA, 0).Answer[0].(*dns.SOA).Serial
	if after != soa.Serial && !(after-soa.Serial < 1<<31) {
		t.Errorf("serial %d after the restart, %d before", after, soa.Serial)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "zone-serial")); err != nil {
		t.Errorf("no serial file in the data dir: %v", err)
	}
}
