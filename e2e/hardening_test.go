package e2e

import (
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
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir)
	d := startDisco(t, "--admin-tls-cert", certFile, "--admin-tls-key", keyFile)
	admin := "https://" + strings.TrimPrefix(d.admin, "http://")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}

	if r := runDisco(t, nil, "register", "web", "web-1", "10.0.0.1:80", "--admin", admin, "--token", testToken, "--ca-cert", certFile); r.code != 0 {
		t.Fatalf("register over https: %v", r)
	}
	if r := runDisco(t, []string{"DISCO_CA_CERT=" + certFile}, "services", "--admin", admin, "--token", testToken); r.code != 0 || !strings.Contains(r.stdout, "web") {
		t.Fatalf("services over https with DISCO_CA_CERT: %v", r)
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"untrusted certificate", []string{"--admin", admin}, "certificate"},
		{"plain http to https", []string{"--admin", d.admin, "--ca-cert", certFile}, "400"},
		{"missing CA file", []string{"--admin", admin, "--ca-cert", filepath.Join(dir, "nope.pem")}, "--ca-cert: open"},
		{"CA file without a certificate", []string{"--admin", admin, "--ca-cert", garbage}, "no PEM certificate"},
		{"token still required", []string{"--admin", admin, "--ca-cert", certFile, "--token", ""}, "401"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"services", "--token", testToken}, tc.args...)
			if r := runDisco(t, nil, args...); !r.oneLineErr() || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("disco %s: %v, want an error about %q", strings.Join(args, " "), r, tc.want)
			}
		})
	}
}

// TestAdminTLSBadFiles: a server given a certificate as its own key does
// not start and says why.
func TestAdminTLSBadFiles(t *testing.T) {
	t.Parallel()
	certFile, _ := writeCert(t, t.TempDir())
	r := runDisco(t, nil, "serve", "--dns-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--admin-tls-cert", certFile, "--admin-tls-key", certFile)
	if r.code == 0 || !strings.Contains(r.stderr, "load admin TLS certificate") {
		t.Errorf("serve with a certificate as its own key: %v, want a load error", r)
	}
}

// TestRRLWired floods the server run with --rrl-rate from one client and
// finds truncated answers and the counters in /metrics.
func TestRRLWired(t *testing.T) {
	t.Parallel()
	d := startDisco(t, "--rrl-rate", "5", "--rrl-burst", "5", "--rrl-slip", "1")
	d.register(t, "web", "web-1", `{"address":"10.0.0.1","port":80}`)
	conn, err := net.Dial("udp", d.dnsAddr)
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
	resp, err := http.Get(d.admin + "/metrics")
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
