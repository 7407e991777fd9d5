package e2e

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The README's quick start is run as written. Its blocks that the test
// runs carry a marker on the line before the fence:
//
//	<!-- readme-test: serve -->  a sh block that builds and starts the
//	                             server (the line "bin/disco serve" is
//	                             started in the background, the others run)
//	<!-- readme-test: run -->    a console block: "$ " lines are commands
//	                             (a trailing "\" continues one), the lines
//	                             after each are its exact output
//
// In expected output, a line ending in "..." matches any line that starts
// with what comes before, and timestamps match any timestamp. The test
// rewrites the default addresses (127.0.0.1:8053, -p 8053, 127.0.0.1:8054)
// to free ports in the command lines, sets them for the server and the
// client commands in the environment (DISCO_*), and puts bin/disco and the
// data directory in a temporary directory.

const readme = "../README.md"

// readmeBlock is one marked block of the README.
type readmeBlock struct {
	kind  string // "serve" or "run"
	line  int    // of the marker
	lines []string
}

// readmeBlocks returns the README's marked blocks in order.
func readmeBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	f, err := os.Open(readme)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	marker := regexp.MustCompile(`^<!-- readme-test: (\w+) -->$`)
	var blocks []readmeBlock
	var cur *readmeBlock
	inBlock := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case cur != nil && !inBlock:
			if !strings.HasPrefix(l, "```") {
				t.Fatalf("%s:%d: the readme-test marker is not followed by a fenced block", readme, cur.line)
			}
			inBlock = true
		case cur != nil && l == "```":
			blocks = append(blocks, *cur)
			cur, inBlock = nil, false
		case cur != nil:
			cur.lines = append(cur.lines, l)
		case marker.MatchString(l):
			kind := marker.FindStringSubmatch(l)[1]
			if kind != "serve" && kind != "run" {
				t.Fatalf("%s:%d: unknown readme-test block %q", readme, n, kind)
			}
			cur = &readmeBlock{kind: kind, line: n}
		}
	}
	if cur != nil {
		t.Fatalf("%s:%d: the marked block does not end", readme, cur.line)
	}
	return blocks
}

// step is one command of a run block with its expected output.
type step struct {
	line    int // of the command in the README
	command string
	want    []string
}

// steps splits a console block into commands and their outputs.
func (b readmeBlock) steps(t *testing.T) []step {
	t.Helper()
	var out []step
	for i := 0; i < len(b.lines); i++ {
		l := b.lines[i]
		if !strings.HasPrefix(l, "$ ") {
			if len(out) == 0 {
				t.Fatalf("%s:%d: output %q before the first command", readme, b.line+2+i, l)
			}
			out[len(out)-1].want = append(out[len(out)-1].want, l)
			continue
		}
		s := step{line: b.line + 2 + i, command: strings.TrimPrefix(l, "$ ")}
		for strings.HasSuffix(s.command, "\\") && i+1 < len(b.lines) {
			i++
			s.command = strings.TrimSuffix(s.command, "\\") + " " + strings.TrimSpace(b.lines[i])
		}
		out = append(out, s)
	}
	return out
}

var timestamp = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)

// outputMatches compares a command's output with the README's.
func outputMatches(got string, want []string) bool {
	norm := func(s string) string { return timestamp.ReplaceAllString(s, "TIME") }
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if got == "" {
		lines = nil
	}
	if len(lines) != len(want) {
		return false
	}
	for i, w := range want {
		g, w := norm(lines[i]), norm(w)
		if prefix, ok := strings.CutSuffix(w, "..."); ok {
			if !strings.HasPrefix(g, prefix) {
				return false
			}
		} else if g != w {
			return false
		}
	}
	return true
}

// TestREADMEQuickStart runs the README's quick start line by line against
// a server started as the README says, and wants exactly the output it
// shows.
func TestREADMEQuickStart(t *testing.T) {
	t.Parallel()
	for tool, pkg := range map[string]string{"dig": "dnsutils", "curl": "curl", "sh": "dash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (Debian package %s)", tool, pkg)
		}
	}
	blocks := readmeBlocks(t)
	if len(blocks) < 3 || blocks[0].kind != "serve" {
		t.Fatalf("%s: want a readme-test serve block followed by run blocks, found %d blocks", readme, len(blocks))
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	dnsAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	adminAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	_, dnsPort, _ := net.SplitHostPort(dnsAddr)
	rewrite := strings.NewReplacer(
		"bin/disco", filepath.Join(tmp, "bin", "disco"),
		"127.0.0.1:8053", dnsAddr, "-p 8053", "-p "+dnsPort,
		"127.0.0.1:8054", adminAddr,
	)
	env := append(childEnv(), "DISCO_DNS_ADDR="+dnsAddr, "DISCO_ADMIN_ADDR="+adminAddr,
		"DISCO_DATA_DIR="+filepath.Join(tmp, "disco-data"), "DISCO_ADMIN=http://"+adminAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	shell := func(dir, line string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, "sh", "-c", rewrite.Replace(line))
		cmd.Dir, cmd.Env = dir, env
		return cmd
	}

	served, ran := false, 0
	for _, b := range blocks {
		if b.kind == "serve" {
			for i, l := range b.lines {
				if strings.TrimSpace(l) == "" {
					continue
				}
				if strings.HasPrefix(l, "bin/disco serve") {
					cmd := exec.Command("sh", "-c", "exec "+rewrite.Replace(l))
					cmd.Dir, cmd.Env = tmp, env
					startReadmeServer(t, cmd, adminAddr)
					served = true
					continue
				}
				// A build runs in the clone.
				if out, err := shell(root, l).CombinedOutput(); err != nil {
					t.Fatalf("%s:%d: %s: %v\n%s", readme, b.line+2+i, l, err, out)
				}
			}
			continue
		}
		if !served {
			t.Fatalf("%s:%d: a run block before the server is started", readme, b.line)
		}
		for _, s := range b.steps(t) {
			ran++
			out, err := shell(tmp, s.command).CombinedOutput()
			if err != nil || !outputMatches(string(out), s.want) {
				t.Errorf("%s:%d: $ %s\nexit: %v\ngot:\n%s\nwant (README):\n%s", readme, s.line, s.command, err, out, strings.Join(s.want, "\n"))
			}
		}
	}
	if ran < 8 {
		t.Errorf("ran only %d commands of the README", ran)
	}
}

// startReadmeServer starts the server's command line and waits until its
// admin API is ready; the server is stopped when the test ends.
func startReadmeServer(t *testing.T, cmd *exec.Cmd, adminAddr string) {
	t.Helper()
	out := newLogLines()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(wait):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("server log:\n%s", out)
		}
	})
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			t.Fatalf("the server exited:\n%s", out)
		default:
		}
		if resp, err := http.Get("http://" + adminAddr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the server was not ready within %s:\n%s", wait, out)
}
