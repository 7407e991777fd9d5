package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"disco/registry"
)

// Limits of the HTTP checker.
const (
	// UserAgent is sent with every HTTP probe.
	UserAgent = "disco-health/1"
	// MaxRedirects is how many redirects to the same origin (scheme, host
	// and port) a probe follows; a redirect anywhere else is never followed
	// and the redirect itself is the probe's answer (critical).
	MaxRedirects = 3
	// maxBody is how much of a response body a probe reads.
	maxBody = 4 << 10
	// maxBodyOutput is how much of a failing response's body goes into the
	// output, after the status line.
	maxBodyOutput = 96
	// maxHeaderBytes caps the response headers a probe accepts.
	maxHeaderBytes = 16 << 10
	// maxIdleConns and maxIdleConnsPerHost cap the connections kept open
	// between probes, in all and per target (host and port).
	maxIdleConns        = 512
	maxIdleConnsPerHost = 16
	// idleConnTimeout closes a connection unused for this long.
	idleConnTimeout = 30 * time.Second
	// maxTLSVariants caps the transports kept for checks with their own
	// TLS settings (tls_skip_verify, tls_server_name); the least recently
	// used is closed to make room.
	maxTLSVariants = 64
)

// HTTPChecker probes http checks: a request of the check's URL (HTTP/1.1)
// with its method (GET unless told), headers and body, passing on 2xx,
// warning on 429 and critical on anything else, on a redirect it does not
// follow, and on an error or timeout, which it describes: a certificate
// that is not valid in words, a timeout with the step it stopped at
// (connecting, TLS handshake, waiting for the response). It reads at most
// 4 KiB of a body. It keeps connections open for the next probes, but few:
// as many per target (host and port) as probed it at once, at most 16, and
// 512 in all, each closed after 30s unused; a body longer than 4 KiB closes
// its connection. Checks with their own TLS settings get transports of
// their own, so that a connection opened without verifying its certificate
// never serves a check that verifies. It ignores proxy settings from the
// environment and verifies TLS certificates unless told not to.
type HTTPChecker struct {
	client *http.Client

	mu       sync.Mutex
	variants map[tlsVariant]*variant
}

// tlsVariant is a check's own TLS settings.
type tlsVariant struct {
	skipVerify bool
	serverName string
}

// variant is the client of one tlsVariant.
type variant struct {
	client   *http.Client
	lastUsed time.Time
}

// NewHTTPChecker returns an HTTPChecker with its own transport.
func NewHTTPChecker() *HTTPChecker {
	return &HTTPChecker{client: newProbeClient(tlsVariant{}), variants: make(map[tlsVariant]*variant)}
}

// newProbeClient returns a client with its own transport for v.
func newProbeClient(v tlsVariant) *http.Client {
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            (&net.Dialer{KeepAlive: -1}).DialContext,
		DisableCompression:     true,
		MaxIdleConns:           maxIdleConns,
		MaxIdleConnsPerHost:    maxIdleConnsPerHost,
		IdleConnTimeout:        idleConnTimeout,
		MaxResponseHeaderBytes: maxHeaderBytes,
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12,
			InsecureSkipVerify: v.skipVerify, ServerName: v.serverName},
	}
	return &http.Client{Transport: tr, CheckRedirect: sameOriginRedirects}
}

// clientFor returns the client for c's TLS settings.
func (h *HTTPChecker) clientFor(c registry.Check) *http.Client {
	v := tlsVariant{skipVerify: c.TLSSkipVerify, serverName: c.TLSServerName}
	if v == (tlsVariant{}) {
		return h.client
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	if cv := h.variants[v]; cv != nil {
		cv.lastUsed = now
		return cv.client
	}
	if len(h.variants) >= maxTLSVariants {
		var oldest tlsVariant
		for k, cv := range h.variants {
			if o := h.variants[oldest]; o == nil || cv.lastUsed.Before(o.lastUsed) {
				oldest = k
			}
		}
		h.variants[oldest].client.CloseIdleConnections()
		delete(h.variants, oldest)
	}
	cv := &variant{client: newProbeClient(v), lastUsed: now}
	h.variants[v] = cv
	return cv.client
}

// sameOriginRedirects follows at most MaxRedirects redirects, all to the
// origin of the first request; otherwise the redirect response is returned
// as the answer.
func sameOriginRedirects(req *http.Request, via []*http.Request) error {
	if len(via) > MaxRedirects || !sameOrigin(req.URL, via[0].URL) {
		return http.ErrUseLastResponse
	}
	return nil
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) &&
		strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

// Check probes c.URL within c.Timeout (and ctx).
func (h *HTTPChecker) Check(ctx context.Context, c registry.Check) Result {
	ctx, cancel := withTimeout(ctx, c.Timeout.Std())
	defer cancel()
	var st probeStage
	method := c.Method
	if method == "" {
		method = http.MethodGet
	}
	var reqBody io.Reader
	if c.Body != "" {
		reqBody = strings.NewReader(c.Body)
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, st.trace()), method, c.URL, reqBody)
	if err != nil {
		return Result{registry.StatusCritical, fmt.Sprintf("bad url %q: %v", c.URL, err)}
	}
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("Accept", "text/plain, application/json;q=0.9, */*;q=0.8")
	for k, v := range c.Headers {
		if k == "Host" {
			req.Host = v[0]
			continue
		}
		req.Header[k] = v
	}
	resp, err := h.clientFor(c).Do(req)
	if err != nil {
		if timedOut(ctx, err) {
			return Result{registry.StatusCritical, st.timeout(req.URL.Host, c.Timeout)}
		}
		name := c.TLSServerName
		if name == "" {
			name = req.URL.Hostname()
		}
		if msg, ok := describeTLS(err, req.URL.Host, name); ok {
			return Result{registry.StatusCritical, msg}
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Result{registry.StatusCritical, err.Error()}
	}
	defer resp.Body.Close()
	// Read what a small body holds, so that the connection can serve the
	// next probe; stop at maxBody.
	body := io.LimitReader(resp.Body, maxBody)

	out := "HTTP " + resp.Status
	if resp.Status == "" {
		out = fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code <= 299:
		io.Copy(io.Discard, body)
		return Result{registry.StatusPassing, out}
	case code >= 300 && code <= 399 && resp.Header.Get("Location") != "":
		out += " (redirect to " + resp.Header.Get("Location") + " not followed)"
		io.Copy(io.Discard, body)
	default:
		start := make([]byte, 2*maxBodyOutput)
		n, _ := io.ReadFull(body, start)
		if line := firstLine(start[:n]); line != "" {
			out += ": " + line
		}
		io.Copy(io.Discard, body)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		return Result{registry.StatusWarning, out}
	}
	return Result{registry.StatusCritical, out}
}

// firstLine returns the start of a body's first non-empty line, printable.
func firstLine(body []byte) string {
	s := strings.TrimSpace(string(body))
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return clean(s, maxBodyOutput)
}

// probeStage follows an HTTP probe through its steps, so that a timeout
// can say where it stopped.
type probeStage struct{ step atomic.Int32 }

// The steps of an HTTP probe.
const (
	stepConnect int32 = iota
	stepTLS
	stepWait
)

func (p *probeStage) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		TLSHandshakeStart: func() { p.step.Store(stepTLS) },
		GotConn:           func(httptrace.GotConnInfo) { p.step.Store(stepWait) },
	}
}

// timeout says how far a probe of host that ran out of time got.
func (p *probeStage) timeout(host string, d registry.Duration) string {
	switch p.step.Load() {
	case stepConnect:
		return fmt.Sprintf("timeout: no connection to %s within %s", host, d)
	case stepTLS:
		return fmt.Sprintf("timeout: the TLS handshake with %s did not finish within %s", host, d)
	}
	return fmt.Sprintf("timeout: no response within %s", d)
}
