package main

import (
	"strings"
	"testing"
)

// TestServeStoreFlags: the store flags (and the other flags checked
// together with them) are checked before anything starts, and every
// problem is reported.
func TestServeStoreFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"unknown store", []string{"--store", "redis"}, nil, []string{`--store "redis": want bolt or etcd`}},
		{"etcd without endpoints", []string{"--store", "etcd"}, nil, []string{"--store etcd needs --etcd-endpoints"}},
		{"bad endpoint and half pairs", []string{"--store", "etcd", "--etcd-endpoints", "127.0.0.1:2379,http://ok:2379",
			"--etcd-cert", "c.pem", "--etcd-username", "u", "--member-ttl", "500ms", "--etcd-timeout", "0s"}, nil,
			[]string{`etcd endpoint "127.0.0.1:2379": want http://host:port`, "certificate and key go together",
				"username and password go together", "--member-ttl 500ms: want at least 1s", "--etcd-timeout must be positive"}},
		{"from the environment", nil, map[string]string{"DISCO_STORE": "etcd", "DISCO_ETCD_ENDPOINTS": "ftp://x"},
			[]string{`etcd endpoint "ftp://x"`}},
		{"commit delay and UDP buffer", []string{"--commit-delay", "-1ms", "--udp-buffer", "1000"}, nil,
			[]string{"--commit-delay -1ms: want 0 to 1s", "--udp-buffer 1000: want 65536 (64 KiB) to 1073741824 (1 GiB) bytes"}},
		{"commit delay too long", nil, map[string]string{"DISCO_COMMIT_DELAY": "2s"}, []string{"--commit-delay 2s: want 0 to 1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := run(t, append([]string{"serve", "--dns-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, tt.args...)...)
			if err == nil {
				t.Fatal("serve started")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not say %q", err, w)
				}
			}
		})
	}
}
