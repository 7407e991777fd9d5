package health

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"disco/registry"
)

func httpCheck(url string, timeout time.Duration) registry.Check {
	return registry.Check{Type: registry.CheckHTTP, URL: url,
		Interval: registry.Duration(10 * time.Second), Timeout: registry.Duration(timeout), Rise: 1, Fall: 3}
}

func TestHTTPChecker(t *testing.T) {
	var otherHits atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherHits.Add(1)
	}))
	defer other.Close()

	var mu sync.Mutex
	agents := map[string]bool{}
	var loops atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fine") })
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/same", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/other", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/https", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://"+r.Host+"/ok", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		loops.Add(1)
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	mux.HandleFunc("/busy", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "slow down", http.StatusTooManyRequests)
	})
	mux.HandleFunc("/error", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "db down\nsecond line", http.StatusInternalServerError)
	})
	mux.HandleFunc("/unavailable", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, strings.Repeat("x\x00\x1b", 5000))
	})
	mux.HandleFunc("/notfound", http.NotFound)
	mux.HandleFunc("/agent", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		agents[r.UserAgent()] = true
		mu.Unlock()
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tests := []struct {
		path   string
		status registry.Status
		output string
	}{
		{"/ok", registry.StatusPassing, "HTTP 200 OK"},
		{"/nocontent", registry.StatusPassing, "HTTP 204 No Content"},
		{"/same", registry.StatusPassing, "HTTP 200 OK"},
		{"/other", registry.StatusCritical, "HTTP 301 Moved Permanently (redirect to " + other.URL + "/ not followed)"},
		{"/https", registry.StatusCritical, "HTTP 301 Moved Permanently (redirect to https://" + strings.TrimPrefix(srv.URL, "http://") + "/ok not followed)"},
		{"/loop", registry.StatusCritical, "HTTP 302 Found (redirect to /loop not followed)"},
		{"/busy", registry.StatusWarning, "HTTP 429 Too Many Requests: slow down"},
		{"/error", registry.StatusCritical, "HTTP 500 Internal Server Error: db down"},
		{"/notfound", registry.StatusCritical, "HTTP 404 Not Found: 404 page not found"},
		{"/unavailable", registry.StatusCritical, "HTTP 503 Service Unavailable: x x x"},
		{"/agent", registry.StatusPassing, "HTTP 200 OK"},
	}
	h := NewHTTPChecker()
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.path, "/"), func(t *testing.T) {
			got := h.Check(context.Background(), httpCheck(srv.URL+tt.path, 5*time.Second)).normalize()
			if got.Status != tt.status {
				t.Errorf("status = %s, want %s (output %q)", got.Status, tt.status, got.Output)
			}
			if !strings.HasPrefix(got.Output, tt.output) || len(got.Output) > MaxOutput {
				t.Errorf("output = %q, want it to start with %q and hold at most %d bytes", got.Output, tt.output, MaxOutput)
			}
		})
	}
	if n := otherHits.Load(); n != 0 {
		t.Errorf("redirect to another host was followed (%d requests there)", n)
	}
	if n := loops.Load(); n != 1+MaxRedirects {
		t.Errorf("redirect loop: %d requests, want %d (the first and %d redirects)", n, 1+MaxRedirects, MaxRedirects)
	}
	if !agents[UserAgent] || len(agents) != 1 {
		t.Errorf("user agents seen = %v, want only %q", agents, UserAgent)
	}
}

// TestHTTPCheckerBodyCapped checks that a probe reads a small part of an
// endless body and hangs up, rather than reading on until its timeout.
func TestHTTPCheckerBodyCapped(t *testing.T) {
	var written atomic.Int64
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		chunk := []byte(strings.Repeat("a", 32<<10))
		for {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil || written.Load() > 1<<30 {
				return
			}
		}
	}))
	defer srv.Close()
	got := NewHTTPChecker().Check(context.Background(), httpCheck(srv.URL, time.Minute))
	<-done
	if got.Status != registry.StatusPassing || got.Output != "HTTP 200 OK" {
		t.Errorf("got %+v, want passing HTTP 200 OK", got)
	}
	if n := written.Load(); n > 64<<20 {
		t.Errorf("server wrote %d bytes before the probe hung up; the body read is not capped", n)
	}
}

func TestHTTPCheckerFailures(t *testing.T) {
	// A server that accepts connections and never answers.
	hung := listen(t)
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	refused := closedPort(t)

	tests := []struct {
		name, url string
		want      string
	}{
		{"hung", "http://" + hung.Addr().String() + "/health", "timeout: no response within 200ms"},
		{"refused", "http://" + refused + "/health", "connection refused"},
		{"bad-url", "http://[::1/health", "bad url"},
	}
	h := NewHTTPChecker()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := h.Check(context.Background(), httpCheck(tt.url, 200*time.Millisecond))
			if got.Status != registry.StatusCritical || !strings.Contains(got.Output, tt.want) {
				t.Errorf("got %s %q, want critical containing %q", got.Status, got.Output, tt.want)
			}
		})
	}
}

func TestSameOrigin(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"http://10.0.0.1:8080/a", "http://10.0.0.1:8080/b", true},
		{"http://Example.com/a", "http://example.com:80/b", true},
		{"https://example.com/a", "https://example.com:443/b", true},
		{"http://example.com/a", "https://example.com/a", false},
		{"http://example.com:8080/", "http://example.com:8081/", false},
		{"http://a.example.com/", "http://b.example.com/", false},
		{"http://[::1]:80/", "http://[::1]/", true},
	}
	for _, tt := range tests {
		t.Run(tt.a+" "+tt.b, func(t *testing.T) {
			if got := sameOrigin(mustURL(t, tt.a), mustURL(t, tt.b)); got != tt.want {
				t.Errorf("sameOrigin = %v, want %v", got, tt.want)
			}
		})
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestClean(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"HTTP 200 OK", 256, "HTTP 200 OK"},
		{"  two\r\nlines\t\x00here  ", 256, "two lines here"},
		{"bad \xff utf8", 256, "bad ? utf8"},
		{"héllo wörld", 6, "héllo"},
		{"abcdef", 3, "abc"},
		{"a  b ", 256, "a b"},
		{" a", 256, "a"},
		{"tab\there", 256, "tab here"},
		{strings.Repeat("é", MaxOutput), MaxOutput, strings.Repeat("é", MaxOutput/2)},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.10q", tt.in), func(t *testing.T) {
			if got := clean(tt.in, tt.max); got != tt.want {
				t.Errorf("clean = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestHTTPCheckerConnections checks that probes reuse a connection when
// the body was small enough to read, hang up when it was not, and notice
// a server that went away.
func TestHTTPCheckerConnections(t *testing.T) {
	var conns atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fine") })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 2*maxBody))
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	h := NewHTTPChecker()
	probe := func(path string) Result {
		return h.Check(context.Background(), httpCheck(srv.URL+path, 5*time.Second))
	}
	for range 5 {
		if r := probe("/ok"); r.Status != registry.StatusPassing {
			t.Fatalf("/ok: %+v", r)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("5 probes with small bodies used %d connections, want 1", n)
	}
	for range 3 {
		if r := probe("/big"); r.Status != registry.StatusPassing {
			t.Fatalf("/big: %+v", r)
		}
	}
	// The first reuses the idle connection; each hangs up after it.
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections after 3 probes with bodies over %d bytes, want 3 (none reused after such a body)", n, maxBody)
	}
	srv.CloseClientConnections()
	srv.Close()
	if r := probe("/ok"); r.Status != registry.StatusCritical || !strings.Contains(r.Output, "connection refused") {
		t.Errorf("after the server went away: %s %q, want critical, connection refused", r.Status, r.Output)
	}
}

// TestHTTPCheckerOptions checks that a probe sends the check's method,
// headers and body.
func TestHTTPCheckerOptions(t *testing.T) {
	type seen struct {
		method, host, probe, agent, body string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.Host, strings.Join(r.Header.Values("X-Probe"), ","), r.UserAgent(), string(b)}
		if r.Method != http.MethodPost || string(b) != "ping" {
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	}))
	defer srv.Close()

	h := NewHTTPChecker()
	c := httpCheck(srv.URL+"/health", 5*time.Second)
	c.Method, c.Body = "POST", "ping"
	c.Headers = map[string][]string{"X-Probe": {"a", "b"}, "Host": {"api.test"}, "User-Agent": {"custom/1"}}
	if r := h.Check(context.Background(), c); r.Status != registry.StatusPassing {
		t.Errorf("POST with body: %s %q", r.Status, r.Output)
	}
	want := seen{"POST", "api.test", "a,b", "custom/1", "ping"}
	if s := <-got; s != want {
		t.Errorf("server saw %+v, want %+v", s, want)
	}

	// The default is a GET without a body.
	if r := h.Check(context.Background(), httpCheck(srv.URL+"/health", 5*time.Second)); r.Status != registry.StatusCritical ||
		r.Output != "HTTP 405 Method Not Allowed" {
		t.Errorf("default GET: %s %q", r.Status, r.Output)
	}
	if s := <-got; s.method != "GET" || s.body != "" || s.agent != UserAgent {
		t.Errorf("default probe: server saw %+v", s)
	}
}

// TestHTTPCheckerTLS probes HTTPS servers whose certificates are not
// valid in every way, and checks that the output says so in words.
func TestHTTPCheckerTLS(t *testing.T) {
	var sni atomic.Value
	sni.Store("")
	tlsServer := func(cert tls.Certificate) *httptest.Server {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert},
			GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
				sni.Store(hello.ServerName)
				return nil, nil
			}}
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv
	}
	good := tlsServer(validCert(t))
	expired := tlsServer(selfSigned(t, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour), "127.0.0.1"))
	future := tlsServer(selfSigned(t, time.Now().Add(24*time.Hour), time.Now().Add(48*time.Hour), "127.0.0.1"))
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer plain.Close()
	silent := silentListener(t)
	host := func(s *httptest.Server) string {
		return strings.TrimPrefix(strings.TrimPrefix(s.URL, "https://"), "http://")
	}

	// A long timeout where the answer should come at once, a short one
	// where the probe should time out.
	check := func(url string, mod func(*registry.Check)) registry.Check {
		c := httpCheck(url, 5*time.Second)
		if mod != nil {
			mod(&c)
		}
		return c
	}
	skip := func(c *registry.Check) { c.TLSSkipVerify = true }
	short := func(c *registry.Check) { c.Timeout = registry.Duration(300 * time.Millisecond) }
	tests := []struct {
		name   string
		check  registry.Check
		status registry.Status
		output string
		sni    string // the server name the server saw, when it matters
	}{
		{"unknown authority", check(good.URL, nil), registry.StatusCritical,
			"certificate for " + host(good) + ` is signed by an unknown authority ("CN=disco test", self-signed): trust its CA on this server or set tls_skip_verify`, ""},
		{"name mismatch", check(good.URL, func(c *registry.Check) { c.TLSServerName = "other.test" }), registry.StatusCritical,
			"certificate for " + host(good) + " is not valid for other.test: it is valid for probe.test, 127.0.0.1; set tls_server_name to one of those names", "other.test"},
		{"expired", check(expired.URL, nil), registry.StatusCritical,
			"certificate for " + host(expired) + " has expired: valid until " + time.Now().Add(-24*time.Hour).UTC().Format("2006-01-02T15"), ""},
		{"not yet valid", check(future.URL, nil), registry.StatusCritical,
			"certificate for " + host(future) + " is not valid yet: valid from " + time.Now().Add(24*time.Hour).UTC().Format("2006-01-02T15"), ""},
		{"skip verify", check(good.URL, skip), registry.StatusPassing, "HTTP 200 OK", ""},
		{"skip verify with a server name", check(good.URL, func(c *registry.Check) { c.TLSSkipVerify, c.TLSServerName = true, "probe.test" }),
			registry.StatusPassing, "HTTP 200 OK", "probe.test"},
		{"https to a plain server", check("https://"+host(plain)+"/", nil), registry.StatusCritical,
			"http: server gave HTTP response to HTTPS client", ""},
		{"handshake stalls", check("https://"+silent+"/", short), registry.StatusCritical,
			"timeout: the TLS handshake with " + silent + " did not finish within 300ms", ""},
		{"no answer to the request", check("http://"+silent+"/", short), registry.StatusCritical,
			"timeout: no response within 300ms", ""},
		{"verifies again after skip verify", check(good.URL, nil), registry.StatusCritical, "certificate for " + host(good) + " is signed by an unknown authority", ""},
	}
	h := NewHTTPChecker()
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "-"), func(t *testing.T) {
			sni.Store("")
			start := time.Now()
			got := h.Check(context.Background(), tt.check).normalize()
			if got.Status != tt.status || !strings.HasPrefix(got.Output, tt.output) {
				t.Errorf("got %s %q, want %s %q", got.Status, got.Output, tt.status, tt.output)
			}
			if took, limit := time.Since(start), tt.check.Timeout.Std()+time.Second; took > limit {
				t.Errorf("probe took %s, timeout %s", took, tt.check.Timeout)
			}
			if s := sni.Load().(string); tt.sni != "" && s != tt.sni {
				t.Errorf("server saw server name %q, want %q", s, tt.sni)
			}
		})
	}
}
