package admin_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps the API away from the parts it must not know: explain
// reaches the DNS server only through the Explainer that the program wires
// in.
func TestImports(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool")
	}
	out, err := exec.Command(goTool, "list", "-deps", "disco/admin").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		switch pkg {
		case "disco/dnsserver", "disco/health", "disco/store", "disco/cluster", "disco/cmd/disco":
			t.Errorf("admin depends on %s", pkg)
		}
	}
}
