package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func scrapeCommits(b *testing.B, s *testServer) {
	resp, err := http.Get(s.admin + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "disco_store_commit") || strings.HasPrefix(l, "disco_registry_write_duration_seconds_sum") || strings.HasPrefix(l, "disco_registry_write_duration_seconds_count") {
			println(l)
		}
	}
}
