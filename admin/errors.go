package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"disco/registry"
)

// ErrUnprocessable marks a request that was well formed but failed because
// of what the server was given to work on, such as a zone file with an
// error: it answers 422 Unprocessable Content, and changed nothing.
var ErrUnprocessable = errors.New("unprocessable")

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

// message returns err's text for a client: one line, without the sentinel
// prefixes ("invalid: ", "not found: ", "unprocessable: ") that only make
// sense to code.
func message(err error) string {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		for _, sentinel := range []error{registry.ErrInvalid, registry.ErrNotFound, ErrUnprocessable} {
			p := sentinel.Error() + ": "
			l = strings.TrimPrefix(l, p)
			l = strings.ReplaceAll(l, ": "+p, ": ")
		}
		lines[i] = l
	}
	return strings.Join(lines, "; ")
}

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
