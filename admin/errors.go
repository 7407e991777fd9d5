package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"disco/registry"
)

// ErrUnprocessable marks a request that was well formed but failed because
// of what the server was given to work on, such as a zone file with an
// error: it answers 422 Unprocessable Content, and changed nothing. Make
// such errors with Unprocessable.
var ErrUnprocessable = errors.New("unprocessable")

// Unprocessable returns err marked as ErrUnprocessable: errors.Is finds the
// mark, and the text is err's own.
func Unprocessable(err error) error { return unprocessable{err} }

type unprocessable struct{ err error }

func (u unprocessable) Error() string   { return u.err.Error() }
func (u unprocessable) Unwrap() []error { return []error{ErrUnprocessable, u.err} }

// httpError is an error with the HTTP status it answers with.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// statusOf maps an error to its HTTP status.
func statusOf(err error) int {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.status
	case errors.Is(err, registry.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnprocessable):
		return http.StatusUnprocessableEntity
	case errors.Is(err, registry.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, registry.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// message returns err's text for a client: for a registry error the
// reason without the kind that the status already tells
// (registry.MessageOf).
func message(err error) string { return registry.MessageOf(err) }

// writeError answers with err as {"error": "..."} and logs it: server
// faults at Error, refused credentials at Warn, other client mistakes at
// Debug (the client gets the message; a busy bad client must not flood the
// log).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		s.log.Debug("request abandoned by client", "method", r.Method, "path", r.URL.Path)
		return
	}
	status := statusOf(err)
	msg := message(err)
	level := slog.LevelDebug
	switch {
	case status >= 500:
		level = slog.LevelError
	case status == http.StatusUnauthorized:
		level = slog.LevelWarn
	}
	s.log.Log(r.Context(), level, "admin request failed", "method", r.Method, "path", r.URL.Path,
		"status", status, "remote", r.RemoteAddr, "err", msg)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="disco"`)
	}
	writeJSON(w, status, ErrorBody{Error: msg})
}
