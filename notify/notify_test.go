package notify

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"disco/tsig"
)

const secret = "KkOLrzVLMGhOYI6ie8rShwMQ9jYGRu98kRvQwFSeccE="

// secondary is a DNS server on loopback UDP that takes NOTIFY messages as
// a secondary does: it answers them (signed when they are), after
// dropping the first `drop` of them.
type secondary struct {
	addr string
	drop atomic.Int32

	mu       sync.Mutex
	received []received
}

type received struct {
	zone   string
	serial uint32
	at     time.Time
	signed bool
	tsig   error
}

func startSecondary(t *testing.T, drop int32) *secondary {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &secondary{addr: pc.LocalAddr().String()}
	s.drop.Store(drop)
	srv := &dns.Server{PacketConn: pc, TsigSecret: map[string]string{"xfr.": secret},
		MsgAcceptFunc: func(dh dns.Header) dns.MsgAcceptAction { return dns.MsgAccept },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) {
			r := received{zone: m.Question[0].Name, at: time.Now(), signed: m.IsTsig() != nil}
			if m.IsTsig() != nil {
				r.tsig = w.TsigStatus()
			}
			if len(m.Answer) == 1 {
				if soa, ok := m.Answer[0].(*dns.SOA); ok {
					r.serial = soa.Serial
				}
			}
			s.mu.Lock()
			s.received = append(s.received, r)
			s.mu.Unlock()
			if m.Opcode != dns.OpcodeNotify || s.drop.Add(-1) >= 0 {
				return
			}
			resp := new(dns.Msg)
			resp.SetReply(m)
			if t := m.IsTsig(); t != nil {
				resp.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
			}
			_ = w.WriteMsg(resp)
		})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return s
}

func (s *secondary) got() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.received...)
}

func soa(serial uint32) *dns.SOA {
	return &dns.SOA{Hdr: dns.RR_Header{Name: "disco.internal.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 5},
		Ns: "ns1.disco.internal.", Mbox: "hostmaster.disco.internal.", Serial: serial}
}

// run starts n and returns a function that stops it and waits.
func run(t *testing.T, n *Notifier) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { wait(t, cancel, done) }) }
	t.Cleanup(stop)
	return stop
}

func wait(t *testing.T, cancel func(), done <-chan error) {
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Run did not return")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCoalesced: a burst of changes gives one NOTIFY now and one with the
// newest serial an interval later, not one per change.
func TestCoalesced(t *testing.T) {
	sec := startSecondary(t, 0)
	var sent atomic.Int32
	n := New(Config{Targets: []string{sec.addr}, Interval: 300 * time.Millisecond,
		OnSent: func(string, uint32, time.Duration) { sent.Add(1) }})
	run(t, n)
	start := time.Now()
	for s := uint32(1); s <= 20; s++ {
		n.Notify("disco.internal.", soa(s))
		time.Sleep(5 * time.Millisecond)
	}
	waitFor(t, "the newest serial", func() bool {
		r := sec.got()
		return len(r) > 0 && r[len(r)-1].serial == 20
	})
	time.Sleep(400 * time.Millisecond) // nothing more comes
	r := sec.got()
	if len(r) != 2 || r[0].serial != 1 {
		t.Fatalf("received %+v, want serial 1 at once and 20 later", r)
	}
	if gap := r[1].at.Sub(r[0].at); gap < 250*time.Millisecond {
		t.Errorf("second NOTIFY %s after the first, want at least the interval", gap)
	}
	if r[0].at.Sub(start) > 200*time.Millisecond {
		t.Errorf("first NOTIFY %s after the change", r[0].at.Sub(start))
	}
	if sent.Load() != 2 {
		t.Errorf("OnSent called %d times", sent.Load())
	}
}

// TestRetriedUntilAnswered: a secondary that drops the first messages
// gets them again until it answers; zones are independent.
func TestRetriedUntilAnswered(t *testing.T) {
	sec := startSecondary(t, 2)
	n := New(Config{Targets: []string{sec.addr}, Timeout: 100 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	run(t, n)
	n.Notify("disco.internal.", soa(7))
	waitFor(t, "an answered NOTIFY", func() bool { return sec.drop.Load() < 0 })
	time.Sleep(500 * time.Millisecond)
	if got := len(sec.got()); got != 3 {
		t.Errorf("received %d messages, want 3 (two dropped, one answered)", got)
	}
}

// TestSigned: with a key, messages are signed and the answer's signature
// is checked; an unsigned answer is not taken as one.
func TestSigned(t *testing.T) {
	sec := startSecondary(t, 0)
	k, err := tsig.NewKey("xfr", "hmac-sha256", secret)
	if err != nil {
		t.Fatal(err)
	}
	var answered atomic.Int32
	n := New(Config{Targets: []string{sec.addr}, Key: k, OnSent: func(string, uint32, time.Duration) { answered.Add(1) }})
	run(t, n)
	n.Notify("example.com.", soa(3))
	waitFor(t, "an answered NOTIFY", func() bool { return answered.Load() == 1 })
	r := sec.got()
	if !r[0].signed || r[0].tsig != nil || r[0].zone != "example.com." {
		t.Errorf("received %+v, want a valid signature for example.com.", r[0])
	}

	// A peer that answers without signing is not believed.
	err = n.send(context.Background(), "disco.internal.", startUnsigned(t), soa(4))
	if err == nil {
		t.Error("an unsigned answer to a signed NOTIFY was accepted")
	}
}

// startUnsigned starts a peer that answers every message unsigned.
func startUnsigned(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, MsgAcceptFunc: func(dns.Header) dns.MsgAcceptAction { return dns.MsgAccept },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) {
			resp := new(dns.Msg)
			resp.SetReply(m)
			resp.Extra = nil
			b, _ := resp.Pack()
			_, _ = w.Write(b)
		})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

// TestNoTargets: without targets Notify costs nothing and Run just waits.
func TestNoTargets(t *testing.T) {
	n := New(Config{})
	stop := run(t, n)
	n.Notify("disco.internal.", soa(1))
	stop()
}
