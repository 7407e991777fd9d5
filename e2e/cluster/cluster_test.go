package cluster_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"disco/store/etcdstore/etcdtest"
)

// backend is an HTTP health endpoint the tests turn on and off; it records
// when it was probed.
type backend struct {
	*httptest.Server
	healthy atomic.Bool
	mu      sync.Mutex
	probes  []time.Time
}

func newBackend(t *testing.T) *backend {
	b := &backend{}
	b.healthy.Store(true)
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		b.mu.Lock()
		b.probes = append(b.probes, time.Now())
		b.mu.Unlock()
		if !b.healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(b.Close)
	return b
}

// probedSince returns the first probe at or after t.
func (b *backend) probedSince(t time.Time) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.probes {
		if !p.Before(t) {
			return p, true
		}
	}
	return time.Time{}, false
}

func httpCheck(url string) string {
	return fmt.Sprintf(`,"checks":[{"type":"http","url":%q,"interval":"500ms","timeout":"400ms","fall":2}]`, url)
}

// TestRegisterAnywhereResolveEverywhere: a registration through any server
// is answered by every server, and so is a deregistration; a heartbeat
// through any server keeps a ttl check passing everywhere. It reports how
// long a registration takes to reach the other servers' DNS answers.
func TestRegisterAnywhereResolveEverywhere(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	s := []*server{
		startServer(t, "s1", ec.Endpoints()),
		startServer(t, "s2", ec.Endpoints()),
		startServer(t, "s3", ec.Endpoints()),
	}
	s[0].mustRegister("web", "web-1", "10.0.0.1", 8080, "")
	for _, srv := range s[1:] {
		waitFor(t, "web-1 answered by "+srv.name, 10*time.Second, func() bool {
			return slices.Equal(srv.lookup(serviceName("web")), []string{"10.0.0.1"})
		})
	}
	if code, body := s[2].api(http.MethodDelete, "/v1/services/web/instances/web-1", ""); code != http.StatusNoContent && code != http.StatusOK {
		t.Fatalf("deregister through s3: %d %s", code, body)
	}
	waitFor(t, "web-1 gone from s1", 10*time.Second, func() bool { return s[0].lookup(serviceName("web")) == nil })

	// Propagation: from the API's answer on one server to the next server
	// answering the new name.
	const n = 150
	delays := make([]time.Duration, 0, n)
	for i := range n {
		from, to := s[i%3], s[(i+1)%3]
		svc := fmt.Sprintf("p%d", i)
		from.mustRegister(svc, "a", "10.1.0.1", 80, "")
		acked := time.Now()
		deadline := acked.Add(10 * time.Second)
		for to.lookup(serviceName(svc)) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("%s not answered by %s within 10s", svc, to.name)
			}
			time.Sleep(200 * time.Microsecond)
		}
		delays = append(delays, time.Since(acked))
	}
	t.Logf("propagation from one server's 2xx to another's DNS answer over %d registrations: p50 %s, p99 %s, max %s",
		n, percentile(delays, .5), percentile(delays, .99), percentile(delays, 1))

	// A heartbeat through a server that does not check the instance
	// answers with the owner's result: passing, where it was critical.
	s[0].mustRegister("tick", "tick-1", "10.2.0.1", 80, `,"checks":[{"type":"ttl","ttl":"3s"}]`)
	own := owner(t, ec.Endpoints(), s, "tick", "tick-1")
	other := s[0]
	if other == own {
		other = s[1]
	}
	waitFor(t, "tick-1 known to "+other.name, 10*time.Second, func() bool { return other.status("tick", "tick-1") != "gone" })
	if st := other.status("tick", "tick-1"); st != "critical" {
		t.Fatalf("tick-1 is %s on %s before any heartbeat, want critical", st, other.name)
	}
	code, body := other.api(http.MethodPut, "/v1/services/tick/instances/tick-1/heartbeat", "")
	var view struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(body), &view); code != http.StatusOK || err != nil || view.Status != "passing" {
		t.Errorf("heartbeat through %s, which does not check tick-1 (%s does): %d %s, want 200 and passing", other.name, own.name, code, body)
	}

	// A ttl check renewed through every server in turn stays passing on all.
	for round := range 6 {
		srv := s[round%3]
		waitFor(t, "tick-1 known to "+srv.name, 10*time.Second, func() bool { return srv.status("tick", "tick-1") != "gone" })
		if code, body := srv.api(http.MethodPut, "/v1/services/tick/instances/tick-1/heartbeat", ""); code != http.StatusOK {
			t.Fatalf("heartbeat through %s: %d %s", srv.name, code, body)
		}
		for _, other := range s {
			waitFor(t, "tick-1 passing on "+other.name, 10*time.Second, func() bool { return other.status("tick", "tick-1") == "passing" })
		}
		time.Sleep(time.Second)
	}
	for _, srv := range s {
		if st := srv.status("tick", "tick-1"); st != "passing" {
			t.Errorf("tick-1 is %s on %s while heartbeats arrive", st, srv.name)
		}
	}
	// Without heartbeats it expires, everywhere.
	for _, srv := range s {
		waitFor(t, "tick-1 critical on "+srv.name, 15*time.Second, func() bool { return srv.status("tick", "tick-1") == "critical" })
	}
	if code, _ := s[1].api(http.MethodPut, "/v1/services/web/instances/nope/heartbeat", ""); code != http.StatusNotFound {
		t.Errorf("heartbeat of an unknown instance: %d, want 404", code)
	}
}

// TestChecksMoveWhenServerDies: the instance's checks run on one server;
// when that server is killed, another takes them over within the member
// ttl, the instance stays passing meanwhile, and a failure after the
// takeover is detected and answered by every survivor.
func TestChecksMoveWhenServerDies(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	ttl := []string{"--member-ttl", "2s"}
	s := []*server{
		startServer(t, "s1", ec.Endpoints(), ttl...),
		startServer(t, "s2", ec.Endpoints(), ttl...),
		startServer(t, "s3", ec.Endpoints(), ttl...),
	}
	b := newBackend(t)
	// Let the servers see each other before the instance is placed.
	for _, srv := range s {
		waitFor(t, srv.name+" sees three members", 10*time.Second, func() bool { return srv.metric("disco_cluster_members") == 3 })
	}
	s[0].mustRegister("hc", "hc-1", "127.0.0.1", 80, httpCheck(b.URL))
	for _, srv := range s {
		waitFor(t, "hc-1 answered by "+srv.name, 10*time.Second, func() bool {
			return slices.Equal(srv.lookup(serviceName("hc")), []string{"127.0.0.1"})
		})
	}
	dead := owner(t, ec.Endpoints(), s, "hc", "hc-1")
	var survivors []*server
	for _, srv := range s {
		if srv != dead {
			survivors = append(survivors, srv)
		}
	}
	dead.kill()
	killed := time.Now()
	var flapped []string
	takeover := waitFor(t, "a probe by another server", 20*time.Second, func() bool {
		for _, srv := range survivors {
			if st := srv.status("hc", "hc-1"); st != "passing" {
				flapped = append(flapped, srv.name+":"+st)
			}
		}
		_, ok := b.probedSince(killed.Add(600 * time.Millisecond)) // after any probe of the dead server in flight
		return ok
	})
	if len(flapped) > 0 {
		t.Errorf("hc-1 left passing during the takeover: %v", flapped)
	}
	b.healthy.Store(false)
	failed := time.Now()
	for _, srv := range survivors {
		waitFor(t, "hc-1 out of "+srv.name+"'s answers", 15*time.Second, func() bool { return srv.lookup(serviceName("hc")) == nil })
	}
	t.Logf("checks taken over %s after the owner was killed (member ttl 2s); failure detected and answered everywhere %s after it began",
		takeover.Round(time.Millisecond), time.Since(failed).Round(time.Millisecond))
}

// TestEtcdLeaderLoss: with a three-member etcd cluster, killing the leader
// fails writes with 503 at most during the election; they resume, and
// every server answers them.
func TestEtcdLeaderLoss(t *testing.T) {
	ec := etcdtest.Start(t, 3)
	s1 := startServer(t, "s1", ec.Endpoints())
	s2 := startServer(t, "s2", ec.Endpoints())
	s1.mustRegister("web", "before", "10.0.0.1", 80, "")
	waitFor(t, "before answered by s2", 10*time.Second, func() bool { return s2.lookup(serviceName("web")) != nil })

	leader := ec.Leader()
	leader.Kill()
	stopped := time.Now()
	var failures []string
	var resumed time.Duration
	for i := 0; ; i++ {
		code, body := s1.register("web", fmt.Sprintf("after-%d", i), "10.0.0.2", 80, "")
		if code == http.StatusOK {
			resumed = time.Since(stopped)
			break
		}
		if code != http.StatusServiceUnavailable {
			t.Fatalf("write during the election: %d %s, want 503", code, body)
		}
		failures = append(failures, body)
		if time.Since(stopped) > 30*time.Second {
			t.Fatalf("writes did not resume within 30s: %v", failures)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitFor(t, "both instances answered by s2", 15*time.Second, func() bool {
		return slices.Equal(s2.lookup(serviceName("web")), []string{"10.0.0.1", "10.0.0.2"})
	})
	t.Logf("etcd leader %s killed: writes resumed after %s (%d refused with 503)", leader.Name, resumed.Round(time.Millisecond), len(failures))
	if len(failures) > 0 && !strings.Contains(failures[0], "etcd") {
		t.Errorf("503 body %q does not say etcd is the trouble", failures[0])
	}
}

// TestEtcdOutage: with etcd gone entirely, every server keeps answering DNS
// from what it last knew, health checks keep running without flapping,
// writes fail with a clear 503, and the staleness metric grows. Once etcd
// is back, writes resume, nothing acknowledged is lost, and the health
// results of the outage reach every server.
func TestEtcdOutage(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	s := []*server{startServer(t, "s1", ec.Endpoints()), startServer(t, "s2", ec.Endpoints())}
	b := newBackend(t)
	var acked []string
	for i := range 5 {
		id := fmt.Sprintf("web-%d", i)
		s[i%2].mustRegister("web", id, fmt.Sprintf("10.0.0.%d", i+1), 80, "")
		acked = append(acked, fmt.Sprintf("10.0.0.%d", i+1))
	}
	s[0].mustRegister("hc", "hc-1", "127.0.0.1", 80, httpCheck(b.URL))
	for _, srv := range s {
		waitFor(t, "everything answered by "+srv.name, 10*time.Second, func() bool {
			return slices.Equal(srv.lookup(serviceName("web")), acked) && srv.lookup(serviceName("hc")) != nil
		})
	}

	ec.Members[0].Stop()
	// DNS keeps answering and the checked instance does not flap.
	for i := range 20 {
		for _, srv := range s {
			if got := srv.lookup(serviceName("web")); !slices.Equal(got, acked) {
				t.Fatalf("query %d to %s with etcd down: %v, want %v", i, srv.name, got, acked)
			}
			if got := srv.lookup(serviceName("hc")); got == nil {
				t.Fatalf("query %d to %s with etcd down: hc-1 dropped", i, srv.name)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, body := s[1].register("web", "web-x", "10.0.9.9", 80, "")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "etcd") {
		t.Errorf("write with etcd down: %d %s, want 503 naming etcd", code, body)
	}
	if code, _ := s[1].api(http.MethodPut, "/v1/services/hc/instances/hc-1/heartbeat", ""); code != http.StatusBadRequest {
		t.Errorf("heartbeat of an instance without ttl check: %d, want 400", code)
	}
	waitFor(t, "sync age above 1s on s1", 10*time.Second, func() bool { return s[0].metric("disco_store_last_sync_age_seconds") > 1 })
	// The backend fails during the outage: its owner sees it at once.
	b.healthy.Store(false)
	waitFor(t, "hc-1 critical somewhere", 10*time.Second, func() bool {
		return s[0].status("hc", "hc-1") == "critical" || s[1].status("hc", "hc-1") == "critical"
	})

	ec.Members[0].Restart()
	resumed := waitFor(t, "writes resume", 30*time.Second, func() bool {
		code, _ := s[1].register("web", "web-5", "10.0.0.6", 80, "")
		return code == http.StatusOK
	})
	acked = append(acked, "10.0.0.6")
	for _, srv := range s {
		waitFor(t, "every acknowledged write and the outage's health on "+srv.name, 15*time.Second, func() bool {
			return slices.Equal(srv.lookup(serviceName("web")), acked) && srv.status("hc", "hc-1") == "critical"
		})
		waitFor(t, "sync age back to normal on "+srv.name, 10*time.Second, func() bool {
			v := srv.metric("disco_store_last_sync_age_seconds")
			return v >= 0 && v < 1.5
		})
	}
	t.Logf("etcd back: writes resumed after %s", resumed.Round(time.Millisecond))
}

// TestServerStartsBeforeEtcd: a server started while etcd is down waits for
// it, saying so, and becomes ready once it has read the registry.
func TestServerStartsBeforeEtcd(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	first := startServer(t, "first", ec.Endpoints())
	first.mustRegister("web", "web-1", "10.0.0.1", 80, "")
	first.kill()
	ec.Members[0].Stop()
	s := launch(t, "late", ec.Endpoints())
	waitFor(t, "the server saying it waits for etcd", 15*time.Second, func() bool {
		return strings.Contains(readFile(s.logPath), "cannot read the registry from etcd")
	})
	if strings.Contains(readFile(s.logPath), "disco started") {
		t.Fatal("the server started without etcd")
	}
	ec.Members[0].Restart()
	s.waitStarted()
	if got := s.lookup(serviceName("web")); !slices.Equal(got, []string{"10.0.0.1"}) {
		t.Errorf("web answered with %v, want 10.0.0.1", got)
	}
}
