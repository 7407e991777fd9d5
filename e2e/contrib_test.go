package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const (
	unitFile = "../contrib/systemd/disco.service"
	envFile  = "../contrib/systemd/disco.env"
)

// TestSystemdUnit checks the shipped unit with systemd's own verifier,
// pointed at the built binary.
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ExecStart=/usr/local/bin/disco serve\n", "ExecReload=/bin/kill -HUP $MAINPID\n",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE\n", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n",
		"NoNewPrivileges=yes\n", "ProtectSystem=strict\n", "StateDirectory=disco\n",
		"Environment=DISCO_DATA_DIR=/var/lib/disco\n", "EnvironmentFile=-/etc/disco/disco.env\n",
		"Restart=on-failure\n",
	} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("%s lacks %q", unitFile, strings.TrimSpace(want))
		}
	}
	analyze, ok := lookBin("systemd-analyze")
	if !ok {
		t.Skip("systemd-analyze is not installed")
	}
	path := filepath.Join(t.TempDir(), "disco.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/disco", discoBin)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "verify", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// Warnings about other units on this machine are not ours.
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "disco.service") {
			t.Errorf("systemd-analyze verify: %s", l)
		}
	}
}

// TestEnvFileNamesFlags checks that every variable the example
// environment file and the unit set is one "disco serve" reads.
func TestEnvFileNamesFlags(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	help, err := exec.CommandContext(ctx, discoBin, "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("disco serve --help: %v\n%s", err, help)
	}
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`\[\$(DISCO_[A-Z_]+)\]`).FindAllStringSubmatch(string(help), -1) {
		known[m[1]] = true
	}
	if len(known) < 10 {
		t.Fatalf("found only %d variables in disco serve --help:\n%s", len(known), help)
	}
	set := regexp.MustCompile(`(?m)^(?:#|Environment=)?(DISCO_[A-Z_]+)=`)
	for _, file := range []string{envFile, unitFile} {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		matches := set.FindAllStringSubmatch(string(text), -1)
		if len(matches) == 0 {
			t.Errorf("%s sets no DISCO_ variable", file)
		}
		for _, m := range matches {
			if !known[m[1]] {
				t.Errorf("%s sets %s, which disco serve does not read", file, m[1])
			}
		}
	}
}
