package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// TestQueryLoggerIgnoresLogLevel checks that --query-log writes its info
// records whatever --log-level hides, in the process's format.
func TestQueryLoggerIgnoresLogLevel(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
		t.Run(level.String(), func(t *testing.T) {
			var buf bytes.Buffer
			log := newLogger(&buf, level, "json")
			q := queryLogger(log)
			q.Info("query", "qname", "web.service.disco.internal.")
			q.Debug("below info")
			log.Debug("process debug")
			var recs []map[string]any
			for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				var rec map[string]any
				if err := json.Unmarshal([]byte(l), &rec); err != nil {
					t.Fatalf("%q: %v", l, err)
				}
				if rec["component"] == "query" {
					recs = append(recs, rec)
				}
			}
			if len(recs) != 1 || recs[0]["msg"] != "query" || recs[0]["qname"] != "web.service.disco.internal." {
				t.Errorf("query records %v, want the one info record", recs)
			}
			if got, want := strings.Contains(buf.String(), "process debug"), level <= slog.LevelDebug; got != want {
				t.Errorf("process debug record written: %v, want %v", got, want)
			}
		})
	}
}
