package disco

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// layers says, for every package of the module, which other packages of
// the module its non-test code may import. The arrows point one way: cmd
// wires everything; registry and zones are leaves; dnsserver reads the
// registry and zones and knows nothing of how health is decided, how the
// registry is stored or served over HTTP; health and the admin API see the
// registry, never DNS. A package missing from the table fails the test:
// give it its place here when you add it.
var layers = map[string][]string{
	"disco":          nil,
	"disco/registry": nil,
	"disco/zones":    nil,
	"disco/tsig":     nil,
	"disco/notify":   {"disco/tsig"},
	"disco/dnsserver": {
		"disco/registry", "disco/tsig", "disco/zones",
	},
	"disco/health": {"disco/registry"},
	"disco/admin":  {"disco/registry"},
	// A cluster node runs the etcd store's watch and takes the health
	// results and heartbeats it hands over.
	"disco/cluster": {"disco/registry", "disco/store/etcdstore"},
	"disco/store":   {"disco/registry"},
	"disco/store/etcdstore": {
		"disco/registry", "disco/store",
	},
	"disco/store/etcdstore/etcdtest": nil,
	"disco/cmd/disco": {
		"disco/admin", "disco/cluster", "disco/dnsserver", "disco/health", "disco/notify",
		"disco/registry", "disco/store", "disco/store/etcdstore", "disco/tsig", "disco/zones",
	},
	// Test-only packages and benchmark tools stand outside the server.
	"disco/e2e":            nil,
	"disco/e2e/cluster":    nil,
	"disco/bench/nullapi":  nil,
	"disco/bench/regload":  nil,
	"disco/bench/watchers": nil,
	"disco/bench/xfrload":  nil,
}

// pkg is what go list tells of one package.
type pkg struct {
	ImportPath string
	Imports    []string
}

// TestDependencies reads the module's import graph with go list and fails
// on every import that the layers table does not allow.
func TestDependencies(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not found")
	}
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	pkgs, err := decodePackages(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < len(layers)/2 {
		t.Fatalf("go list found %d packages, want about %d", len(pkgs), len(layers))
	}
	for _, p := range pkgs {
		allowed, known := layers[p.ImportPath]
		if !known {
			t.Errorf("package %s is not in the layers table of layering_test.go: add it with the module packages it may import", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			if !inModule(imp) || slices.Contains(allowed, imp) {
				continue
			}
			t.Errorf("%s imports %s, which its layer does not allow (allowed: %s)",
				p.ImportPath, imp, strings.Join(allowed, ", "))
		}
	}
}

// TestDependenciesCatchesWrongArrows checks the checker itself on a graph
// with arrows pointing the wrong way.
func TestDependenciesCatchesWrongArrows(t *testing.T) {
	for _, tc := range []struct{ from, to string }{
		{"disco/registry", "disco/store"},
		{"disco/zones", "disco/registry"},
		{"disco/dnsserver", "disco/admin"},
		{"disco/dnsserver", "disco/health"},
		{"disco/dnsserver", "disco/store"},
		{"disco/dnsserver", "disco/cluster"},
		{"disco/admin", "disco/cmd/disco"},
		{"disco/health", "disco/dnsserver"},
	} {
		if slices.Contains(layers[tc.from], tc.to) {
			t.Errorf("layers allow %s to import %s", tc.from, tc.to)
		}
	}
	for from, allowed := range layers {
		if slices.Contains(allowed, "disco/cmd/disco") {
			t.Errorf("layers allow %s to import the command", from)
		}
	}
}

func inModule(path string) bool { return path == "disco" || strings.HasPrefix(path, "disco/") }

// decodePackages reads go list -json's stream of JSON objects.
func decodePackages(b []byte) ([]pkg, error) {
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		var p pkg
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return pkgs, nil
		}
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, p)
	}
}
