package admin_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"disco/admin"
	"disco/registry"
)

// writeSelfSigned writes a self-signed certificate for 127.0.0.1, ::1 and
// localhost and its key to dir, and returns the file names and the pool
// that trusts it.
func writeSelfSigned(t testing.TB, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "disco admin test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
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
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// serveAPI runs the admin API with cfg on a loopback port until the test ends
// and returns its address.
func serveAPI(t *testing.T, cfg admin.Config) string {
	t.Helper()
	cfg.Registry = registry.New(registry.Config{Now: func() time.Time { return t0 }})
	seed(t, cfg.Registry)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- admin.New(cfg).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func get(hc *http.Client, url, token string) (int, string, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := writeSelfSigned(t, t.TempDir())
	tlsCfg, err := admin.LoadTLS(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveAPI(t, admin.Config{Token: testToken, TLS: tlsCfg})
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	tests := []struct {
		name   string
		client *http.Client
		url    string
		token  string
		status int
		errHas string // the request fails with this
	}{
		{"https, trusted", trusting, "https://" + addr + "/v1/services", testToken, 200, ""},
		{"https, token still required", trusting, "https://" + addr + "/v1/services", "", 401, ""},
		{"https by name", trusting, "https://localhost:" + portOf(addr) + "/healthz", "", 200, ""},
		{"https, untrusted", &http.Client{}, "https://" + addr + "/healthz", "", 0, "certificate"},
		{"plain http", &http.Client{}, "http://" + addr + "/healthz", "", 400, ""},
		{"TLS 1.1", &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}}},
			"https://" + addr + "/healthz", "", 0, "protocol version"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body, err := get(tc.client, tc.url, tc.token)
			switch {
			case tc.errHas != "":
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Errorf("got HTTP %d, %v; want an error about %q", status, err, tc.errHas)
				}
			case err != nil:
				t.Errorf("request failed: %v", err)
			case status != tc.status:
				t.Errorf("HTTP %d %s, want %d", status, body, tc.status)
			}
		})
	}
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func TestLoadTLSErrors(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := writeSelfSigned(t, dir)
	otherCert, _, _ := writeSelfSigned(t, t.TempDir())
	tests := []struct {
		name, cert, key, want string
	}{
		{"missing cert", filepath.Join(dir, "nope.crt"), keyFile, "no such file"},
		{"missing key", certFile, filepath.Join(dir, "nope.key"), "no such file"},
		{"key of another certificate", otherCert, keyFile, "private key does not match public key"},
		{"cert and key swapped", keyFile, certFile, "load admin TLS certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := admin.LoadTLS(tc.cert, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadTLS: %v, want an error about %q", err, tc.want)
			}
		})
	}
}

// TestServeHugeBody sends a 3 MB registration over a real connection, as a
// client that ignores the limit would, and expects 413 and nothing stored.
func TestServeHugeBody(t *testing.T) {
	certFile, keyFile, pool := writeSelfSigned(t, t.TempDir())
	tlsCfg, err := admin.LoadTLS(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, scheme := range []string{"http", "https"} {
		t.Run(scheme, func(t *testing.T) {
			cfg := admin.Config{Token: testToken}
			hc := &http.Client{}
			if scheme == "https" {
				cfg.TLS = tlsCfg
				hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
			}
			addr := serveAPI(t, cfg)
			body := `{"address":"10.0.0.9","port":80,"meta":{"x":"` + strings.Repeat("a", 3_000_000) + `"}}`
			req, err := http.NewRequest("PUT", scheme+"://"+addr+"/v1/services/huge/instances/h1", bytes.NewReader([]byte(body)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+testToken)
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "larger than the 1048576 bytes allowed") {
				t.Errorf("HTTP %d %s, want 413 saying the limit", resp.StatusCode, b)
			}
			status, list, err := get(hc, scheme+"://"+addr+"/v1/services/huge", testToken)
			if err != nil || status != http.StatusNotFound {
				t.Errorf("after the rejected body: HTTP %d %s %v, want 404 (nothing stored)", status, list, err)
			}
		})
	}
}

// TestServeSlowHeaders checks that a client that opens a connection and
// never finishes its headers is cut off rather than held forever.
func TestServeSlowHeaders(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the header timeout")
	}
	addr := serveAPI(t, admin.Config{Token: testToken})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection with unfinished headers still open after 30s")
	}
}
