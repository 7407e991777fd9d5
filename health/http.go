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
)

// HTTPChecker probes http checks: a GET of the check's URL, passing on 2xx,
// warning on 429 and critical on anything else, on a redirect it does not
// follow, and on an error or timeout. It uses a fresh connection for every
// probe (no keep-alive), ignores proxy settings from the environment,
// verifies TLS certificates, and reads at most 4 KiB of a body.
type HTTPChecker struct {
	client *http.Client
}

// NewHTTPChecker returns an HTTPChecker with its own transport.
func NewHTTPChecker() *HTTPChecker {
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            (&net.Dialer{KeepAlive: -1}).DialContext,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxIdleConnsPerHost:    -1,
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
	if t := c.Timeout.Std(); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
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
	body := make([]byte, maxBody)
	n, _ := io.ReadFull(resp.Body, body)
	resp.Body.Close()
	body = body[:n]

	out := "HTTP " + resp.Status
	if resp.Status == "" {
		out = fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code <= 299:
		return Result{registry.StatusPassing, out}
	case code >= 300 && code <= 399 && resp.Header.Get("Location") != "":
		out += " (redirect to " + resp.Header.Get("Location") + " not followed)"
	default:
		if line := firstLine(body); line != "" {
			out += ": " + line
		}
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
