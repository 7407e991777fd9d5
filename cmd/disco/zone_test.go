package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestZoneCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const head = "$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 5\n@ IN NS ns\nns IN A 127.0.0.1\n"
	good := write("example.com.zone", head+"www IN A 192.0.2.10\n")
	other := write("other.zone", "$ORIGIN example.org.\n"+head)
	bad := write("bad.test.zone", "$ORIGIN bad.test.\n@ IN SOA ns hm 1 1 1 1 1\nwww IN A 999.1.1.1\n")
	disco := write("disco.internal.zone", head+"www IN A 127.0.0.2\nweb.service IN A 10.0.0.1\n")
	corp := write("corp.internal.zone", head+"web.service IN A 10.0.0.1\n")
	dup := write("dup.zone", "$ORIGIN example.com.\n"+head)

	tests := []struct {
		name   string
		args   []string
		env    string // DISCO_DOMAIN
		stdout []string
		stderr []string
		err    string
	}{
		{name: "good", args: []string{good, other},
			stdout: []string{good + ": ok (example.com., 4 records)", other + ": ok (example.org., 3 records)"}},
		{name: "bad names the line", args: []string{bad},
			stderr: []string{bad + `:3: invalid A record: not an IPv4 address "999.1.1.1"`},
			err:    "zone check: 1 of 1 zone files have problems"},
		{name: "good and bad", args: []string{good, bad},
			stdout: []string{good + ": ok (example.com., 4 records)"},
			stderr: []string{bad + `:3: invalid A record: not an IPv4 address "999.1.1.1"`},
			err:    "zone check: 1 of 2 zone files have problems"},
		{name: "reserved names of the default domain", args: []string{disco},
			stderr: []string{disco + ":6: web.service.disco.internal. is at or under service.disco.internal., which is reserved for discovery names; zone files may not define names there"},
			err:    "zone check: 1 of 1 zone files have problems"},
		{name: "domain flag after the file", args: []string{disco, corp, "--domain", "Corp.Internal"},
			stdout: []string{disco + ": ok (disco.internal., 5 records)"},
			stderr: []string{corp + ":5: web.service.corp.internal. is at or under service.corp.internal., which is reserved for discovery names; zone files may not define names there"},
			err:    "zone check: 1 of 2 zone files have problems"},
		{name: "domain from the environment", args: []string{disco}, env: "corp.internal.",
			stdout: []string{disco + ": ok (disco.internal., 5 records)"}},
		{name: "same origin twice", args: []string{good, dup},
			stdout: []string{good + ": ok (example.com., 4 records)"},
			stderr: []string{dup + ": zone example.com. is already defined in " + good},
			err:    "zone check: 1 of 2 zone files have problems"},
		{name: "missing file", args: []string{filepath.Join(dir, "nope.zone")},
			stderr: []string{filepath.Join(dir, "nope.zone") + ": cannot read: no such file or directory"},
			err:    "zone check: 1 of 1 zone files have problems"},
		{name: "no files", err: "zone check: name at least one zone file (disco zone check FILE...)"},
		{name: "bad domain", args: []string{good, "--domain", "a..b"}, err: `zone check: domain "a..b" is not a domain name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DISCO_DOMAIN", tt.env)
			if tt.env == "" {
				os.Unsetenv("DISCO_DOMAIN")
			}
			var stdout, stderr bytes.Buffer
			args := append([]string{"disco", "zone", "check"}, tt.args...)
			err := runApp(t.Context(), newApp(&stdout, &stderr), args)
			if got := errString(err); got != tt.err {
				t.Errorf("error %q, want %q", got, tt.err)
			}
			if got, want := stdout.String(), lines(tt.stdout); got != want {
				t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
			}
			if got, want := stderr.String(), lines(tt.stderr); got != want {
				t.Errorf("stderr:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestZoneCheckHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	app := newApp(&stdout, &stderr)
	if err := app.RunContext(t.Context(), []string{"disco", "zone", "check", "--help"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"disco zone check /etc/disco/zones/*.zone", "--domain DOMAIN", "DISCO_DOMAIN", "disco.internal."} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, stdout.String())
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func lines(ls []string) string {
	if len(ls) == 0 {
		return ""
	}
	return strings.Join(ls, "\n") + "\n"
}
