package main

import (
	"io"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"disco/dnsserver"
)

// serveRefusal is a serve command line that must not start: its
// arguments and environment, and substrings of the error it must give.
type serveRefusal struct {
	name string
	args []string
	env  map[string]string
	want []string
}

// checkServeRefuses runs serve with each case's arguments and environment
// and checks that it refuses to start with an error saying each want.
func checkServeRefuses(t *testing.T, tests []serveRefusal) {
	t.Helper()
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

// TestServeStoreFlags: the store flags (and the other flags checked
// together with them) are checked before anything starts, and every
// problem is reported.
func TestServeStoreFlags(t *testing.T) {
	tests := []serveRefusal{
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
	checkServeRefuses(t, tests)
}

// parseServe reads serve's flags and environment as "disco serve" does.
func parseServe(t *testing.T, args ...string) (serveConfig, error) {
	t.Helper()
	var cfg serveConfig
	var perr error
	app := &cli.App{Writer: io.Discard, ErrWriter: io.Discard, Flags: serveFlags(), Action: func(c *cli.Context) error {
		cfg, perr = serveConfigFrom(c)
		return nil
	}}
	if err := app.Run(append([]string{"disco"}, args...)); err != nil {
		return cfg, err
	}
	return cfg, perr
}

func TestHardeningFlags(t *testing.T) {
	defaults := dnsserver.RRLConfig{Slip: 2, IPv4PrefixLen: 24, IPv6PrefixLen: 56}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		rrl  dnsserver.RRLConfig
		err  string
	}{
		{name: "off by default", rrl: defaults},
		{name: "rate", args: []string{"--rrl-rate", "50"}, rrl: dnsserver.RRLConfig{Rate: 50, Slip: 2, IPv4PrefixLen: 24, IPv6PrefixLen: 56}},
		{name: "everything", args: []string{"--rrl-rate", "50", "--rrl-burst", "100", "--rrl-slip", "0", "--rrl-ipv4-prefix", "32", "--rrl-ipv6-prefix", "64"},
			rrl: dnsserver.RRLConfig{Rate: 50, Burst: 100, IPv4PrefixLen: 32, IPv6PrefixLen: 64}},
		{name: "environment", env: map[string]string{"DISCO_RRL_RATE": "7", "DISCO_RRL_SLIP": "3"},
			rrl: dnsserver.RRLConfig{Rate: 7, Slip: 3, IPv4PrefixLen: 24, IPv6PrefixLen: 56}},
		{name: "negative rate", args: []string{"--rrl-rate", "-1"}, err: "rrl rate -1"},
		{name: "prefix too long", args: []string{"--rrl-ipv4-prefix", "33"}, err: "IPv4 prefix length 33"},
		{name: "cert without key", args: []string{"--admin-tls-cert", "a.crt"}, err: "give both or neither"},
		{name: "key without cert", env: map[string]string{"DISCO_ADMIN_TLS_KEY": "a.key"}, err: "give both or neither"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := parseServe(t, tc.args...)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %v, want one about %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.RRL != tc.rrl {
				t.Errorf("RRL %+v, want %+v", cfg.RRL, tc.rrl)
			}
		})
	}
}
