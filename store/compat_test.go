package store_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"disco/registry"
)

// TestPreviousVersionDataFile opens a data file written by the version
// before grpc and exec checks and the http check options (registrations
// with http, tcp and ttl checks, none, a drained one, service settings),
// and checks that it loads as it was written and takes records with the
// new check fields.
func TestPreviousVersionDataFile(t *testing.T) {
	dir := t.TempDir()
	src, err := os.Open("testdata/previous-version.db.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	zr, err := gzip.NewReader(src)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.OpenFile(filepath.Join(dir, "disco.db"), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, zr); err != nil {
		t.Fatal(err)
	}
	dst.Close()

	checksOf := func(st *registry.State) []string {
		var lines []string
		for _, in := range st.Instances {
			j, _ := json.Marshal(in.Checks)
			line := in.Key().String() + " " + string(j)
			if in.Maintenance != nil {
				line += " drained: " + in.Maintenance.Reason
			}
			lines = append(lines, line)
		}
		slices.Sort(lines)
		return lines
	}
	old := []string{
		`batch/worker-1 [{"type":"ttl","ttl":"30s","interval":"10s","timeout":"2s","rise":1,"fall":3}]`,
		`db/db-1 [{"type":"tcp","address":"[fd00::5]:5432","interval":"5s","timeout":"1s","rise":1,"fall":3}]`,
		`multi/m-1 [{"type":"http","url":"https://10.0.0.3/h","interval":"1s","timeout":"500ms","rise":2,"fall":5,"deregister_after":"1m0s"},` +
			`{"type":"tcp","address":"10.0.0.3:443","interval":"10s","timeout":"2s","rise":1,"fall":3}]`,
		`plain/p-1 []`,
		`web/web-1 [{"type":"http","url":"http://10.0.0.1:8080/health","interval":"10s","timeout":"2s","rise":1,"fall":3}] drained: kernel upgrade`,
	}

	ctx := context.Background()
	b := open(t, dir)
	st, err := b.Load(ctx)
	if err != nil {
		t.Fatalf("load the previous version's data file: %v", err)
	}
	if got := checksOf(st); !slices.Equal(got, old) {
		t.Errorf("loaded\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(old, "\n"))
	}
	if s := st.Services["web"]; s.DNSTTL == nil || *s.DNSTTL != 30 {
		t.Errorf("web settings = %+v, want dns_ttl 30", s)
	}

	in, err := registry.NewInstance("kinds", "k-1", registry.Registration{Address: "10.0.0.5", Port: 443, Checks: []registry.Check{
		{Type: registry.CheckHTTP, URL: "https://10.0.0.5/health", Method: "POST", Headers: map[string][]string{"X-Probe": {"yes"}},
			Body: "ping", TLSSkipVerify: true, TLSServerName: "probe.test"},
		{Type: registry.CheckGRPC, Address: "10.0.0.5:50051", Service: "api", TLS: true},
		{Type: registry.CheckExec, Command: []string{"/usr/lib/nagios/plugins/check_disk", "-w", "10%"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	in.Revision = 1
	if err := b.Commit(ctx, []registry.Change{put(in)}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b = open(t, dir)
	defer b.Close()
	st, err = b.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(old), `kinds/k-1 [`+
		`{"type":"http","url":"https://10.0.0.5/health","method":"POST","headers":{"X-Probe":["yes"]},"body":"ping","tls_skip_verify":true,"tls_server_name":"probe.test","interval":"10s","timeout":"2s","rise":1,"fall":3},`+
		`{"type":"grpc","address":"10.0.0.5:50051","service":"api","tls":true,"interval":"10s","timeout":"2s","rise":1,"fall":3},`+
		`{"type":"exec","command":["/usr/lib/nagios/plugins/check_disk","-w","10%"],"interval":"10s","timeout":"2s","rise":1,"fall":3}]`)
	slices.Sort(want)
	if got := checksOf(st); !slices.Equal(got, want) {
		t.Errorf("after adding the new kinds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
