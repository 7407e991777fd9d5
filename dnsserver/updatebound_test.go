package dnsserver

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"disco/registry"
)

// gatedStore is a registry store whose commits wait until the gate is
// closed, as a stalled disk would make them.
type gatedStore struct{ gate chan struct{} }

func (g gatedStore) Load(context.Context) (*registry.State, error) { return &registry.State{}, nil }
func (g gatedStore) Commit(context.Context, []registry.Change) error {
	<-g.gate
	return nil
}

// TestUpdatesBounded runs the real server with room for 4 updates in
// flight over a store that does not finish its commits: the fifth and
// later UPDATEs get SERVFAIL at once, queries are answered meanwhile over
// UDP and TCP, and once the store finishes the four are applied.
func TestUpdatesBounded(t *testing.T) {
	const slots = 4
	gate := make(chan struct{})
	reg := registry.New(registry.Config{Store: gatedStore{gate}})
	h := updateHandler(t, reg, testConfig())
	h.upd.slots = make(chan struct{}, slots)
	srv := NewServer(ServerConfig{Addr: "127.0.0.1:0", Hooks: h.Hooks()}, h, nil)
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	addr := srv.Addr().String()
	secret := map[string]string{updKey: updSecret}

	send := func(i int, network string) (*dns.Msg, error) {
		name := fmt.Sprintf("u-%d.bound.%s", i, instanceZone)
		m := new(dns.Msg)
		m.SetUpdate(testZone)
		m.SetEdns0(1232, false)
		m.Insert(rrs(t, fmt.Sprintf("%s 60 A 10.9.0.%d", name, i+1), name+" 60 SRV 1 1 80 "+name))
		m.SetTsig(updKey, dns.HmacSHA256, 300, time.Now().Unix())
		c := &dns.Client{Net: network, Timeout: 10 * time.Second, TsigSecret: secret}
		r, _, err := c.Exchange(m, addr)
		return r, err
	}
	// Fill the slots, then ask for more.
	var wg sync.WaitGroup
	results := make(chan int, slots)
	for i := range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := send(i, "udp")
			if err != nil {
				t.Errorf("update %d: %v", i, err)
				return
			}
			results <- r.Rcode
		}()
	}
	waitFor(t, func() bool { return len(h.upd.slots) == slots })
	for i, network := range []string{"udp", "tcp", "udp"} {
		start := time.Now()
		r, err := send(slots+i, network)
		if err != nil {
			t.Fatalf("update over %s beyond the bound: %v", network, err)
		}
		if r.Rcode != dns.RcodeServerFailure || time.Since(start) > 2*time.Second {
			t.Errorf("update over %s beyond the bound: %s after %s, want SERVFAIL at once", network, dns.RcodeToString[r.Rcode], time.Since(start))
		}
		if e := findEDE(r); e == nil || e.ExtraText != busyText {
			t.Errorf("update over %s beyond the bound: EDE %v, want %q", network, e, busyText)
		}
	}
	for _, network := range []string{"udp", "tcp"} {
		m := new(dns.Msg)
		m.SetQuestion("ns1.disco.internal.", dns.TypeA)
		r, _, err := (&dns.Client{Net: network, Timeout: 2 * time.Second}).Exchange(m, addr)
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Errorf("query over %s while updates wait: %v %v", network, err, r)
		}
	}
	close(gate)
	wg.Wait()
	close(results)
	for rc := range results {
		if rc != dns.RcodeSuccess {
			t.Errorf("an update in a slot got %s", dns.RcodeToString[rc])
		}
	}
	if svc, ok := reg.Snapshot().Service("bound"); !ok || len(svc.Instances()) != slots {
		t.Errorf("registry: %v instances, want the %d that had slots", svc, slots)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
