package registry

import (
	"hash/fnv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// HistoryLen is how many status transitions the registry keeps for each
// instance; older ones are forgotten.
const HistoryLen = 20

// Transition is one change of an instance's status: of its status as the
// API shows it (maintenance wins over the checks), or, while it is in
// maintenance, of what its checks say.
type Transition struct {
	Time time.Time `json:"time"`
	From Status    `json:"from"`
	To   Status    `json:"to"`
	// Output is the check output that came with the change, or the
	// maintenance reason.
	Output string `json:"output"`
}

// CheckRun is what one run of an instance's checks concluded, as the
// health checks report it after every probe, heartbeat or expiry.
type CheckRun struct {
	// Time is when the run ended.
	Time time.Time
	// Status is the instance's status from its checks after the run, and
	// Output what the run said.
	Status Status
	Output string
	// Failures counts the consecutive failed results of the check that
	// failed most in a row (0 after a pass).
	Failures int
}

// Activity is what the registry remembers of an instance beyond its
// current state: its last check run and its recent transitions. It lives
// beside the snapshots, not in them: a check run that changes nothing
// publishes no new version. It is not durable.
type Activity struct {
	// LastCheck is the last check run; its Time is zero before the first.
	LastCheck CheckRun
	// History holds the last HistoryLen transitions, oldest first.
	History []Transition
}

// activityShards splits the activity map so that the health checks of
// many instances record their runs without contending on one lock.
const activityShards = 64

// activityLog holds the Activity of every instance that has any.
type activityLog struct {
	shards [activityShards]activityShard
}

type activityShard struct {
	mu sync.Mutex
	m  map[Key]*activity
}

// activity is the compact, mutable form of Activity: times as Unix
// nanoseconds and statuses as small codes, so that a full history costs
// HistoryLen × 32 bytes plus the outputs.
type activity struct {
	lastCheck int64
	failures  int32
	status    statusCode
	output    string
	// hist is a ring of at most HistoryLen transitions; once full, next
	// is the slot of the oldest (and of the next to write).
	hist []transition
	next int
}

type transition struct {
	at       int64
	from, to statusCode
	output   string
}

type statusCode uint8

var statusCodes = [...]Status{"", StatusPassing, StatusWarning, StatusCritical, StatusMaintenance}

func codeOf(s Status) statusCode {
	for i, v := range statusCodes {
		if v == s {
			return statusCode(i)
		}
	}
	return 0
}

func (c statusCode) status() Status { return statusCodes[c] }

// shard returns the shard of k, by FNV-1a of "service/id".
func (l *activityLog) shard(k Key) *activityShard {
	h := fnv.New32a()
	h.Write([]byte(k.Service))
	h.Write([]byte{'/'})
	h.Write([]byte(k.ID))
	return &l.shards[h.Sum32()%activityShards]
}

// entry returns k's activity, creating it; called with sh.mu held.
func (sh *activityShard) entry(k Key) *activity {
	a := sh.m[k]
	if a == nil {
		if sh.m == nil {
			sh.m = make(map[Key]*activity)
		}
		a = &activity{}
		sh.m[k] = a
	}
	return a
}

// maxHistoryOutput bounds the output kept with each transition, so that
// a full history costs at most HistoryLen × (32 + maxHistoryOutput) bytes.
const maxHistoryOutput = 256

// record appends a transition of k.
func (l *activityLog) record(k Key, t transition) {
	if len(t.output) > maxHistoryOutput {
		cut := maxHistoryOutput
		for cut > 0 && !utf8.RuneStart(t.output[cut]) {
			cut--
		}
		t.output = strings.Clone(t.output[:cut])
	}
	sh := l.shard(k)
	sh.mu.Lock()
	a := sh.entry(k)
	switch {
	case len(a.hist) < cap(a.hist):
		a.hist = append(a.hist, t)
	case len(a.hist) < HistoryLen:
		// Grow to at most HistoryLen, not to append's next power of two.
		h := make([]transition, len(a.hist), min(max(2*len(a.hist), 2), HistoryLen))
		copy(h, a.hist)
		a.hist = append(h, t)
	default:
		a.hist[a.next] = t
		a.next = (a.next + 1) % HistoryLen
	}
	sh.mu.Unlock()
}

// newRevision forgets k's last check run: its checks changed.
func (l *activityLog) newRevision(k Key) {
	sh := l.shard(k)
	sh.mu.Lock()
	if a := sh.m[k]; a != nil {
		a.lastCheck, a.status, a.output, a.failures = 0, 0, "", 0
	}
	sh.mu.Unlock()
}

// forget drops k's activity.
func (l *activityLog) forget(k Key) {
	sh := l.shard(k)
	sh.mu.Lock()
	delete(sh.m, k)
	sh.mu.Unlock()
}

// get returns k's activity as an Activity.
func (l *activityLog) get(k Key) (Activity, bool) {
	sh := l.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	a := sh.m[k]
	if a == nil {
		return Activity{}, false
	}
	out := Activity{LastCheck: a.run(), History: make([]Transition, 0, len(a.hist))}
	for i := range a.hist {
		t := a.hist[(a.next+i)%len(a.hist)]
		out.History = append(out.History, Transition{Time: fromNanos(t.at), From: t.from.status(), To: t.to.status(), Output: t.output})
	}
	return out, true
}

// lastCheck returns k's last check run without copying its history.
func (l *activityLog) lastCheck(k Key) (CheckRun, bool) {
	sh := l.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	a := sh.m[k]
	if a == nil || a.lastCheck == 0 {
		return CheckRun{}, false
	}
	return a.run(), true
}

func (a *activity) run() CheckRun {
	if a.lastCheck == 0 {
		return CheckRun{}
	}
	return CheckRun{Time: fromNanos(a.lastCheck), Status: a.status.status(), Output: a.output, Failures: int(a.failures)}
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// follow records what changed between two versions of one service (either
// may be nil): the transitions of the instances in both, and forgets the
// activity of the instances that are gone. now dates changes that carry no
// time of their own.
func (l *activityLog) follow(prev, next *Service, now time.Time) {
	var a, b []*Instance
	if prev != nil {
		a = prev.all
	}
	if next != nil {
		b = next.all
	}
	i, j := 0, 0
	for i < len(a) {
		if j < len(b) && a[i] == b[j] {
			i, j = i+1, j+1
			continue
		}
		switch {
		case j >= len(b) || a[i].ID < b[j].ID:
			l.forget(a[i].Key())
			i++
		case a[i].ID > b[j].ID:
			j++ // a new instance: nothing happened to it yet
		default:
			if a[i].Revision != b[j].Revision {
				l.newRevision(b[j].Key())
			}
			if t, ok := transitionOf(a[i], b[j], now); ok {
				l.record(b[j].Key(), t)
			}
			i, j = i+1, j+1
		}
	}
}

// transitionOf returns the transition from old to in, two versions of one
// instance, if their status (or, in maintenance, their checks' status)
// differs.
func transitionOf(old, in *Instance, now time.Time) (transition, bool) {
	from, to := old.Status(), in.Status()
	switch {
	case from != to:
	case old.Health.Status != in.Health.Status:
		from, to = old.Health.Status, in.Health.Status
	default:
		return transition{}, false
	}
	t := transition{at: nanos(now), from: codeOf(from), to: codeOf(to), output: in.Health.Output}
	switch {
	case in.Maintenance != nil && old.Maintenance == nil:
		t.at, t.output = nanos(in.Maintenance.Since), in.Maintenance.Reason
	case old.Health.Status != in.Health.Status && !in.Health.Since.IsZero():
		t.at = nanos(in.Health.Since)
	}
	if t.at == 0 {
		t.at = nanos(now)
	}
	return t, true
}

// ObserveCheck records a run of the checks of instance k at revision rev:
// its time, outcome and consecutive failures. It publishes nothing and moves
// no index; a run for an instance that is not registered at that revision
// is ignored. The health checks call it after every probe.
func (r *Registry) ObserveCheck(k Key, rev uint64, run CheckRun) {
	sh := r.activity.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	// Checked under the shard's lock: publish forgets a removed instance's
	// activity under it after storing the snapshot that removes it, so a
	// run cannot bring it back.
	in, ok := r.current.Load().Instance(k.Service, k.ID)
	if !ok || in.Revision != rev {
		return
	}
	a := sh.entry(k)
	a.lastCheck = nanos(run.Time)
	a.status = codeOf(run.Status)
	a.output = run.Output
	a.failures = int32(min(run.Failures, 1<<31-1))
}

// Activity returns what the registry remembers of instance k: its last
// check run and recent transitions.
func (r *Registry) Activity(k Key) (Activity, bool) { return r.activity.get(k) }

// LastCheck returns the last check run of instance k, if it had one.
func (r *Registry) LastCheck(k Key) (CheckRun, bool) { return r.activity.lastCheck(k) }
