// Package notify tells secondary name servers that a zone changed, with
// DNS NOTIFY (RFC 1996) over UDP, so they transfer it at once instead of at
// their next refresh.
//
// Changes are coalesced per zone: at most one round of NOTIFY per zone per
// Interval, carrying the newest SOA. Each target is retried, with a backoff
// from one second up to MaxBackoff, until it answers; a newer change of the
// zone replaces what is being retried. Messages are signed with the TSIG
// key of Config.Key when one is set, and then the answer must be signed
// too.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"

	"disco/tsig"
)

// Defaults of Config.
const (
	DefaultInterval   = time.Second
	DefaultTimeout    = 2 * time.Second
	DefaultMaxBackoff = time.Minute
)

// Config configures a Notifier.
type Config struct {
	// Targets are the host:port addresses of the secondaries.
	Targets []string
	// Key signs the messages; nil sends them unsigned.
	Key *tsig.Key
	// Interval is the least time between two rounds of NOTIFY for one zone
	// (DefaultInterval).
	Interval time.Duration
	// Timeout is how long one attempt waits for the answer
	// (DefaultTimeout).
	Timeout time.Duration
	// MaxBackoff caps the wait between attempts (DefaultMaxBackoff).
	MaxBackoff time.Duration
	// Logger receives the notifier's logs; nil discards them.
	Logger *slog.Logger
	// OnSent, if set, is called after each answered NOTIFY with the zone,
	// the serial and how long after the change it was answered.
	OnSent func(zone string, serial uint32, latency time.Duration)
}

// Notifier sends NOTIFY messages. Notify may be called before and while Run
// runs; messages go out only while Run runs.
type Notifier struct {
	cfg  Config
	log  *slog.Logger
	wake chan struct{}

	mu    sync.Mutex
	zones map[string]*zone
}

// zone is the state of one zone.
type zone struct {
	soa     *dns.SOA // the newest
	changed time.Time
	pending bool      // a change not yet sent in a round
	last    time.Time // start of the last round
	targets map[string]*delivery
}

// delivery is the state of one zone at one target.
type delivery struct {
	soa      *dns.SOA // what to send
	changed  time.Time
	attempts int
	due      time.Time
	done     bool
	inflight bool
}

// New returns a notifier. It starts nothing; call Run.
func New(cfg Config) *Notifier {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Notifier{cfg: cfg, log: log.With("component", "notify"), wake: make(chan struct{}, 1),
		zones: make(map[string]*zone)}
}

// Notify records that zone now has soa. It never blocks.
func (n *Notifier) Notify(name string, soa *dns.SOA) {
	if len(n.cfg.Targets) == 0 {
		return
	}
	name = dns.CanonicalName(name)
	n.mu.Lock()
	z := n.zones[name]
	if z == nil {
		z = &zone{targets: make(map[string]*delivery)}
		n.zones[name] = z
	}
	if !z.pending {
		z.changed = time.Now() // the oldest change not yet sent
	}
	z.soa, z.pending = soa, true
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// result is the outcome of one attempt.
type result struct {
	zone, target string
	serial       uint32
	err          error
}

// Run sends the NOTIFY messages until ctx is done; it waits for the
// attempts in flight before it returns.
func (n *Notifier) Run(ctx context.Context) error {
	if len(n.cfg.Targets) == 0 {
		<-ctx.Done()
		return nil
	}
	results := make(chan result)
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := n.step(ctx, &wg, results)
		timer.Reset(max(time.Until(next), 0))
		select {
		case <-ctx.Done():
			return nil // the attempts in flight end with ctx
		case <-n.wake:
		case <-timer.C:
		case r := <-results:
			n.finish(r)
		}
	}
}

// step starts the rounds and attempts that are due and returns when the
// next one will be.
func (n *Notifier) step(ctx context.Context, wg *sync.WaitGroup, results chan<- result) time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	next := now.Add(time.Hour)
	for name, z := range n.zones {
		if z.pending {
			if start := z.last.Add(n.cfg.Interval); now.Before(start) {
				next = earlier(next, start)
			} else {
				z.pending, z.last = false, now
				for _, t := range n.cfg.Targets {
					d := z.targets[t]
					if d == nil {
						d = &delivery{}
						z.targets[t] = d
					}
					d.soa, d.changed, d.attempts, d.due, d.done = z.soa, z.changed, 0, now, false
				}
			}
		}
		for t, d := range z.targets {
			if d.done || d.inflight {
				continue
			}
			if now.Before(d.due) {
				next = earlier(next, d.due)
				continue
			}
			d.inflight = true
			d.attempts++
			wg.Add(1)
			go func(zone, target string, soa *dns.SOA) {
				defer wg.Done()
				err := n.send(ctx, zone, target, soa)
				select {
				case results <- result{zone: zone, target: target, serial: soa.Serial, err: err}:
				case <-ctx.Done():
				}
			}(name, t, d.soa)
		}
	}
	return next
}

// finish records the outcome of one attempt.
func (n *Notifier) finish(r result) {
	n.mu.Lock()
	defer n.mu.Unlock()
	d := n.zones[r.zone].targets[r.target]
	d.inflight = false
	if d.soa.Serial != r.serial {
		d.due = time.Now() // a newer SOA came meanwhile: send it at once
		return
	}
	if r.err == nil {
		d.done = true
		n.log.Debug("notify answered", "zone", r.zone, "target", r.target, "serial", r.serial, "attempts", d.attempts)
		if n.cfg.OnSent != nil {
			n.cfg.OnSent(r.zone, r.serial, time.Since(d.changed))
		}
		return
	}
	wait := min(time.Second<<min(d.attempts-1, 16), n.cfg.MaxBackoff)
	d.due = time.Now().Add(wait)
	level := slog.LevelDebug
	if d.attempts == 3 || d.attempts%30 == 0 {
		level = slog.LevelWarn // say so once it looks lasting, then now and then
	}
	n.log.Log(context.Background(), level, "notify not answered; retrying", "zone", r.zone, "target", r.target,
		"serial", r.serial, "attempts", d.attempts, "retry_in", wait, "err", r.err)
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// ErrRefused means the target answered the NOTIFY with an error rcode.
var ErrRefused = errors.New("notify refused")

// send sends one NOTIFY for zone with soa to target and waits for the
// answer.
func (n *Notifier) send(ctx context.Context, zone, target string, soa *dns.SOA) error {
	m := new(dns.Msg)
	m.SetNotify(zone)
	m.Authoritative = true
	m.Answer = []dns.RR{soa}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", target)
	if err != nil {
		return fmt.Errorf("dial %s: %w", target, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	var wire []byte
	var signer *tsig.Signer
	if n.cfg.Key != nil {
		signer = tsig.NewSigner(n.cfg.Key)
		wire, err = signer.Sign(m, time.Now())
	} else {
		wire, err = m.Pack()
	}
	if err != nil {
		return err
	}
	if _, err := conn.Write(wire); err != nil {
		return fmt.Errorf("send to %s: %w", target, err)
	}
	buf := make([]byte, dns.MaxMsgSize)
	for {
		k, err := conn.Read(buf)
		if err != nil {
			return fmt.Errorf("no answer from %s: %w", target, err)
		}
		resp := new(dns.Msg)
		if resp.Unpack(buf[:k]) != nil || !resp.Response || resp.Id != m.Id || resp.Opcode != dns.OpcodeNotify {
			continue // not the answer: keep waiting
		}
		if signer != nil {
			if err := signer.VerifyResponse(buf[:k], resp); err != nil {
				return fmt.Errorf("answer from %s: %w", target, err)
			}
		}
		if resp.Rcode != dns.RcodeSuccess {
			return fmt.Errorf("%w by %s: %s", ErrRefused, target, dns.RcodeToString[resp.Rcode])
		}
		return nil
	}
}
