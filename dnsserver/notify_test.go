package dnsserver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"disco/registry"
	"disco/zones"
)

// notifications records Config.Notify calls as "zone serial".
type notifications struct {
	mu  sync.Mutex
	got []string
}

func (n *notifications) notify(zone string, soa *dns.SOA) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, fmt.Sprintf("%s %d", zone, soa.Serial))
}

func (n *notifications) list() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.got)
}

// waitList waits until the list of notifications is want.
func (n *notifications) waitList(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := n.list()
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("notified %q, want %q", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func writeZone(t *testing.T, dir, origin string, serial int) {
	t.Helper()
	src := fmt.Sprintf("$ORIGIN %s\n$TTL 300\n@ SOA ns1 host %d 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\n", origin, serial)
	if err := os.WriteFile(filepath.Join(dir, origin+"zone"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRunNotifies: Run tells Config.Notify about every zone at the start,
// about the discovery zone after each visible change (at once, without a
// query), and about a static zone when a reload changes its serial.
func TestRunNotifies(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	writeZone(t, dir, "example.com.", 1)
	zm := zones.NewManager(dir, zones.Options{}, nil)
	if _, err := zm.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	reg := testRegistry(t, fixture, nil)
	n := &notifications{}
	cfg := testConfig()
	cfg.Notify = n.notify
	h := NewHandler(cfg, reg, zm, nil)
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	want := []string{fmt.Sprintf("disco.internal. %d", testSerial), "example.com. 1"}
	n.waitList(t, want...)

	in, _ := registry.NewInstance("web", "web-9", registry.Registration{Address: "10.0.0.9", Port: 80,
		Checks: []registry.Check{{Type: registry.CheckTTL, TTL: registry.Duration(time.Minute)}}})
	stored, err := reg.Register(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, fmt.Sprintf("disco.internal. %d", testSerial+1))
	n.waitList(t, want...)

	// Invisible to DNS: no NOTIFY.
	reg.SetHealth(stored.Key(), stored.Revision, registry.Health{Status: registry.StatusCritical, Output: "other text"})
	writeZone(t, dir, "example.com.", 1)
	if _, err := zm.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	n.waitList(t, want...)

	// A new serial, a new zone.
	writeZone(t, dir, "example.com.", 2)
	writeZone(t, dir, "example.net.", 7)
	if _, err := zm.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	want = append(want, "example.com. 2", "example.net. 7")
	n.waitList(t, want...)
}
