package health

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"disco/registry"
)

// script writes an executable shell script with body into dir and returns
// its path.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func execCheck(timeout time.Duration, command ...string) registry.Check {
	return registry.Check{Type: registry.CheckExec, Command: command,
		Interval: registry.Duration(10 * time.Second), Timeout: registry.Duration(timeout), Rise: 1, Fall: 1}
}

// testExecChecker is an ExecChecker with this process's PATH and nothing
// else in its commands' environment.
func testExecChecker(maxProcs int) *ExecChecker {
	return NewExecChecker(ExecConfig{MaxProcs: maxProcs, Env: []string{"PATH=" + os.Getenv("PATH")}})
}

func TestExecChecker(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	dir := t.TempDir()
	notExec := filepath.Join(dir, "plain.txt")
	os.WriteFile(notExec, []byte("echo hi\n"), 0o644)
	badInterp := filepath.Join(dir, "bad-interp")
	os.WriteFile(badInterp, []byte("#!/no/such/interpreter\n"), 0o755)

	tests := []struct {
		name    string
		command []string
		status  registry.Status
		output  string // the whole output, after normalize
	}{
		{"exit 0", []string{script(t, dir, "ok", "echo all good; exit 0")}, registry.StatusPassing, "all good"},
		{"exit 1", []string{script(t, dir, "warn", "echo disk 85%; exit 1")}, registry.StatusWarning, "disk 85%"},
		{"exit 2", []string{script(t, dir, "crit", "echo disk 99% >&2; exit 2")}, registry.StatusCritical, "disk 99%"},
		{"exit 3", []string{script(t, dir, "unknown", "echo cannot tell; exit 3")}, registry.StatusCritical, "cannot tell"},
		{"silent failure", []string{script(t, dir, "silent", "exit 7")}, registry.StatusCritical, "exit status 7, no output"},
		{"killed by a signal", []string{script(t, dir, "segv", "kill -SEGV $$")}, registry.StatusCritical, "killed by signal SIGSEGV, no output"},
		{"arguments without a shell", []string{script(t, dir, "args", `printf '[%s]' "$@"`), "a b", "$HOME", "*"}, registry.StatusPassing, "[a b][$HOME][*]"},
		{"bare name in PATH", []string{"sh", "-c", "echo from PATH"}, registry.StatusPassing, "from PATH"},
		{"environment as given", []string{"sh", "-c", "env | grep -v '^PWD=\\|^SHLVL=\\|^_=' | sort"}, registry.StatusPassing, "PATH=" + os.Getenv("PATH")},
		{"missing program", []string{filepath.Join(dir, "nope")}, registry.StatusCritical, "cannot run " + filepath.Join(dir, "nope") + ": no such file"},
		{"missing name", []string{"disco-no-such-check"}, registry.StatusCritical, "cannot run disco-no-such-check: not found in PATH " + os.Getenv("PATH")},
		{"not executable", []string{notExec}, registry.StatusCritical, "cannot run " + notExec + ": it is not executable (chmod +x)"},
		{"a directory", []string{dir}, registry.StatusCritical, "cannot run " + dir + ": it is a directory"},
		{"missing interpreter", []string{badInterp}, registry.StatusCritical, "cannot run " + badInterp + ": its interpreter (the #! line) or a library it needs is missing"},
	}
	e := testExecChecker(0)
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "-"), func(t *testing.T) {
			got := e.Check(context.Background(), execCheck(5*time.Second, tt.command...)).normalize()
			if got.Status != tt.status || got.Output != tt.output {
				t.Errorf("got %s %q, want %s %q", got.Status, got.Output, tt.status, tt.output)
			}
		})
	}
}

// TestExecCheckerOutputCapped checks that the output is the first
// MaxOutput bytes, and that a command writing far more is not held up by
// it.
func TestExecCheckerOutputCapped(t *testing.T) {
	dir := t.TempDir()
	big := script(t, dir, "big", `echo head-marker; head -c 3400 /dev/zero | tr '\0' x; echo; echo mid-marker
head -c 3000 /dev/zero | tr '\0' y; echo; echo tail-marker`)
	flood := script(t, dir, "flood", `head -c 50000000 /dev/zero; echo; echo done-marker; exit 0`)
	e := testExecChecker(0)

	got := e.Check(context.Background(), execCheck(5*time.Second, big)).normalize()
	if got.Status != registry.StatusPassing || !strings.HasPrefix(got.Output, "head-marker x") ||
		!strings.Contains(got.Output, "mid-marker") || strings.Contains(got.Output, "tail-marker") || len(got.Output) > MaxOutput {
		t.Errorf("big output: %s, %d bytes, ending %q; want passing, the first %d bytes (mid-marker, not tail-marker)",
			got.Status, len(got.Output), got.Output[max(0, len(got.Output)-40):], MaxOutput)
	}

	start := time.Now()
	got = e.Check(context.Background(), execCheck(10*time.Second, flood)).normalize()
	if got.Status != registry.StatusPassing || len(got.Output) > MaxOutput || strings.Contains(got.Output, "done-marker") {
		t.Errorf("50 MB of output then exit 0: %s, %d bytes of output", got.Status, len(got.Output))
	}
	t.Logf("50 MB of output read and dropped in %s", time.Since(start))
}

// alive reports whether process pid still runs (a zombie does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// zombieChildren returns the pids of this process's children that ended
// and were not waited for.
func zombieChildren(t *testing.T) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	var out []int
	me := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		fields := strings.Fields(s[i+1:])
		if len(fields) > 1 && fields[0] == "Z" && fields[1] == strconv.Itoa(me) {
			out = append(out, pid)
		}
	}
	return out
}

// readPids reads the pids a script wrote, one a line.
func readPids(t *testing.T, path string) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the script did not write its pids: %v", err)
	}
	var pids []int
	for f := range strings.FieldsSeq(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("pid file: %q", b)
		}
		pids = append(pids, pid)
	}
	return pids
}

// TestExecCheckerKillsGroup checks that a command that outlives its
// timeout is killed with every process it started, that what a command
// leaves running when it ends is killed too, and that no zombie stays.
func TestExecCheckerKillsGroup(t *testing.T) {
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	hang := script(t, dir, "hang", fmt.Sprintf(`echo started-marker
sleep 30 & echo $! >>%[1]s
sh -c 'sleep 30 & echo $! >>%[1]s; sleep 30' & echo $! >>%[1]s
echo $$ >>%[1]s
yes flood-marker`, pids))
	leave := script(t, dir, "leave", fmt.Sprintf(`sleep 30 & echo $! >>%[1]s.2
echo $$ >>%[1]s.2
echo left-a-child; exit 0`, pids))
	e := testExecChecker(0)

	const timeout = 3 * time.Second // long enough for the script to start on a loaded machine
	start := time.Now()
	got := e.Check(context.Background(), execCheck(timeout, hang)).normalize()
	took := time.Since(start)
	if got.Status != registry.StatusCritical || !strings.HasPrefix(got.Output, "timeout: "+hang+" did not finish within 3s; killed it and its process group; output: started-marker flood-marker") ||
		len(got.Output) > MaxOutput {
		t.Errorf("got %s %.120q (%d bytes)", got.Status, got.Output, len(got.Output))
	}
	if took > timeout+time.Second {
		t.Errorf("the probe took %s, timeout %s", took, timeout)
	}
	hung := readPids(t, pids)
	if len(hung) != 4 {
		t.Fatalf("the script wrote %d pids, want 4", len(hung))
	}

	got = e.Check(context.Background(), execCheck(5*time.Second, leave)).normalize()
	if got.Status != registry.StatusPassing || got.Output != "left-a-child" {
		t.Errorf("a command that left a child running: %s %q, want passing left-a-child", got.Status, got.Output)
	}
	left := readPids(t, pids+".2")

	deadline := time.Now().Add(2 * time.Second)
	for _, pid := range append(hung, left...) {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("process %d still runs", pid)
		}
	}
	if z := zombieChildren(t); len(z) > 0 {
		t.Errorf("zombie children left: %v", z)
	}
}

// TestExecCheckerCap checks that no more commands run at once than the
// cap, and that a probe that cannot get a slot within its timeout says so.
func TestExecCheckerCap(t *testing.T) {
	dir := t.TempDir()
	running := filepath.Join(dir, "running")
	os.Mkdir(running, 0o755)
	log := filepath.Join(dir, "log")
	slow := script(t, dir, "slow", fmt.Sprintf(`mkdir %[1]s/$$; ls %[1]s | wc -l >>%[2]s; sleep 0.3; rmdir %[1]s/$$`, running, log))
	e := testExecChecker(2)

	var wg sync.WaitGroup
	results := make([]Result, 6)
	for i := range results {
		wg.Go(func() { results[i] = e.Check(context.Background(), execCheck(5*time.Second, slow)) })
	}
	wg.Wait()
	for i, r := range results {
		if r.Status != registry.StatusPassing {
			t.Errorf("probe %d: %s %q", i, r.Status, r.Output)
		}
	}
	b, _ := os.ReadFile(log)
	for f := range strings.FieldsSeq(string(b)) {
		if n, _ := strconv.Atoi(f); n > 2 {
			t.Errorf("%d commands ran at once, cap 2 (log %q)", n, b)
		}
	}

	// Both slots busy for longer than a probe's timeout.
	block := script(t, dir, "block", fmt.Sprintf(`touch %[1]s/started.$$; while [ ! -e %[1]s/release ]; do sleep 0.02; done`, dir))
	for range 2 {
		wg.Go(func() { e.Check(context.Background(), execCheck(30*time.Second, block)) })
	}
	if !waitFor(10*time.Second, func() bool { m, _ := filepath.Glob(filepath.Join(dir, "started.*")); return len(m) == 2 }) {
		os.WriteFile(filepath.Join(dir, "release"), nil, 0o644)
		wg.Wait()
		t.Fatal("the two blocking commands did not start")
	}
	got := e.Check(context.Background(), execCheck(100*time.Millisecond, "/bin/true"))
	os.WriteFile(filepath.Join(dir, "release"), nil, 0o644)
	wg.Wait()
	if want := "timeout: all 2 exec slots stayed busy for 100ms; the command did not run"; got.Status != registry.StatusCritical || got.Output != want {
		t.Errorf("got %s %q, want critical %q", got.Status, got.Output, want)
	}
}
