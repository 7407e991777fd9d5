package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"disco/admin"
)

// keyState is what the test knows of one instance: the version of the
// last acknowledged write (-1: deleted, 0: never written) and of a write
// sent but not answered when the server died.
type keyState struct {
	acked    int
	inflight int
	pending  bool
}

// versionBody is registration number v of an instance: every field says v,
// so a half-applied write would show.
func versionBody(v int) string {
	return fmt.Sprintf(`{"address":"10.9.%d.%d","port":%d,"tags":["v%d"],"meta":{"v":"%d"},"weight":%d}`,
		v/250%250, v%250+1, 1000+v, v, v, v%65535)
}

func checkVersion(in admin.InstanceView) (int, bool) {
	v, err := strconv.Atoi(in.Meta["v"])
	if err != nil {
		return 0, false
	}
	ok := in.Address == fmt.Sprintf("10.9.%d.%d", v/250%250, v%250+1) && in.Port == 1000+v &&
		len(in.Tags) == 1 && in.Tags[0] == fmt.Sprintf("v%d", v) && in.Weight == v%65535
	return v, ok
}

// TestCrashLosesNothingAcknowledged kills a real server with SIGKILL while
// 16 clients register, re-register and deregister instances, restarts it
// on the same data dir, and checks that every acknowledged write is there
// and nothing is half-applied. Several rounds run on the same data.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills server processes")
	}
	dataDir := t.TempDir()
	const clients, keysPerClient, rounds = 16, 40, 3
	states := make([][]keyState, clients)
	for c := range states {
		states[c] = make([]keyState, keysPerClient)
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	version := 0
	var vmu sync.Mutex
	nextVersion := func() int {
		vmu.Lock()
		defer vmu.Unlock()
		version++
		return version
	}
	totalAcked := 0
	for round := range rounds {
		p := startDisco(t, "--data-dir", dataDir)
		verify(t, hc, p, states, round)

		stop := make(chan struct{})
		var wg sync.WaitGroup
		acked := make([]int, clients)
		var ackedAny atomic.Bool
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					k := (i*7 + c) % keysPerClient
					st := &states[c][k]
					path := fmt.Sprintf("/v1/services/crash-%d/instances/k-%d", c%4, c*keysPerClient+k)
					method, body, v := "PUT", "", nextVersion()
					if i%5 == 4 {
						method, v = "DELETE", -1
					} else {
						body = versionBody(v)
					}
					st.inflight, st.pending = v, true
					req, _ := http.NewRequest(method, p.admin+path, strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+testToken)
					if body != "" {
						req.Header.Set("Content-Type", "application/json")
					}
					resp, err := hc.Do(req)
					if err != nil {
						return // the server died: this write stays pending
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					switch {
					case resp.StatusCode/100 == 2:
						// A DELETE of an instance that is not registered
						// succeeds too (deregistering is idempotent).
						st.acked, st.pending = v, false
						acked[c]++
						ackedAny.Store(true)
					default:
						t.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(600+300*round) * time.Millisecond)
		// On a loaded machine the first answers may come later: the kill
		// waits for one, within a bound.
		for deadline := time.Now().Add(wait); !ackedAny.Load() && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		p.kill(t)
		close(stop)
		wg.Wait()
		n := 0
		for _, a := range acked {
			n += a
		}
		if n == 0 {
			t.Fatalf("round %d: no write was acknowledged before the kill", round)
		}
		totalAcked += n
	}
	p := startDisco(t, "--data-dir", dataDir)
	verify(t, hc, p, states, rounds)
	if !t.Failed() {
		t.Logf("%d acknowledged writes over %d kill -9 rounds, none lost", totalAcked, rounds)
	}
}

// verify checks the restarted server against what was acknowledged.
func verify(t *testing.T, hc *http.Client, p *disco, states [][]keyState, round int) {
	t.Helper()
	got := map[string]admin.InstanceView{}
	for s := range 4 {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/services/crash-%d", p.admin, s), nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var view admin.ServiceView
		err = json.NewDecoder(resp.Body).Decode(&view)
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			continue
		}
		if err != nil {
			t.Fatalf("round %d: decode service: %v", round, err)
		}
		for _, in := range view.Instances {
			got[in.ID] = in
		}
	}
	for c, keys := range states {
		for k := range keys {
			st := &keys[k]
			id := fmt.Sprintf("k-%d", c*len(keys)+k)
			in, present := got[id]
			have := -1
			if present {
				v, ok := checkVersion(in)
				if !ok {
					t.Errorf("round %d: %s is half-applied: %+v", round, id, in)
					continue
				}
				have = v
			}
			want := st.acked
			if want == 0 {
				want = -1 // never written
			}
			if have != want && !(st.pending && have == st.inflight) {
				t.Errorf("round %d: %s holds version %d, acknowledged %d (pending %v: %d)", round, id, have, want, st.pending, st.inflight)
				continue
			}
			// What is on disk now is what the next round starts from.
			st.acked, st.pending = have, false
		}
	}
}
