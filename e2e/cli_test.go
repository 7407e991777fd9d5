package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// result is what one run of the disco binary did.
type result struct {
	stdout, stderr string
	code           int
}

// line describes the result for a test message.
func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// oneLineErr reports whether the run failed with exactly one line on
// stderr and nothing on stdout.
func (r result) oneLineErr() bool {
	return r.code != 0 && r.stdout == "" && strings.Count(r.stderr, "\n") == 1 && strings.HasSuffix(r.stderr, "\n")
}

// runDisco runs the disco binary with args, as a user in a shell does, with
// the given extra environment variables.
func runDisco(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, discoBin, args...)
	cmd.Env = append(childEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("disco %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// clientEnv points the client commands at d.
func (d *disco) clientEnv() []string {
	return []string{"DISCO_ADMIN=" + d.admin, "DISCO_TOKEN=" + testToken}
}

// doubled reports whether one ": "-separated part of line repeats the
// start of the next, as in "listen: listen udp ...".
func doubled(line string) bool {
	parts := strings.Split(line, ": ")
	for i := 0; i+1 < len(parts); i++ {
		a, b := strings.TrimSpace(parts[i]), strings.TrimSpace(parts[i+1])
		if a != "" && b != "" && (a == b || strings.HasPrefix(b, a+" ") || strings.HasPrefix(a, b+" ")) {
			return true
		}
	}
	return false
}

// TestCLIConventions drives the binary as a new user types it: help and
// version in every form, a mistyped command, durations in flags, the
// default check timeout, idempotent deregistration and the output formats.
func TestCLIConventions(t *testing.T) {
	t.Parallel()
	d := startDisco(t)
	env := d.clientEnv()
	instances := func(service string) []string {
		t.Helper()
		code, body := d.api(t, http.MethodGet, "/v1/services/"+service, "")
		if code == http.StatusNotFound {
			return nil
		}
		var v struct {
			Instances []struct {
				ID     string
				Checks []struct{ Interval, Timeout string }
			}
		}
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("GET %s: %d %s", service, code, body)
		}
		var ids []string
		for _, in := range v.Instances {
			ids = append(ids, in.ID)
			for _, c := range in.Checks {
				ids = append(ids, in.ID+":"+c.Interval+"/"+c.Timeout)
			}
		}
		return ids
	}

	t.Run("help", func(t *testing.T) {
		top := runDisco(t, env, "help")
		if top.code != 0 || !strings.Contains(top.stdout, "register") || !strings.Contains(top.stdout, "serve") || top.stderr != "" {
			t.Fatalf("disco help: %v", top)
		}
		if r := runDisco(t, env, "--help"); r.stdout != top.stdout {
			t.Errorf("disco --help differs from disco help: %v", r)
		}
		want := runDisco(t, env, "help", "register")
		if want.code != 0 || !strings.Contains(want.stdout, "disco register") || !strings.Contains(want.stdout, "--check-http") {
			t.Fatalf("disco help register: %v", want)
		}
		for _, args := range [][]string{
			{"register", "--help"}, {"register", "web", "web-1", "--help"}, {"register", "web", "web-1", "10.0.0.1:80", "-h"},
			{"register", "-h", "web", "web-1", "10.0.0.1:80", "--tag", "v2"}, {"-h", "register"},
		} {
			if r := runDisco(t, env, args...); r.code != 0 || r.stdout != want.stdout || r.stderr != "" {
				t.Errorf("disco %s: %v", strings.Join(args, " "), r)
			}
		}
		if ids := instances("web"); len(ids) > 0 {
			t.Errorf("help registered %v", ids)
		}
	})

	t.Run("version", func(t *testing.T) {
		a, b := runDisco(t, env, "--version"), runDisco(t, env, "version")
		if a.code != 0 || b.code != 0 || a.stdout != b.stdout || !regexp.MustCompile(`^disco \S+ \(revision \S+\)\n$`).MatchString(a.stdout) {
			t.Errorf("--version: %v; version: %v", a, b)
		}
	})

	t.Run("unknown command", func(t *testing.T) {
		r := runDisco(t, env, "registr", "web")
		if !r.oneLineErr() || !strings.Contains(r.stderr, `unknown command "registr"; did you mean "register"?`) ||
			strings.Contains(r.stderr, "No help topic") {
			t.Errorf("disco registr: %v", r)
		}
	})

	t.Run("durations in flags", func(t *testing.T) {
		ttl := func() string {
			_, body := d.api(t, http.MethodGet, "/v1/services/db", "")
			var v struct{ Settings map[string]any }
			json.Unmarshal([]byte(body), &v)
			return fmt.Sprint(v.Settings["dns_ttl"])
		}
		for _, in := range []string{"10s", "20", "1m"} {
			r := runDisco(t, env, "settings", "db", "--dns-ttl", in)
			want := map[string]string{"10s": "10", "20": "20", "1m": "60"}[in]
			if r.code != 0 || ttl() != want {
				t.Errorf("settings --dns-ttl %s: %v, stored %s, want %s", in, r, ttl(), want)
			}
		}
		for _, in := range []string{"banana", "1.5s", "-3"} {
			r := runDisco(t, env, "settings", "db", "--dns-ttl", in)
			if !r.oneLineErr() || !strings.Contains(r.stderr, "--dns-ttl") || ttl() != "60" {
				t.Errorf("settings --dns-ttl %s: %v, stored %s", in, r, ttl())
			}
		}
		r := runDisco(t, env, "register", "batch", "job-1", "10.0.0.7:80", "--check-ttl", "30")
		if r.code != 0 || !slices.Contains(instances("batch"), "job-1:10s/2s") {
			t.Errorf("--check-ttl 30: %v, stored %v", r, instances("batch"))
		}
	})

	t.Run("interval without timeout", func(t *testing.T) {
		for in, want := range map[string]string{"2s": "2s/1s", "1": "1s/500ms", "30s": "30s/2s"} {
			id := "web-" + strings.Trim(in, "s")
			r := runDisco(t, env, "register", "web", id, "10.0.0.9:80", "--check-http", "http://127.0.0.1:1/", "--interval", in)
			if r.code != 0 || !slices.Contains(instances("web"), id+":"+want) {
				t.Errorf("--interval %s: %v, stored %v, want timeout %s", in, r, instances("web"), want)
			}
		}
	})

	t.Run("deregister twice", func(t *testing.T) {
		if r := runDisco(t, env, "register", "api", "api-1", "10.0.0.5:443"); r.code != 0 {
			t.Fatal(r)
		}
		first, second := runDisco(t, env, "deregister", "api", "api-1"), runDisco(t, env, "deregister", "api", "API-1")
		if first.code != 0 || first.stdout != "deregistered api/api-1; DNS no longer serves it\n" {
			t.Errorf("first deregister: %v", first)
		}
		if second.code != 0 || second.stdout != "api/api-1 is not registered; nothing to deregister\n" {
			t.Errorf("second deregister: %v", second)
		}
		code, body := d.api(t, http.MethodDelete, "/v1/services/api/instances/api-1", "")
		if code != http.StatusOK || strings.TrimSpace(body) != `{"service":"api","id":"api-1","removed":false}` {
			t.Errorf("DELETE again: %d %s", code, body)
		}
	})

	t.Run("output formats", func(t *testing.T) {
		// Instances without checks: their rows do not change between the
		// runs compared (a check's first result would).
		if r := runDisco(t, env, "register", "fmt", "fmt-1", "10.0.0.7:80", "--tag", "v2"); r.code != 0 {
			t.Fatal(r)
		}
		for _, cmd := range [][]string{{"services"}, {"instances", "fmt"}, {"settings", "db"}} {
			// disco services lists every service, and the checks of the
			// others may settle between two runs: compare runs taken
			// while nothing changed (a few tries at most).
			var table, asTable, asJSON, legacy result
			for try := 0; try < 5; try++ {
				table = runDisco(t, env, cmd...)
				asTable = runDisco(t, env, append(cmd, "--output", "table")...)
				asJSON = runDisco(t, env, append(cmd, "--output", "json")...)
				legacy = runDisco(t, env, append(cmd, "--json")...)
				if asTable.stdout == table.stdout && legacy.stdout == asJSON.stdout {
					break
				}
			}
			if table.code != 0 || asTable.stdout != table.stdout || strings.HasPrefix(table.stdout, "{") {
				t.Errorf("%v: table %v, --output table %v", cmd, table, asTable)
			}
			if asJSON.code != 0 || !json.Valid([]byte(asJSON.stdout)) || legacy.stdout != asJSON.stdout {
				t.Errorf("%v: --output json %v, --json %v", cmd, asJSON, legacy)
			}
			if r := runDisco(t, env, append(cmd, "--output", "yaml")...); !r.oneLineErr() || !strings.Contains(r.stderr, `--output "yaml": want table or json`) {
				t.Errorf("%v --output yaml: %v", cmd, r)
			}
		}
	})

	t.Run("pretty", func(t *testing.T) {
		_, compact := d.api(t, http.MethodGet, "/v1/services", "")
		_, pretty := d.api(t, http.MethodGet, "/v1/services?pretty", "")
		var want bytes.Buffer
		json.Indent(&want, []byte(compact), "", "  ")
		if strings.Count(compact, "\n") != 1 || pretty != want.String() {
			t.Errorf("?pretty:\n%s\nwant:\n%s", pretty, want.String())
		}
	})
}

// TestServeRefuses: disco serve refuses extra arguments, a --zones-dir
// that does not exist and busy addresses at once, with one error line that
// names the flag (and the address) once.
func TestServeRefuses(t *testing.T) {
	held := holdPort(t)
	heldAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(held))
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"extra argument", []string{"bogus-arg"}, []string{`serve takes no arguments, got "bogus-arg"`}},
		{"missing zones dir", []string{"--zones-dir", "/nonexistent-disco-zones"}, []string{"--zones-dir /nonexistent-disco-zones: no such file or directory"}},
		{"zones dir is a file", []string{"--zones-dir", "/etc/hostname"}, []string{"--zones-dir /etc/hostname is not a directory"}},
		{"busy DNS port", []string{"--dns-addr", heldAddr},
			[]string{"--dns-addr " + heldAddr + ": cannot listen on udp: bind: address already in use; another program"}},
		{"busy admin port", []string{"--admin-addr", heldAddr},
			[]string{"--admin-addr " + heldAddr + ": cannot listen on tcp: bind: address already in use; another program"}},
		{"bad flag value", []string{"--dns-ttl", "soon"}, []string{`--dns-ttl "soon": want a duration`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--dns-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, tc.args...)
			start := time.Now()
			r := runDisco(t, nil, args...)
			last := strings.TrimSpace(r.stderr)
			if i := strings.LastIndexByte(last, '\n'); i >= 0 {
				last = last[i+1:]
			}
			if r.code == 0 || time.Since(start) > 5*time.Second {
				t.Fatalf("serve %s: %v after %s", strings.Join(tc.args, " "), r, time.Since(start))
			}
			for _, want := range tc.want {
				if !strings.HasPrefix(last, "disco: ") || !strings.Contains(last, want) {
					t.Errorf("last line %q does not say %q", last, want)
				}
			}
			if doubled(last) || strings.Count(last, heldAddr) > 1 {
				t.Errorf("doubled prefix or address in %q", last)
			}
		})
	}
}

// holdPort binds a loopback port for UDP and TCP until the test ends.
func holdPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			pc.Close()
			continue
		}
		t.Cleanup(func() { pc.Close(); ln.Close() })
		return port
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

// TestZoneReloadBadFile: reloading a zone file with an error is the
// client's problem (422) with file:line once and no doubled prefix, and
// the previous version of the zone keeps serving.
func TestZoneReloadBadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "example.com.zone")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(exampleZone, "192.0.2.1")), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDisco(t, "--zones-dir", dir)
	www := func() []string { return values(exchange(t, d.dnsAddr, "udp", "www.example.com", dns.TypeA, false)) }
	if got := www(); !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Fatalf("www before: %v", got)
	}
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "oops IN A not-an-ip")
	f.Close()
	src, _ := os.ReadFile(file)
	line := strings.Count(string(src), "\n")

	code, body := d.api(t, http.MethodPost, "/v1/zones/reload", "")
	var eb struct{ Error string }
	json.Unmarshal([]byte(body), &eb)
	if code != http.StatusUnprocessableEntity {
		t.Errorf("reload: HTTP %d %s, want 422", code, body)
	}
	at := fmt.Sprintf("%s:%d: ", file, line)
	if strings.Count(eb.Error, "example.com.zone:") != 1 || !strings.Contains(eb.Error, at) || doubled(eb.Error) {
		t.Errorf("error %q: want %q once and no doubled prefix", eb.Error, at)
	}
	if got := www(); !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Errorf("www after the failed reload: %v", got)
	}
	if code, _ := d.api(t, http.MethodGet, "/readyz", ""); code != http.StatusOK || d.exited() {
		t.Errorf("server not ready after the failed reload: %d", code)
	}
}

// TestStartupLogWords: the start-up log says how the journal is flushed
// in words, not as a flag name.
func TestStartupLogWords(t *testing.T) {
	t.Parallel()
	d := startDisco(t)
	line := d.waitLine(t, "the data file line", func(l string) bool { return strings.Contains(l, `"data file opened"`) })
	var rec map[string]any
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatal(err)
	}
	flush, _ := rec["journal_flush"].(string)
	if _, old := rec["async_sync"]; old || !strings.Contains(flush, "sync") || len(strings.Fields(flush)) < 3 {
		t.Errorf("start-up line %s: want journal_flush in words", line)
	}
}

// TestCompletion loads the completion scripts into real shells and asks
// them to complete.
func TestCompletion(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, shell := range []string{"bash", "zsh"} {
		r := runDisco(t, nil, "completion", shell)
		if r.code != 0 {
			t.Fatalf("completion %s: %v", shell, r)
		}
		if err := os.WriteFile(filepath.Join(dir, "disco."+shell), []byte(r.stdout), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if r := runDisco(t, nil, "completion", "fish"); !r.oneLineErr() || !strings.Contains(r.stderr, "want bash or zsh") {
		t.Errorf("completion fish: %v", r)
	}
	cases := []struct {
		line string // what is typed; the cursor is at its end
		want []string
	}{
		{"disco reg", []string{"register"}},
		{"disco ", []string{"serve", "register", "instances", "zone", "help", "completion"}},
		{"disco zone ", []string{"check"}},
		{"disco help reg", []string{"register"}},
		{"disco register web web-1 --check-h", []string{"--check-http", "--check-http-method", "--check-header"}},
		{"disco register --tag register --wei", []string{"--weight"}},
		{"disco serve --dns-", []string{"--dns-addr", "--dns-ttl"}},
		{"disco --ver", []string{"--version"}},
		{"disco instances --output json we", nil},
	}
	t.Run("bash", func(t *testing.T) {
		bash, err := exec.LookPath("bash")
		if err != nil {
			t.Skip("bash is not installed")
		}
		script := filepath.Join(dir, "disco.bash")
		if out, err := exec.Command(bash, "-c", "source "+script+" && complete -p disco").CombinedOutput(); err != nil ||
			!strings.Contains(string(out), "-F _disco disco") {
			t.Fatalf("loading the bash script: %v %s", err, out)
		}
		for _, tc := range cases {
			words := strings.Split(tc.line, " ")
			prog := fmt.Sprintf(`source %s
COMP_WORDS=(%s); COMP_CWORD=%d; COMP_LINE=%q; COMP_POINT=${#COMP_LINE}
_disco
printf '%%s\n' "${COMPREPLY[@]}"`, script, quoteWords(words), len(words)-1, tc.line)
			out, err := exec.Command(bash, "-c", prog).CombinedOutput()
			if got := fields(string(out)); err != nil || !sameSet(got, tc.want) {
				t.Errorf("bash completes %q to %q (%v), want %q", tc.line, got, err, tc.want)
			}
		}
	})
	t.Run("zsh", func(t *testing.T) {
		zsh, err := exec.LookPath("zsh")
		if err != nil {
			t.Skip("zsh is not installed (Debian package zsh)")
		}
		script := filepath.Join(dir, "disco.zsh")
		load := "autoload -U compinit && compinit -u -d " + filepath.Join(dir, "zcompdump") + " && source " + script
		if out, err := exec.Command(zsh, "-f", "-c", load+` && print -r -- $_comps[disco]`).CombinedOutput(); err != nil ||
			strings.TrimSpace(string(out)) != "_disco" {
			t.Fatalf("loading the zsh script: %v %s", err, out)
		}
		for _, tc := range cases {
			words := strings.Split(tc.line, " ")
			// The candidates before zsh's own prefix matching (compadd).
			prog := fmt.Sprintf("%s && _disco_candidates %s", load, quoteWords(words[1:]))
			out, err := exec.Command(zsh, "-f", "-c", prog).CombinedOutput()
			cur := words[len(words)-1]
			var got []string
			for _, c := range fields(string(out)) {
				if strings.HasPrefix(c, cur) {
					got = append(got, c)
				}
			}
			if err != nil || !sameSet(got, tc.want) {
				t.Errorf("zsh completes %q to %q (%v %s), want %q", tc.line, got, err, out, tc.want)
			}
		}
	})
}

// quoteWords quotes words for a shell.
func quoteWords(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

func fields(s string) []string { return strings.Fields(s) }

// sameSet reports whether got holds every word of want, and for a want of
// one word or none, nothing else.
func sameSet(got, want []string) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return len(want) > 1 || len(got) == len(want)
}
