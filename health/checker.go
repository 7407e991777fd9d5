package health

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"disco/registry"
)

// Checker probes one check target. It returns once the probe has an answer
// or ctx is done, whichever comes first; a probe that ran out of time is
// critical.
type Checker interface {
	Check(ctx context.Context, c registry.Check) Result
}

// A Holder is a Checker that keeps something open for the checks it
// probes, such as the gRPC checker's connections. The monitor calls Hold
// when it starts watching a check and Release, once for each Hold, when it
// stops (the instance went away, changed its checks, or the monitor
// stopped). Both are called with the monitor's lock held and must not
// block.
type Holder interface {
	Hold(c registry.Check)
	Release(c registry.Check)
}

// Result is the outcome of one probe.
type Result struct {
	// Status is passing, warning or critical; anything else counts as
	// critical.
	Status registry.Status
	// Output says what the probe saw: an HTTP status line, a command's
	// output or an error. The monitor keeps at most MaxOutput bytes of it.
	Output string
}

// MaxOutput is the longest Health.Output the monitor reports, in bytes:
// the first 4 KiB of what a check said, on one line. Results are cut to it
// in one place, when the monitor takes them in.
const MaxOutput = 4 << 10

// Disabled is a Checker for a check type this server does not run: each
// probe is critical, its output the text of d (which says why, and how to
// turn the checks on).
type Disabled string

// Check returns a critical result saying that the type is disabled.
func (d Disabled) Check(context.Context, registry.Check) Result {
	return Result{registry.StatusCritical, string(d)}
}

// normalize makes r a result the thresholds understand: a known status and
// a short, printable output.
func (r Result) normalize() Result {
	switch r.Status {
	case registry.StatusPassing, registry.StatusWarning, registry.StatusCritical:
	default:
		if r.Output == "" {
			r.Output = "checker returned status " + string(r.Status)
		}
		r.Status = registry.StatusCritical
	}
	if r.Output == "" {
		r.Output = string(r.Status)
	}
	r.Output = clean(r.Output, MaxOutput)
	return r
}

// clean returns s on one line, without control characters or invalid
// UTF-8, cut to at most max bytes at a character boundary.
func clean(s string, max int) string {
	if len(s) <= max && plain(s) {
		return s
	}
	var b strings.Builder
	space := false
	for _, r := range strings.ToValidUTF8(s, "?") {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			space = b.Len() > 0
			continue
		}
		n := utf8.RuneLen(r)
		if space {
			n++
		}
		if b.Len()+n > max {
			break
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// withTimeout returns ctx limited to d from now, or ctx itself when its
// deadline comes sooner (as when the monitor already set the timeout).
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); d <= 0 || ok && time.Until(dl) <= d {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// timedOut reports whether a probe failed by running out of time: its
// context is done or the error is a timeout.
func timedOut(ctx context.Context, err error) bool {
	var ne net.Error
	return ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// plain reports whether s is printable ASCII with single spaces inside,
// which clean leaves as it is.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c > '~' || c == ' ' && (i == 0 || i == len(s)-1 || s[i-1] == ' ') {
			return false
		}
	}
	return true
}
