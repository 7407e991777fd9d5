package etcdstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"disco/registry"
	"disco/store/etcdstore"
	"disco/store/etcdstore/etcdtest"
)

// node is one disco server's registry on the shared etcd: a registry whose
// store is an etcdstore.Store, kept up to date by Watch.
type node struct {
	t      *testing.T
	st     *etcdstore.Store
	reg    *registry.Registry
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error

	// keep names the instance whose health results from other servers
	// this node leaves out, as the server that checks it does.
	keep string

	mu         sync.Mutex
	heartbeats []registry.Key
	// health records the health results Watch handed over, as "id status
	// heartbeat".
	health []string
	// heartbeatRevs records the revisions of the heartbeats.
	heartbeatRevs []int64
}

// RemoteHealth implements etcdstore.Cluster: it records the result and
// applies it unless it is for n.keep.
func (n *node) RemoteHealth(k registry.Key, rev uint64, h registry.Health, heartbeat int64) {
	n.mu.Lock()
	n.health = append(n.health, fmt.Sprintf("%s %s %d", k.ID, h.Status, heartbeat))
	n.mu.Unlock()
	if k.ID != n.keep {
		n.reg.SetHealth(k, rev, h)
	}
}

// RemoteHeartbeat implements etcdstore.Cluster: it records the heartbeat.
func (n *node) RemoteHeartbeat(k registry.Key, rev int64) {
	n.mu.Lock()
	n.heartbeats = append(n.heartbeats, k)
	n.heartbeatRevs = append(n.heartbeatRevs, rev)
	n.mu.Unlock()
}

// newNode loads a registry from etcd under prefix and starts watching.
func newNode(t *testing.T, cli *clientv3.Client, prefix, member string) *node {
	t.Helper()
	n := &node{t: t, logs: &syncBuffer{}}
	n.st = etcdstore.New(cli, etcdstore.Options{Prefix: prefix, Member: member, Timeout: 2 * time.Second,
		ProgressInterval: 100 * time.Millisecond,
		Logger:           slog.New(slog.NewTextHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	n.reg = registry.New(registry.Config{Store: n.st, MaxBatch: etcdstore.MaxBatch})
	if err := n.reg.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.watch()
	t.Cleanup(n.stop)
	return n
}

func (n *node) watch() {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.done = cancel, make(chan error, 1)
	go func() { n.done <- n.st.Watch(ctx, n.reg, n) }()
}

func (n *node) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	if err := <-n.done; err != nil {
		n.t.Errorf("Watch returned %v", err)
	}
	n.cancel = nil
}

func (n *node) register(id, addr string, checks ...registry.Check) *registry.Instance {
	n.t.Helper()
	ap := netip.MustParseAddrPort(addr)
	in, err := registry.NewInstance("web", id, registry.Registration{Address: ap.Addr().String(), Port: int(ap.Port()), Checks: checks})
	if err != nil {
		n.t.Fatal(err)
	}
	got, err := n.reg.Register(context.Background(), in)
	if err != nil {
		n.t.Fatal(err)
	}
	return got
}

// waitFor waits up to 10s for the registry to satisfy cond.
func (n *node) waitFor(what string, cond func(*registry.Snapshot) bool) {
	n.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		s := n.reg.Snapshot()
		if cond(s) {
			return
		}
		select {
		case <-s.Changed():
		case <-timeout:
			n.t.Fatalf("not within 10s: %s; registry:\n%s", what, render(n.reg.Snapshot()))
		}
	}
}

// render writes a snapshot as text, one line per service and instance.
func render(s *registry.Snapshot) string {
	var b strings.Builder
	for _, svc := range s.Services() {
		fmt.Fprintf(&b, "%s", svc.Name())
		if ttl := svc.Settings().DNSTTL; ttl != nil {
			fmt.Fprintf(&b, " ttl=%d", *ttl)
		}
		b.WriteString("\n")
		for _, in := range svc.Instances() {
			fmt.Fprintf(&b, "  %s %s %s %q", in.ID, netip.AddrPortFrom(in.Address, in.Port), in.Status(), in.Health.Output)
			if in.Maintenance != nil {
				fmt.Fprintf(&b, " drained=%q", in.Maintenance.Reason)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func has(id string) func(*registry.Snapshot) bool {
	return func(s *registry.Snapshot) bool { _, ok := s.Instance("web", id); return ok }
}

func keys(t *testing.T, cli *clientv3.Client, prefix string) []string {
	t.Helper()
	resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, kv := range resp.Kvs {
		out = append(out, strings.TrimPrefix(string(kv.Key), prefix))
	}
	slices.Sort(out)
	return out
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func intp(v int) *int { return &v }

var tcp = registry.Check{Type: registry.CheckTCP, Address: "10.0.0.1:80"}

// TestCommitAndLoad writes through one registry and loads another from the
// same prefix: it holds the same, and deregistering removes the instance's
// health and heartbeat records with it.
func TestCommitAndLoad(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	cli := ec.Client()
	ctx := context.Background()
	a := newNode(t, cli, "/t1/", "a")
	a.register("a1", "10.0.0.1:80")
	a2 := a.register("a2", "10.0.0.2:80", tcp)
	if _, err := a.reg.SetSettings(ctx, "web", registry.Settings{DNSTTL: intp(30)}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.reg.SetMaintenance(ctx, "web", "a1", true, "rack move"); err != nil {
		t.Fatal(err)
	}
	if err := a.st.PutHealth(ctx, a2.Key(), a2.Revision, registry.Health{Status: registry.StatusPassing, Output: "connected"}, 0); err != nil {
		t.Fatal(err)
	}
	a3 := a.register("a3", "10.0.0.3:80", tcp)
	if err := a.st.PutHealth(ctx, a3.Key(), a3.Revision, registry.Health{Status: registry.StatusPassing, Output: "up"}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := a.st.PutHeartbeat(ctx, a3.Key()); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(keys(t, cli, "/t1/")),
		"[health/web/a2 health/web/a3 heartbeats/web/a3 instances/web/a1 instances/web/a2 instances/web/a3 schema services/web]"; got != want {
		t.Errorf("keys %s\nwant %s", got, want)
	}
	if err := a.reg.Deregister(ctx, "web", "a3"); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(keys(t, cli, "/t1/")),
		"[health/web/a2 instances/web/a1 instances/web/a2 schema services/web]"; got != want {
		t.Errorf("after deregistration: keys %s\nwant %s", got, want)
	}

	b := newNode(t, cli, "/t1/", "b")
	want := "web ttl=30\n  a1 10.0.0.1:80 maintenance \"no checks\" drained=\"rack move\"\n  a2 10.0.0.2:80 passing \"connected\"\n"
	if got := render(b.reg.Snapshot()); got != want {
		t.Errorf("loaded\n%s\nwant\n%s", got, want)
	}
	// Another prefix is another registry.
	if c := newNode(t, cli, "/t2", "c"); render(c.reg.Snapshot()) != "" {
		t.Errorf("prefix /t2/ holds\n%s", render(c.reg.Snapshot()))
	}
}

// TestWatch: what one server writes reaches the other, and a server does
// not apply its own commits a second time.
func TestWatch(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	cli := ec.Client()
	ctx := context.Background()
	a := newNode(t, cli, "/w/", "a")
	b := newNode(t, cli, "/w/", "b")

	in := a.register("a1", "10.0.0.1:80", tcp)
	b.waitFor("a1 registered through a", has("a1"))
	// b learns a's health results; a does not apply its own again.
	if err := a.st.PutHealth(ctx, in.Key(), in.Revision, registry.Health{Status: registry.StatusPassing, Output: "connected"}, 0); err != nil {
		t.Fatal(err)
	}
	b.waitFor("a1 passing", func(s *registry.Snapshot) bool {
		in, ok := s.Instance("web", "a1")
		return ok && in.Status() == registry.StatusPassing
	})
	// Re-registration with the same targets keeps the health everywhere.
	if _, err := a.reg.SetMaintenance(ctx, "web", "a1", true, "drain"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.reg.SetSettings(ctx, "web", registry.Settings{DNSTTL: intp(7)}); err != nil {
		t.Fatal(err)
	}
	b.waitFor("settings", func(s *registry.Snapshot) bool {
		svc, ok := s.Service("web")
		return ok && svc.Settings().DNSTTL != nil
	})
	if got, want := render(b.reg.Snapshot()), "web ttl=7\n  a1 10.0.0.1:80 maintenance \"connected\" drained=\"drain\"\n"; got != want {
		t.Errorf("b holds\n%s\nwant\n%s", got, want)
	}

	// a's own commits are not applied again: the only versions a publishes
	// besides its own writes are b's.
	before := a.reg.Snapshot().Version()
	a.register("a2", "10.0.0.2:80")
	b.register("b1", "10.0.0.3:80")
	a.waitFor("b1 registered through b", has("b1"))
	if got := a.reg.Snapshot().Version(); got != before+2 {
		t.Errorf("a published %d versions for its write and b's, want 2", got-before)
	}

	if err := b.reg.Deregister(ctx, "web", "a1"); err != nil {
		t.Fatal(err)
	}
	a.waitFor("a1 deregistered through b", func(s *registry.Snapshot) bool { return !has("a1")(s) })
	if got, want := render(a.reg.Snapshot()), render(b.reg.Snapshot()); got != want {
		t.Errorf("a holds\n%s\nb holds\n%s", got, want)
	}
}

// TestConcurrentWriters races writes to the same instances through three
// servers; once quiet, all three hold what etcd holds.
func TestConcurrentWriters(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	cli := ec.Client()
	nodes := []*node{newNode(t, cli, "/c/", "a"), newNode(t, cli, "/c/", "b"), newNode(t, cli, "/c/", "c")}
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			for j := range 60 {
				id := fmt.Sprintf("x%d", j%5)
				if j%7 == 3 {
					if err := n.reg.Deregister(context.Background(), "web", id); err != nil && !errors.Is(err, registry.ErrNotFound) {
						t.Error(err)
					}
					continue
				}
				n.register(id, fmt.Sprintf("10.0.%d.%d:80", i, j+1))
			}
		})
	}
	wg.Wait()
	// A last write through each, seen by all, marks the end of the race.
	for i, n := range nodes {
		n.register(fmt.Sprintf("end%d", i), "10.0.9.9:80")
	}
	for _, n := range nodes {
		n.waitFor("every end marker", func(s *registry.Snapshot) bool { return has("end0")(s) && has("end1")(s) && has("end2")(s) })
	}
	fresh := newNode(t, cli, "/c/", "fresh")
	want := render(fresh.reg.Snapshot())
	for i, n := range nodes {
		if got := render(n.reg.Snapshot()); got != want {
			t.Errorf("server %d holds\n%s\netcd holds\n%s", i, got, want)
		}
	}
}

// TestHeartbeats: a heartbeat written through one server reaches every
// server's Cluster with its revision; one for an unknown instance is
// refused.
func TestHeartbeats(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	cli := ec.Client()
	a := newNode(t, cli, "/h/", "a")
	b := newNode(t, cli, "/h/", "b")
	in := a.register("a1", "10.0.0.1:80", registry.Check{Type: registry.CheckTTL, TTL: registry.Duration(time.Minute)})
	rev, err := a.st.PutHeartbeat(context.Background(), in.Key())
	if err != nil {
		t.Fatal(err)
	}
	if _, err = a.st.PutHeartbeat(context.Background(), registry.Key{Service: "web", ID: "nope"}); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("heartbeat of an unknown instance: %v, want ErrNotFound", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	want := fmt.Sprintf("[web/a1] [%d]", rev)
	for {
		b.mu.Lock()
		got := fmt.Sprint(b.heartbeats, " ", b.heartbeatRevs)
		b.mu.Unlock()
		if got == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b's heartbeats: %s, want %s", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCompaction: a server whose watch fell behind a compaction reads the
// registry again and ends up holding what etcd holds, keeping the health of
// unchanged instances.
func TestCompaction(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	cli := ec.Client()
	ctx := context.Background()
	a := newNode(t, cli, "/k/", "a")
	b := newNode(t, cli, "/k/", "b")
	kept := a.register("kept", "10.0.0.1:80", tcp)
	a.register("gone", "10.0.0.2:80")
	if err := a.st.PutHealth(ctx, kept.Key(), kept.Revision, registry.Health{Status: registry.StatusPassing, Output: "connected"}, 0); err != nil {
		t.Fatal(err)
	}
	b.waitFor("kept passing and gone registered", func(s *registry.Snapshot) bool {
		in, ok := s.Instance("web", "kept")
		return ok && in.Status() == registry.StatusPassing && has("gone")(s)
	})

	b.stop()
	if err := a.reg.Deregister(ctx, "web", "gone"); err != nil {
		t.Fatal(err)
	}
	a.register("new", "10.0.0.3:80")
	resp, err := cli.Get(ctx, "/k/schema")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	b.watch()
	b.waitFor("new registered while b was behind", has("new"))
	want := "web\n  kept 10.0.0.1:80 passing \"connected\"\n  new 10.0.0.3:80 passing \"no checks\"\n"
	if got := render(b.reg.Snapshot()); got != want {
		t.Errorf("b holds\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(b.logs.String(), "reading the registry again") {
		t.Error("b did not log the reload")
	}
}

// TestBadRecords: Load refuses a record it cannot read, naming its key, and
// a newer schema; Watch leaves a bad record out and goes on.
func TestBadRecords(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	cli := ec.Client()
	ctx := context.Background()
	put := func(k, v string) {
		if _, err := cli.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	load := func(prefix string) error {
		return registry.New(registry.Config{Store: etcdstore.New(cli, etcdstore.Options{Prefix: prefix})}).Load(ctx)
	}
	put("/bad1/instances/web/a1", `{"service":"web","id":"a1","port":80}`)
	if err := load("/bad1/"); err == nil || !strings.Contains(err.Error(), "etcd key /bad1/instances/web/a1") {
		t.Errorf("Load of a bad instance: %v", err)
	}
	put("/bad2/schema", "2")
	if err := load("/bad2/"); err == nil || !strings.Contains(err.Error(), "schema version 2") {
		t.Errorf("Load of a newer schema: %v", err)
	}

	b := newNode(t, cli, "/bad4/", "b")
	put("/bad4/instances/web/x1", "not json")
	put("/bad4/instances/web/x2", `{"service":"web","id":"x2","address":"10.0.0.2","port":80,"tags":[],"meta":{},"weight":1,"priority":1,"checks":[],"registered":"2025-01-01T00:00:00Z","revision":3}`)
	b.waitFor("the good record after the bad one", has("x2"))
	if has("x1")(b.reg.Snapshot()) {
		t.Error("the bad record was applied")
	}
	if !strings.Contains(b.logs.String(), "bad record left out") {
		t.Error("the bad record was not logged")
	}
}

// TestLastSync: while nothing is written, confirmed watch progress keeps
// LastSync moving; with etcd gone it stays where it was, and moves again
// once etcd is back.
func TestLastSync(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	a := newNode(t, ec.Client(), "/s/", "a")
	advances := func(what string) {
		t.Helper()
		from := a.st.LastSync()
		deadline := time.Now().Add(10 * time.Second)
		for !a.st.LastSync().After(from) {
			if time.Now().After(deadline) {
				t.Fatalf("LastSync did not move within 10s %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	advances("while idle")
	ec.Members[0].Stop()
	// Let a progress request in flight at the stop answer.
	time.Sleep(300 * time.Millisecond)
	stale := a.st.LastSync()
	time.Sleep(500 * time.Millisecond) // five progress intervals
	if got := a.st.LastSync(); !got.Equal(stale) {
		t.Errorf("LastSync moved from %s to %s with etcd stopped", stale, got)
	}
	ec.Members[0].Restart()
	advances("after etcd came back")
}

// TestClusterHealth: Watch hands the other servers' health results to the
// Cluster, with the heartbeat each answers, and the Cluster decides which
// are applied.
func TestClusterHealth(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	cli := ec.Client()
	ctx := context.Background()
	a := newNode(t, cli, "/f/", "a")
	st := etcdstore.New(cli, etcdstore.Options{Prefix: "/f/", Member: "b"})
	b := &node{t: t, st: st, logs: &syncBuffer{}, reg: registry.New(registry.Config{Store: st}), keep: "mine"}
	if err := b.reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	b.watch()
	t.Cleanup(b.stop)
	mine := a.register("mine", "10.0.0.1:80", tcp)
	theirs := a.register("theirs", "10.0.0.2:80", tcp)
	for i, in := range []*registry.Instance{mine, theirs} {
		if err := a.st.PutHealth(ctx, in.Key(), in.Revision, registry.Health{Status: registry.StatusPassing, Output: "ok"}, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	b.waitFor("theirs passing", func(s *registry.Snapshot) bool {
		in, ok := s.Instance("web", "theirs")
		return ok && in.Status() == registry.StatusPassing
	})
	if in, _ := b.reg.Snapshot().Instance("web", "mine"); in.Status() != registry.StatusCritical {
		t.Errorf("mine is %s on b, want left critical", in.Status())
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if got := fmt.Sprint(b.health); got != "[mine passing 0 theirs passing 1]" {
		t.Errorf("handed over %s", got)
	}
}

// TestCommitBatches: one commit may name an instance several times (the
// last change wins) and may be larger than one etcd transaction takes.
func TestCommitBatches(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	cli := ec.Client()
	ctx := context.Background()
	st := etcdstore.New(cli, etcdstore.Options{Prefix: "/b/"})
	mk := func(id, addr string) *registry.Instance {
		in, err := registry.NewInstance("web", id, registry.Registration{Address: addr, Port: 80})
		if err != nil {
			t.Fatal(err)
		}
		in.Revision = 1
		return in
	}
	put := func(in *registry.Instance) registry.Change {
		return registry.Change{Op: registry.OpPutInstance, Service: "web", Instance: in}
	}
	del := func(id string) registry.Change {
		return registry.Change{Op: registry.OpDeleteInstance, Service: "web", ID: id}
	}
	var big []registry.Change
	for i := range 100 {
		big = append(big, put(mk(fmt.Sprintf("i%d", i), "10.0.0.1")))
	}
	if err := st.Commit(ctx, big); err != nil {
		t.Fatal(err)
	}
	var dels []registry.Change
	for i := range 60 { // 180 operations: more than one transaction
		dels = append(dels, del(fmt.Sprintf("i%d", i)))
	}
	dels = append(dels, put(mk("x", "10.0.0.1")), del("x"), put(mk("x", "10.0.0.2")), put(mk("y", "10.0.0.3")), del("y"))
	if err := st.Commit(ctx, dels); err != nil {
		t.Fatal(err)
	}
	reg := registry.New(registry.Config{Store: etcdstore.New(cli, etcdstore.Options{Prefix: "/b/"})})
	if err := reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	svc, _ := reg.Snapshot().Service("web")
	if n := len(svc.Instances()); n != 41 {
		t.Errorf("%d instances, want 40 left and x", n)
	}
	if x, ok := svc.Instance("x"); !ok || x.Address.String() != "10.0.0.2" {
		t.Errorf("x = %+v, want the last put (10.0.0.2)", x)
	}
	if _, ok := svc.Instance("y"); ok {
		t.Error("y was deleted last but is stored")
	}
	// A change the registry would refuse fails the commit and stores nothing.
	bad := mk("z", "10.0.0.1")
	bad.Revision = 0
	if err := st.Commit(ctx, []registry.Change{put(mk("w", "10.0.0.1")), put(bad)}); err == nil || !strings.Contains(err.Error(), "change 2") {
		t.Errorf("commit of a bad change: %v", err)
	}
	if got := keys(t, cli, "/b/instances/web/w"); len(got) != 0 {
		t.Error("a failed commit stored part of its changes")
	}
}
