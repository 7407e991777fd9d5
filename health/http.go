package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
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
)

// HTTPChecker probes http checks: a GET of the check's URL (HTTP/1.1),
// passing on 2xx, warning on 429 and critical on anything else, on a
// redirect it does not follow, and on an error or timeout. It reads at most
// 4 KiB of a body. It keeps connections open for the next probes, but few:
// as many per target (host and port) as probed it at once, at most 16, and
// 512 in all, each closed after 30s unused; a body longer than 4 KiB closes
// its connection. It ignores proxy settings from the environment and
// verifies TLS certificates.
type HTTPChecker struct {
	client *http.Client
}

// NewHTTPChecker returns an HTTPChecker with its own transport.
func NewHTTPChecker() *HTTPChecker {
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            (&net.Dialer{KeepAlive: -1}).DialContext,
		DisableCompression:     true,
		MaxIdleConns:           maxIdleConns,
		MaxIdleConnsPerHost:    maxIdleConnsPerHost,
		IdleConnTimeout:        idleConnTimeout,
		MaxResponseHeaderBytes: maxHeaderBytes,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
	}
	return &HTTPChecker{client: &http.Client{
		Transport:     tr,
		CheckRedirect: sameOriginRedirects,
	}}
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
	if err != nil {
		return Result{registry.StatusCritical, fmt.Sprintf("bad url %q: %v", c.URL, err)}
	}
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("Accept", "text/plain, application/json;q=0.9, */*;q=0.8")
	resp, err := h.client.Do(req)
	if err != nil {
		if timedOut(ctx, err) {
			return Result{registry.StatusCritical, fmt.Sprintf("timeout: no response within %s", c.Timeout)}
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
