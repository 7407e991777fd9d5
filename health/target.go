package health

import (
	"fmt"
	"time"

	"disco/registry"
)

// target is one instance revision under watch: its checks and what the
// registry was last told about it. The monitor's mutex guards it.
type target struct {
	key    registry.Key
	rev    uint64
	checks []*check
	// reported is the health the registry holds (as far as we know).
	reported registry.Health
	// drained is set while the instance is in maintenance: it is checked
	// but not reaped.
	drained bool
	// undrained is when the instance last left maintenance; the reaping
	// clock starts again then.
	undrained time.Time
	// reaping is set while a Reap call is in flight.
	reaping bool
	// gone is set once the target is no longer watched (deregistered,
	// re-registered with other checks, or the monitor stopped); results
	// that arrive later are dropped.
	gone bool
}

// check is the state of one check of a target.
type check struct {
	t     *target
	n     int // index in the instance's checks
	spec  registry.Check
	phase time.Duration

	status registry.Status
	output string // the last result's output
	since  time.Time
	// passes and fails count the consecutive results of each kind (warning
	// counts as a pass); one of them is zero.
	passes, fails int
	// seen is set once the check has had a result (probe or heartbeat).
	seen bool
	// busy is set while a probe is waiting for a slot or running.
	busy bool

	next event // the next probe, or the expiry of a ttl check
	reap event // the deregistration of a check critical too long
}

// newTarget starts watching instance in as the registry holds it: each
// check starts at the instance's status.
func newTarget(in *registry.Instance, now time.Time) *target {
	t := &target{
		key:      in.Key(),
		rev:      in.Revision,
		reported: in.Health,
		drained:  in.Maintenance != nil,
	}
	status, since := in.Health.Status, in.Health.Since
	switch status {
	case registry.StatusPassing, registry.StatusWarning:
	default:
		status = registry.StatusCritical
	}
	if since.IsZero() {
		since = now
	}
	for i, spec := range in.Checks {
		c := &check{t: t, n: i, spec: spec, status: status, since: since, output: in.Health.Output}
		c.phase = phase(t.key, i, spec.Interval.Std())
		c.next = event{kind: probeEvent, c: c, idx: -1}
		if spec.Type == registry.CheckTTL {
			c.next.kind = expireEvent
		}
		c.reap = event{kind: reapEvent, c: c, idx: -1}
		t.checks = append(t.checks, c)
	}
	return t
}

// observe folds one result into the check's state and reports whether the
// check's status changed. A critical result counts towards fall, and the
// check turns critical at the fall-th in a row; passing and warning results
// count towards rise, and a critical check recovers at the rise-th in a
// row. Once a check is not critical it follows its results between passing
// and warning at once.
func (c *check) observe(r Result, now time.Time) bool {
	c.output = r.Output
	c.seen = true
	if r.Status == registry.StatusCritical {
		c.fails++
		c.passes = 0
		if c.status != registry.StatusCritical && c.fails >= c.spec.Fall {
			return c.set(registry.StatusCritical, now)
		}
		return false
	}
	c.passes++
	c.fails = 0
	if c.status == registry.StatusCritical && c.passes < c.spec.Rise {
		return false
	}
	return c.set(r.Status, now)
}

// expire makes a ttl check critical: no heartbeat came within its ttl.
func (c *check) expire(now time.Time) bool {
	c.output = fmt.Sprintf("no heartbeat within %s", c.spec.TTL)
	c.seen = true
	c.passes = 0
	return c.set(registry.StatusCritical, now)
}

func (c *check) set(s registry.Status, now time.Time) bool {
	if c.status == s {
		return false
	}
	c.status, c.since = s, now
	return true
}

// display is the check's output as reported, prefixed with prefix: the
// last result, and where it disagrees with the status, how far the
// thresholds are. The output is cut so that the whole stays within
// MaxOutput bytes.
func (c *check) display(prefix string) string {
	var note string
	switch {
	case c.status == registry.StatusCritical && c.passes > 0:
		note = fmt.Sprintf(" (pass %d of %d before passing)", c.passes, c.spec.Rise)
	case c.status != registry.StatusCritical && c.fails > 0:
		note = fmt.Sprintf(" (failure %d of %d before critical)", c.fails, c.spec.Fall)
	}
	return prefix + clean(c.output, MaxOutput-len(prefix)-len(note)) + note
}

// severity orders statuses from best to worst.
func severity(s registry.Status) int {
	switch s {
	case registry.StatusPassing:
		return 0
	case registry.StatusWarning:
		return 1
	}
	return 2
}

// health combines the checks: the instance is as bad as its worst check,
// and the output is that of the first check in the worst status, named by
// type and position when the instance has several checks.
func (t *target) health() (registry.Status, string) {
	var worst *check
	for _, c := range t.checks {
		if worst == nil || severity(c.status) > severity(worst.status) {
			worst = c
		}
	}
	if worst == nil {
		return registry.StatusPassing, "no checks"
	}
	var prefix string
	if len(t.checks) > 1 {
		prefix = fmt.Sprintf("%s check %d: ", worst.spec.Type, worst.n+1)
	}
	return worst.status, worst.display(prefix)
}

// reapAt is when check c, critical, makes its instance due for reaping.
func (c *check) reapAt() time.Time {
	from := c.since
	if c.t.undrained.After(from) {
		from = c.t.undrained
	}
	return from.Add(c.spec.DeregisterAfter.Std())
}
