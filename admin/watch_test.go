package admin_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"disco/admin"
	"disco/registry"
)

// indexOf returns an answer's X-Disco-Index.
func indexOf(t testing.TB, w *httptest.ResponseRecorder) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(w.Header().Get(admin.IndexHeader), 10, 64)
	if err != nil {
		t.Fatalf("%s = %q: %v", admin.IndexHeader, w.Header().Get(admin.IndexHeader), err)
	}
	return n
}

// pending is a request running in the background.
type pending struct {
	done  chan *httptest.ResponseRecorder
	start time.Time
}

func (e *env) start(t testing.TB, path string) *pending {
	p := &pending{done: make(chan *httptest.ResponseRecorder, 1), start: time.Now()}
	go func() { p.done <- e.do(t, request{method: "GET", path: path}) }()
	return p
}

// answered returns the answer if the request has been answered.
func (p *pending) answered() (*httptest.ResponseRecorder, bool) {
	select {
	case w := <-p.done:
		return w, true
	default:
		return nil, false
	}
}

func (e *env) register(t testing.TB, service, id string) {
	t.Helper()
	in, err := registry.NewInstance(service, id, registry.Registration{Address: "10.0.0.9", Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Register(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}

func TestBlockingQueries(t *testing.T) {
	t.Run("index header", func(t *testing.T) {
		e := newEnv(t, nil)
		w := e.do(t, request{method: "GET", path: "/v1/services"})
		var list admin.ServiceList
		decode(t, w, &list)
		if n := indexOf(t, w); n != list.Version || n != e.reg.Snapshot().Version() {
			t.Errorf("list index %d, body version %d, registry version %d", n, list.Version, e.reg.Snapshot().Version())
		}
		w = e.do(t, request{method: "GET", path: "/v1/services/web"})
		var svc admin.ServiceView
		decode(t, w, &svc)
		if n := indexOf(t, w); n != svc.Index || n != e.reg.Snapshot().ServiceIndex("web") || n == 0 {
			t.Errorf("service index %d, body %d", n, svc.Index)
		}
	})

	t.Run("a service's waiters wake for it alone", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, nil)
			n := e.reg.Snapshot().ServiceIndex("web")
			list := e.reg.Snapshot().Version()
			web := e.start(t, "/v1/services/web?index="+strconv.FormatUint(n, 10)+"&wait=1m")
			all := e.start(t, "/v1/services?index="+strconv.FormatUint(list, 10))
			synctest.Wait()
			if _, ok := web.answered(); ok {
				t.Fatal("a blocking query with the current index answered at once")
			}
			e.register(t, "db", "db-2")
			// A check run that changes nothing moves no index.
			in, _ := e.reg.Snapshot().Instance("web", "web-1")
			e.reg.ObserveCheck(in.Key(), in.Revision, registry.CheckRun{Time: time.Now(), Status: registry.StatusPassing})
			synctest.Wait()
			if _, ok := web.answered(); ok {
				t.Fatal("a change of db or a check run woke a waiter of web")
			}
			w, ok := all.answered()
			if !ok || indexOf(t, w) <= list {
				t.Fatalf("a waiter of the list was not woken by a change of db (answered %v)", ok)
			}
			time.Sleep(10 * time.Second)
			e.register(t, "web", "web-9")
			synctest.Wait()
			w, ok = web.answered()
			if !ok {
				t.Fatal("a change of web did not wake its waiter")
			}
			if took := time.Since(web.start); took != 10*time.Second {
				t.Errorf("answered %s after the request, want at the change, 10s", took)
			}
			var svc admin.ServiceView
			decode(t, w, &svc)
			if indexOf(t, w) <= n || len(svc.Instances) != 2 {
				t.Errorf("index %d after %d, %d instances; want a larger index and web-9", indexOf(t, w), n, len(svc.Instances))
			}
		})
	})

	t.Run("the wait ends with the same index", func(t *testing.T) {
		for _, tc := range []struct {
			wait     string
			min, max time.Duration
		}{
			{"2s", 2*time.Second - 2*time.Second/16, 2 * time.Second},
			{"3", 3*time.Second - 3*time.Second/16, 3 * time.Second},
			{"", admin.MaxWait - admin.MaxWait/16, admin.MaxWait},
			{"1h", admin.MaxWait - admin.MaxWait/16, admin.MaxWait}, // clamped
		} {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, nil)
				n := strconv.FormatUint(e.reg.Snapshot().ServiceIndex("web"), 10)
				path := "/v1/services/web?index=" + n
				if tc.wait != "" {
					path += "&wait=" + tc.wait
				}
				p := e.start(t, path)
				w := <-p.done
				took := time.Since(p.start)
				if w.Code != 200 || w.Header().Get(admin.IndexHeader) != n || took < tc.min || took > tc.max {
					t.Errorf("wait=%q: %d with index %s after %s; want 200 with index %s after %s to %s",
						tc.wait, w.Code, w.Header().Get(admin.IndexHeader), took, n, tc.min, tc.max)
				}
			})
		}
	})

	t.Run("another index answers at once", func(t *testing.T) {
		e := newEnv(t, nil)
		n := e.reg.Snapshot().ServiceIndex("web")
		for _, idx := range []uint64{0, n - 1, n + 100} { // earlier, or from before a restart
			w := e.do(t, request{method: "GET", path: "/v1/services/web?index=" + strconv.FormatUint(idx, 10) + "&wait=5m"})
			if w.Code != 200 || indexOf(t, w) != n {
				t.Errorf("index=%d: %d with index %d, want 200 at once with %d", idx, w.Code, indexOf(t, w), n)
			}
		}
	})

	t.Run("a missing service can be waited for", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, nil)
			w := e.do(t, request{method: "GET", path: "/v1/services/api"})
			if w.Code != http.StatusNotFound {
				t.Fatalf("missing service: %d", w.Code)
			}
			p := e.start(t, "/v1/services/api?index="+strconv.FormatUint(indexOf(t, w), 10))
			e.register(t, "web", "web-2")
			synctest.Wait()
			if _, ok := p.answered(); ok {
				t.Fatal("a waiter of a missing service was woken by another service")
			}
			e.register(t, "api", "api-1")
			synctest.Wait()
			if w, ok := p.answered(); !ok || w.Code != 200 {
				t.Fatalf("the service appeared: answered %v", ok)
			}
		})
	})

	t.Run("a request that goes away stops waiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, nil)
			ctx, cancel := context.WithCancel(context.Background())
			r := httptest.NewRequestWithContext(ctx, "GET", "/v1/services?index="+strconv.FormatUint(e.reg.Snapshot().Version(), 10), nil)
			done := make(chan struct{})
			go func() {
				e.handler.ServeHTTP(httptest.NewRecorder(), r)
				close(done)
			}()
			synctest.Wait()
			cancel()
			synctest.Wait()
			select {
			case <-done:
			default:
				t.Fatal("the handler still waits after its request ended")
			}
		})
	})
}

func TestBlockingBadInput(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		query, want string
	}{
		{"index=abc", `index "abc" is not a number`},
		{"index=-1", `index "-1" is not a number`},
		{"index=", `index "" is not a number`},
		{"index=1&wait=soon", `wait "soon" is not a duration`},
		{"index=1&wait=-5s", `wait "-5s" is not a duration`},
	} {
		for _, path := range []string{"/v1/services", "/v1/services/web"} {
			w := e.do(t, request{method: "GET", path: path + "?" + tc.query})
			var eb admin.ErrorBody
			decode(t, w, &eb)
			if w.Code != http.StatusBadRequest || !strings.Contains(eb.Error, tc.want) {
				t.Errorf("%s?%s: %d %q, want 400 saying %q", path, tc.query, w.Code, eb.Error, tc.want)
			}
		}
	}
}
