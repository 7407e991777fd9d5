package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/urfave/cli/v2"

	"disco/dnsserver"
)

// writeCert writes a self-signed certificate for 127.0.0.1 and its key
// into dir and returns their file names.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "disco test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestAdminTLS runs the server with an HTTPS admin API and uses it with
// the client commands.
func TestAdminTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir)
	s := startServer(t, func(c *serveConfig) { c.AdminTLSCert, c.AdminTLSKey = certFile, keyFile })
	admin := "https://" + strings.TrimPrefix(s.admin, "http://")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}

	if out, err := run(t, "register", "web", "web-1", "10.0.0.1:80", "--admin", admin, "--token", testToken, "--ca-cert", certFile); err != nil {
		t.Fatalf("register over https: %v %s", err, out)
	}
	t.Setenv("DISCO_CA_CERT", certFile)
	out, err := run(t, "services", "--admin", admin, "--token", testToken)
	if err != nil || !strings.Contains(out, "web") {
		t.Fatalf("services over https with DISCO_CA_CERT: %v %q", err, out)
	}
	t.Setenv("DISCO_CA_CERT", "")

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"untrusted certificate", []string{"--admin", admin}, "certificate"},
		{"plain http to https", []string{"--admin", s.admin, "--ca-cert", certFile}, "400"},
		{"missing CA file", []string{"--admin", admin, "--ca-cert", filepath.Join(dir, "nope.pem")}, "--ca-cert: open"},
		{"CA file without a certificate", []string{"--admin", admin, "--ca-cert", garbage}, "no PEM certificate"},
		{"token still required", []string{"--admin", admin, "--ca-cert", certFile, "--token", ""}, "401"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"services", "--token", testToken}, tc.args...)
			_, err := run(t, args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("disco %s: %v, want an error about %q", strings.Join(args, " "), err, tc.want)
			}
		})
	}
}

func TestAdminTLSBadFiles(t *testing.T) {
	certFile, _ := writeCert(t, t.TempDir())
	cfg := serveConfig{
		DNSAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Domain: "disco.internal.", DataDir: t.TempDir(),
		NSAddrs: nsAddrsOrDie("127.0.0.1"), TCPIdleTimeout: time.Second, MaxTCPConns: 1, ShutdownTimeout: time.Second,
		AdminTLSCert: certFile, AdminTLSKey: certFile,
	}
	err := runServer(context.Background(), cfg, newLogger(io.Discard, 0, "text"), nil)
	if err == nil || !strings.Contains(err.Error(), "load admin TLS certificate") {
		t.Errorf("runServer with a certificate as its own key: %v, want a load error", err)
	}
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

// TestRRLWired floods the server run with --rrl-rate from one client and
// finds truncated answers and the counters in /metrics.
func TestRRLWired(t *testing.T) {
	s := startServer(t, func(c *serveConfig) {
		c.RRL = dnsserver.RRLConfig{Rate: 5, Burst: 5, Slip: 1}
	})
	s.register(t, "web", "web-1", `{"address":"10.0.0.1","port":80}`)
	conn, err := net.Dial("udp", s.dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	full, truncated := 0, 0
	buf := make([]byte, 1500)
	start := time.Now()
	for i := range 30 {
		m := new(dns.Msg)
		m.SetQuestion("web.service.disco.internal.", dns.TypeA)
		m.Id = uint16(i)
		pkt, _ := m.Pack()
		if _, err := conn.Write(pkt); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("query %d: %v (slip 1 answers every limited query)", i, err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil || r.Id != uint16(i) {
			t.Fatalf("query %d: answer %v %v", i, r, err)
		}
		if r.Truncated {
			truncated++
		} else {
			full++
		}
	}
	if limit := 5 + int(5*time.Since(start).Seconds()) + 1; full < 5 || full > limit {
		t.Errorf("%d full and %d truncated answers at rate 5, burst 5: want 5 to %d full", full, truncated, limit)
	}
	resp, err := http.Get(s.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`(?m)^disco_dns_rrl_total\{action="slip"\} (\d+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no disco_dns_rrl_total{action=\"slip\"} in /metrics")
	}
	if n, _ := strconv.Atoi(string(m[1])); n != truncated {
		t.Errorf("disco_dns_rrl_total{action=\"slip\"} %d, want %d", n, truncated)
	}
}
