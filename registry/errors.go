package registry

import (
	"errors"
	"fmt"
	"strings"
)

// The kinds of error that callers tell apart with errors.Is: an HTTP
// status, a DNS rcode.
var (
	// ErrInvalid marks a request that breaks the registry's rules; it changed
	// nothing.
	ErrInvalid = errors.New("invalid")
	// ErrNotFound marks a service or instance that is not registered.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable marks a write the store could not make durable; it
	// changed nothing.
	ErrUnavailable = errors.New("store unavailable")
)

// Error is a refused request of one kind, ErrInvalid or ErrNotFound, with
// the reason in words for whoever sent it. Its Error text names the kind
// ("heartbeat web/a1: invalid: the instance has no ttl check"), for logs
// and DNS error texts; its Message leaves the kind out, for an answer whose
// status already says it.
type Error struct {
	// Op is what was being done, as in "heartbeat web/a1" or "check 2";
	// empty when the reason says it all.
	Op string
	// Kind is ErrInvalid or ErrNotFound.
	Kind error
	// Reason says what is wrong.
	Reason string
}

// Invalid returns an Error of kind ErrInvalid with the reason formatted as
// by fmt.Sprintf.
func Invalid(format string, args ...any) *Error {
	return &Error{Kind: ErrInvalid, Reason: fmt.Sprintf(format, args...)}
}

// NotFound returns an Error of kind ErrNotFound with the reason formatted
// as by fmt.Sprintf.
func NotFound(format string, args ...any) *Error {
	return &Error{Kind: ErrNotFound, Reason: fmt.Sprintf(format, args...)}
}

// In returns a copy of e done as part of op: its texts start with "op: ".
func (e *Error) In(op string) *Error {
	c := *e
	if c.Op != "" {
		op += ": " + c.Op
	}
	c.Op = op
	return &c
}

// Error returns "op: kind: reason", without "op: " when Op is empty.
func (e *Error) Error() string { return e.prefix() + e.Kind.Error() + ": " + e.Reason }

// Message returns "op: reason": the error's text without its kind.
func (e *Error) Message() string { return e.prefix() + e.Reason }

// Unwrap returns the kind, so that errors.Is(e, ErrInvalid) holds for an
// invalid request.
func (e *Error) Unwrap() error { return e.Kind }

func (e *Error) prefix() string {
	if e.Op == "" {
		return ""
	}
	return e.Op + ": "
}

// Problems is every problem found in one request, such as a registration
// that breaks several rules. Its Error text has one problem a line, as
// errors.Join's; its Message puts them on one line.
type Problems []error

// Join returns the non-nil errors of errs as Problems, or nil when there are
// none.
func Join(errs ...error) error {
	var p Problems
	for _, err := range errs {
		if err != nil {
			p = append(p, err)
		}
	}
	if len(p) == 0 {
		return nil
	}
	return p
}

// Error returns the problems' texts, one a line.
func (p Problems) Error() string { return p.join("\n", error.Error) }

// Message returns the problems' messages (see MessageOf) separated by "; ".
func (p Problems) Message() string { return p.join("; ", MessageOf) }

// Unwrap returns the problems, so that errors.Is and errors.As look at each.
func (p Problems) Unwrap() []error { return p }

func (p Problems) join(sep string, text func(error) string) string {
	var b strings.Builder
	for i, err := range p {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(text(err))
	}
	return b.String()
}

// MessageOf returns the text of err for whoever sent the request it failed:
// the Message of an *Error or Problems (the reason without the kind), the
// Error text of anything else.
func MessageOf(err error) string {
	if m, ok := err.(interface{ Message() string }); ok {
		return m.Message()
	}
	return err.Error()
}

// withOp returns err as part of op: an *Error keeps its kind and carries op
// in its texts; any other error is wrapped as "op: err".
func withOp(op string, err error) error {
	if e, ok := err.(*Error); ok {
		return e.In(op)
	}
	return fmt.Errorf("%s: %w", op, err)
}
