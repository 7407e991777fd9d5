package admin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// wantsPretty reports whether a GET asks for indented JSON with ?pretty
// (or ?pretty=true, ?pretty=1; ?pretty=false and ?pretty=0 do not).
func wantsPretty(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	q := r.URL.Query()
	if !q.Has("pretty") {
		return false
	}
	v := q.Get("pretty")
	if v == "" {
		return true
	}
	b, err := strconv.ParseBool(v)
	return err != nil || b
}

// prettyWriter holds back a JSON answer and writes it indented when the
// handler is done (finish). Answers of other types pass through at once.
type prettyWriter struct {
	http.ResponseWriter
	status  int
	started bool // WriteHeader was called
	through bool // not JSON: passed through
	buf     bytes.Buffer
}

func (p *prettyWriter) WriteHeader(status int) {
	if p.started {
		return
	}
	p.started, p.status = true, status
	if !strings.HasPrefix(p.Header().Get("Content-Type"), "application/json") {
		p.through = true
		p.ResponseWriter.WriteHeader(status)
	}
}

func (p *prettyWriter) Write(b []byte) (int, error) {
	if !p.started {
		p.WriteHeader(http.StatusOK)
	}
	if p.through {
		return p.ResponseWriter.Write(b)
	}
	return p.buf.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (p *prettyWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// finish writes the held-back answer, indented.
func (p *prettyWriter) finish() {
	if !p.started || p.through {
		return
	}
	var out bytes.Buffer
	if err := json.Indent(&out, p.buf.Bytes(), "", "  "); err != nil {
		out = p.buf // not valid JSON after all: as it is
	}
	p.Header().Del("Content-Length")
	p.ResponseWriter.WriteHeader(p.status)
	p.ResponseWriter.Write(out.Bytes())
}
