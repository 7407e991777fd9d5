package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"disco/registry"
)

// DefaultMaxExecs is the default cap on exec checks running at once.
const DefaultMaxExecs = 32

// execDrain is how long output is still read after the command ended, for
// processes outside its process group that hold its output open.
const execDrain = 100 * time.Millisecond

// ExecConfig configures an ExecChecker.
type ExecConfig struct {
	// MaxProcs caps the commands running at once; 0 means
	// DefaultMaxExecs. A probe waits for a free slot within its timeout.
	MaxProcs int
	// Env is the environment of the commands; nil gives them an empty
	// one (the program must then be an absolute path).
	Env []string
}

// ExecChecker probes exec checks by running their command without a shell,
// in a process group of its own, with standard input from /dev/null and
// standard output and error together: exit status 0 is passing, 1 warning,
// anything else critical (the Nagios plugin convention), and the first
// MaxOutput bytes of the output are the check's output. At the timeout it
// kills the whole process group; when the command ends it kills what the
// command left running in its group; either way it waits for the command,
// so no zombie stays behind. A command it cannot start is critical.
type ExecChecker struct {
	slots chan struct{}
	env   []string
	path  string // PATH to look bare program names up in
}

// NewExecChecker returns an ExecChecker for cfg.
func NewExecChecker(cfg ExecConfig) *ExecChecker {
	n := cfg.MaxProcs
	if n <= 0 {
		n = DefaultMaxExecs
	}
	e := &ExecChecker{slots: make(chan struct{}, n), env: cfg.Env}
	for _, kv := range cfg.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			e.path = v
		}
	}
	return e
}

// Check runs c.Command within c.Timeout (and ctx).
func (e *ExecChecker) Check(ctx context.Context, c registry.Check) Result {
	ctx, cancel := withTimeout(ctx, c.Timeout.Std())
	defer cancel()
	if len(c.Command) == 0 {
		return Result{registry.StatusCritical, "exec check without a command"}
	}
	select {
	case e.slots <- struct{}{}:
	case <-ctx.Done():
		return Result{registry.StatusCritical, fmt.Sprintf("timeout: all %d exec slots stayed busy for %s; the command did not run", cap(e.slots), c.Timeout)}
	}
	defer func() { <-e.slots }()

	path, err := e.lookPath(c.Command[0])
	if err != nil {
		return Result{registry.StatusCritical, err.Error()}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return Result{registry.StatusCritical, fmt.Sprintf("cannot run %s: %v", c.Command[0], err)}
	}
	defer r.Close()
	cmd := &exec.Cmd{
		Path:        path,
		Args:        c.Command,
		Env:         e.env,
		Stdout:      w,
		Stderr:      w,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return Result{registry.StatusCritical, fmt.Sprintf("cannot run %s: %v", c.Command[0], startError(err))}
	}
	pid := cmd.Process.Pid // also the process group's id

	output := make(chan []byte, 1)
	go func() { output <- readCapped(r, MaxOutput) }()
	exited := make(chan struct{})
	go func() {
		waitExited(pid)
		close(exited)
	}()
	timedOut := false
	select {
	case <-exited:
	case <-ctx.Done():
		timedOut = true
		syscall.Kill(-pid, syscall.SIGKILL)
		<-exited
	}
	// Kill what the command left in its group while the command is not
	// yet reaped, so the group's id cannot belong to anyone else; then
	// reap it.
	syscall.Kill(-pid, syscall.SIGKILL)
	werr := cmd.Wait()
	// Everything in the group is gone; a process that left it may still
	// hold the output open, so stop reading soon.
	r.SetReadDeadline(time.Now().Add(execDrain))
	out := strings.TrimSpace(string(<-output))

	if timedOut {
		msg := fmt.Sprintf("timeout: %s did not finish within %s; killed it and its process group", c.Command[0], c.Timeout)
		if out != "" {
			msg += "; output: " + out
		}
		return Result{registry.StatusCritical, msg}
	}
	if cmd.ProcessState == nil {
		return Result{registry.StatusCritical, fmt.Sprintf("waiting for %s failed: %v", c.Command[0], werr)}
	}
	code := cmd.ProcessState.ExitCode()
	if out == "" {
		out = describeExit(cmd.ProcessState, werr)
	}
	switch code {
	case 0:
		return Result{registry.StatusPassing, out}
	case 1:
		return Result{registry.StatusWarning, out}
	}
	return Result{registry.StatusCritical, out}
}

// lookPath finds the program to run: an absolute path as it is, a bare
// name in the PATH of the commands' environment.
func (e *ExecChecker) lookPath(prog string) (string, error) {
	if strings.HasPrefix(prog, "/") {
		fi, err := os.Stat(prog)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("cannot run %s: no such file", prog)
		case err != nil:
			return "", fmt.Errorf("cannot run %s: %v", prog, errors.Unwrap(err))
		case fi.IsDir():
			return "", fmt.Errorf("cannot run %s: it is a directory", prog)
		case fi.Mode()&0o111 == 0:
			return "", fmt.Errorf("cannot run %s: it is not executable (chmod +x)", prog)
		}
		return prog, nil
	}
	for dir := range strings.SplitSeq(e.path, ":") {
		if !strings.HasPrefix(dir, "/") {
			continue // relative PATH entries would depend on the server's directory
		}
		p := strings.TrimSuffix(dir, "/") + "/" + prog
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if e.path == "" {
		return "", fmt.Errorf("cannot run %s: not found (the checks' environment has no PATH; give an absolute path)", prog)
	}
	return "", fmt.Errorf("cannot run %s: not found in PATH %s", prog, e.path)
}

// startError is err without the exec package's wrapping ("fork/exec
// PATH: "), which the message gives already.
func startError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, syscall.ENOENT) {
			return errors.New("its interpreter (the #! line) or a library it needs is missing")
		}
		return pe.Err
	}
	return err
}

// describeExit says how a command that printed nothing ended.
func describeExit(ps *os.ProcessState, err error) string {
	if ps == nil {
		return err.Error()
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("killed by signal %s, no output", unix.SignalName(ws.Signal()))
	}
	return fmt.Sprintf("exit status %d, no output", ps.ExitCode())
}

// readCapped reads r to its end (or an error, such as its read deadline)
// and returns the first max bytes; the rest is read and dropped, so that a
// command writing more does not block.
func readCapped(r io.Reader, max int) []byte {
	buf := make([]byte, 0, 512)
	chunk := make([]byte, 4096)
	for {
		n, err := r.Read(chunk)
		if room := max - len(buf); room > 0 {
			buf = append(buf, chunk[:min(n, room)]...)
		}
		if err != nil {
			return buf
		}
	}
}

// waitExited returns once process pid has ended, without reaping it.
func waitExited(pid int) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return
		}
	}
}
