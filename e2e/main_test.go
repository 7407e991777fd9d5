package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// discoBin is the disco binary built once for all tests.
var discoBin string

// serverBin is the binary startDisco runs: discoBin, or when the tests run
// with the race detector (go test -race) the same program built with it,
// so that the server's goroutines are checked as they serve the tests. The
// client commands run discoBin, which starts much faster.
var serverBin string

// raceEnabled is set when the tests run with the race detector.
var raceEnabled bool

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "disco-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	discoBin, serverBin = filepath.Join(dir, "disco"), filepath.Join(dir, "disco")
	builds := [][]string{{"-o", discoBin}}
	if raceEnabled {
		serverBin = filepath.Join(dir, "disco-race")
		builds = append(builds, []string{"-race", "-o", serverBin})
	}
	errs := make([]error, len(builds))
	var wg sync.WaitGroup
	for i, flags := range builds {
		wg.Go(func() {
			// go test puts $GOROOT/bin first in PATH.
			args := append(append([]string{"build"}, flags...), "disco/cmd/disco")
			if out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

const (
	testToken = "e2e-token"
	// wait bounds every wait for a process or a condition.
	wait = 20 * time.Second
)

// logLines collects a process's output line by line and lets tests wait
// for a line.
type logLines struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	changed chan struct{} // closed and replaced on every new line
}

func newLogLines() *logLines { return &logLines{changed: make(chan struct{})} }

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	added := false
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
		added = true
	}
	if added {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return len(p), nil
}

// snapshot returns the complete lines so far and a channel closed at the
// next one.
func (l *logLines) snapshot() ([]string, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...), l.changed
}

func (l *logLines) String() string {
	lines, _ := l.snapshot()
	return strings.Join(lines, "\n")
}

// proc is a child process whose output is collected.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *logLines
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, set before done is closed
}

// startProc starts a child process that is stopped (SIGTERM, then SIGKILL)
// when the test ends. Its output is logged if the test failed.
func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return startProcEnv(t, nil, name, args...)
}

// startProcEnv is startProc with env added to the child's environment.
func startProcEnv(t *testing.T, env []string, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: filepath.Base(name), out: newLogLines(), done: make(chan struct{})}
	p.cmd = exec.Command(name, args...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	p.cmd.Env = append(childEnv(), env...)
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if strings.Contains(p.out.String(), "WARNING: DATA RACE") {
			t.Errorf("%s reported a data race", p.name)
		}
		if t.Failed() {
			t.Logf("output of %s %s:\n%s", p.name, strings.Join(args, " "), p.out)
		}
	})
	return p
}

// stop ends the process if it still runs: SIGTERM, then SIGKILL.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(wait):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// terminate stops the process with SIGTERM and fails the test unless it
// exits with status 0.
func (p *proc) terminate(t *testing.T) {
	t.Helper()
	p.stop()
	if p.err != nil {
		t.Fatalf("%s stopped with %v", p.name, p.err)
	}
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(wait):
		t.Fatalf("%s did not exit after SIGKILL", p.name)
	}
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitLine waits for an output line that match accepts and returns it.
func (p *proc) waitLine(t *testing.T, what string, match func(string) bool) string {
	t.Helper()
	deadline := time.After(wait)
	seen := 0
	for {
		lines, changed := p.out.snapshot()
		for _, l := range lines[seen:] {
			if match(l) {
				return l
			}
		}
		seen = len(lines)
		select {
		case <-changed:
		case <-p.done:
			lines, _ := p.out.snapshot()
			for _, l := range lines[seen:] {
				if match(l) {
					return l
				}
			}
			t.Fatalf("%s exited (%v) before logging %s", p.name, p.err, what)
		case <-deadline:
			t.Fatalf("%s did not log %s within %s", p.name, what, wait)
		}
	}
}

// childEnv is the test's environment without DISCO_ variables, so that
// an operator's settings do not leak into the processes under test.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DISCO_") {
			env = append(env, kv)
		}
	}
	return env
}

// disco is a running "disco serve".
type disco struct {
	*proc
	dnsAddr string // host:port
	admin   string // http://host:port
}

// startDisco runs "disco serve" (serverBin) on free loopback ports with a
// fresh data directory (unless args give --data-dir), the admin token and
// JSON logs, plus args, and waits until it is up.
func startDisco(t *testing.T, args ...string) *disco {
	t.Helper()
	return launchDisco(t, serverBin, nil, args...)
}

// startDiscoEnv is startDisco with env added to the server's environment.
func startDiscoEnv(t *testing.T, env []string, args ...string) *disco {
	t.Helper()
	return launchDisco(t, serverBin, env, args...)
}

// startDiscoPlain is startDisco on discoBin, built without the race
// detector, for a test that loads the server to its limits: the detector
// slows the server several times over, which such a test takes for a
// fault.
func startDiscoPlain(t *testing.T, args ...string) *disco {
	t.Helper()
	return launchDisco(t, discoBin, nil, args...)
}

// launchDisco runs "disco serve" from bin as startDisco says.
func launchDisco(t *testing.T, bin string, env []string, args ...string) *disco {
	t.Helper()
	all := []string{"serve", "--dns-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
		"--admin-token", testToken, "--log-format", "json"}
	if !slices.Contains(args, "--data-dir") {
		all = append(all, "--data-dir", t.TempDir())
	}
	p := startProcEnv(t, env, bin, append(all, args...)...)
	line := p.waitLine(t, `"disco started"`, func(l string) bool { return strings.Contains(l, `"disco started"`) })
	var started struct{ DNS, Admin string }
	if err := json.Unmarshal([]byte(line), &started); err != nil || started.DNS == "" || started.Admin == "" {
		t.Fatalf("start line %q: %v", line, err)
	}
	return &disco{proc: p, dnsAddr: started.DNS, admin: "http://" + started.Admin}
}

// api sends a request with the admin token and returns status and body.
func (d *disco) api(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, d.admin+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, string(b)
}

// register registers an instance and fails the test on any error.
func (d *disco) register(t *testing.T, service, id, body string) {
	t.Helper()
	if code, b := d.api(t, http.MethodPut, "/v1/services/"+service+"/instances/"+id, body); code != http.StatusOK {
		t.Fatalf("register %s/%s: HTTP %d %s", service, id, code, b)
	}
}

// exchange sends one query to server over network ("udp" or "tcp"), with
// an EDNS buffer size of 4096.
func exchange(t *testing.T, server, network, name string, qtype uint16, rd bool) *dns.Msg {
	t.Helper()
	return query(t, server, network, name, qtype, rd, dns.DefaultMsgSize)
}

// query sends one query to server over network ("udp" or "tcp"), with
// EDNS and that buffer size unless edns is 0.
func query(t *testing.T, server, network, name string, qtype uint16, rd bool, edns uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = rd
	if edns > 0 {
		m.SetEdns0(edns, false)
	}
	c := &dns.Client{Net: network, Timeout: 5 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("%s %s to %s over %s: %v", name, dns.TypeToString[qtype], server, network, err)
	}
	return r
}

// query asks d over network without recursion (edns as query's).
func (d *disco) query(t *testing.T, network, name string, qtype uint16, edns uint16) *dns.Msg {
	t.Helper()
	return query(t, d.dnsAddr, network, name, qtype, false, edns)
}

// served returns the addresses d answers for name over UDP, sorted.
func (d *disco) served(t *testing.T, name string) []string {
	t.Helper()
	return values(d.query(t, "udp", name, dns.TypeA, 0))
}

// values returns the answer records' data, sorted.
func values(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.A.String())
		case *dns.AAAA:
			out = append(out, v.AAAA.String())
		case *dns.SRV:
			out = append(out, fmt.Sprintf("%d %d %d %s", v.Priority, v.Weight, v.Port, v.Target))
		case *dns.TXT:
			out = append(out, strings.Join(v.Txt, " "))
		default:
			out = append(out, rr.String())
		}
	}
	slices.Sort(out)
	return out
}

// findEDE returns the Extended DNS Error of m, or nil.
func findEDE(m *dns.Msg) *dns.EDNS0_EDE {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return e
			}
		}
	}
	return nil
}

// eventually polls cond every 20 ms for up to limit and returns how long it
// took to hold, or fails the test.
func eventually(t *testing.T, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// freePort returns a loopback port that is free for both UDP and TCP.
func freePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		pc.Close()
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no loopback port free for both UDP and TCP")
	return 0
}

// lookBin finds a program in PATH or in the sbin directories, which are
// not in every user's PATH.
func lookBin(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// forwardingDoc is the guide whose snippets the tests run.
const forwardingDoc = "../docs/forwarding.md"

// docSnippet returns the code block of docs/forwarding.md between
// "<!-- e2e-snippet: name -->" and "<!-- /e2e-snippet -->".
func docSnippet(t *testing.T, name string) string {
	t.Helper()
	return docSnippetOf(t, forwardingDoc, name)
}

// docSnippetOf returns the code block of the document at path between
// "<!-- e2e-snippet: name -->" and "<!-- /e2e-snippet -->".
func docSnippetOf(t *testing.T, path, name string) string {
	t.Helper()
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	begin := "<!-- e2e-snippet: " + name + " -->"
	_, rest, ok := strings.Cut(string(doc), begin)
	if !ok {
		t.Fatalf("%s has no %q marker", path, begin)
	}
	block, _, ok := strings.Cut(rest, "<!-- /e2e-snippet -->")
	if !ok {
		t.Fatalf("%s: snippet %q has no end marker", path, name)
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(strings.TrimSpace(block)))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "```") || lines[len(lines)-1] != "```" {
		t.Fatalf("%s: snippet %q is not one fenced code block:\n%s", path, name, block)
	}
	return strings.Join(lines[1:len(lines)-1], "\n") + "\n"
}
