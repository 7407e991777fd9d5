// Package etcdtest runs throwaway etcd servers (the etcd binary, Debian
// package etcd-server) on free loopback ports for tests. Tests that use it
// are skipped when etcd is not installed.
package etcdtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Cluster is a running etcd cluster.
type Cluster struct {
	t       testing.TB
	Members []*Member
}

// Member is one etcd server of a Cluster.
type Member struct {
	t         testing.TB
	Name      string
	ClientURL string
	peerURL   string
	dataDir   string
	logPath   string
	args      []string
	cmd       *exec.Cmd
	exited    chan struct{}
}

// Binary returns the path of the etcd binary, or "" if it is not installed.
func Binary() string {
	if p, err := exec.LookPath("etcd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/etcd"); err == nil {
		return "/usr/bin/etcd"
	}
	return ""
}

// Start starts an n-member cluster and waits until it is healthy; it skips
// the test when etcd is not installed. The cluster is stopped when the test
// ends; its logs are printed if the test failed.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	bin := Binary()
	if bin == "" {
		t.Skip("etcd is not installed (Debian package etcd-server)")
	}
	dir := t.TempDir()
	c := &Cluster{t: t}
	var initial []string
	for i := range n {
		m := &Member{t: t, Name: fmt.Sprintf("m%d", i+1),
			ClientURL: "http://" + freeAddr(t), peerURL: "http://" + freeAddr(t)}
		m.dataDir = filepath.Join(dir, m.Name)
		m.logPath = filepath.Join(dir, m.Name+".log")
		initial = append(initial, m.Name+"="+m.peerURL)
		c.Members = append(c.Members, m)
	}
	token := fmt.Sprintf("etcdtest-%d-%d", os.Getpid(), time.Now().UnixNano())
	for _, m := range c.Members {
		m.args = []string{"--name", m.Name, "--data-dir", m.dataDir,
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", token,
			"--heartbeat-interval", "50", "--election-timeout", "500"}
		m.start(bin)
	}
	t.Cleanup(func() {
		for _, m := range c.Members {
			m.Kill()
		}
		if t.Failed() {
			for _, m := range c.Members {
				if b, err := os.ReadFile(m.logPath); err == nil {
					lines := strings.Split(strings.TrimSpace(string(b)), "\n")
					t.Logf("etcd %s log (last lines):\n%s", m.Name, strings.Join(lines[max(0, len(lines)-15):], "\n"))
				}
			}
		}
	})
	for _, m := range c.Members {
		m.WaitHealthy()
	}
	return c
}

func (m *Member) start(bin string) {
	m.t.Helper()
	log, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		m.t.Fatal(err)
	}
	defer log.Close()
	m.cmd = exec.Command(bin, m.args...)
	m.cmd.Stdout, m.cmd.Stderr = log, log
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start etcd: %v", err)
	}
	m.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(m.cmd, m.exited)
}

// Endpoints returns the members' client URLs.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, m.ClientURL)
	}
	return out
}

// Client returns a client of the cluster, closed when the test ends.
func (c *Cluster) Client() *clientv3.Client {
	c.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// Leader returns the member that is the leader now, waiting up to 20s for
// an election to end.
func (c *Cluster) Leader() *Member {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range c.Members {
			if !m.Running() {
				continue
			}
			cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL}, DialTimeout: time.Second, Logger: zap.NewNop()})
			if err != nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := cli.Status(ctx, m.ClientURL)
			cancel()
			cli.Close()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return m
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatal("no etcd leader within 20s")
	return nil
}

// Running reports whether the member's process is running.
func (m *Member) Running() bool {
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

// Stop stops the member gracefully (SIGTERM) and waits for it to exit.
func (m *Member) Stop() { m.signal(syscall.SIGTERM) }

// Kill kills the member (SIGKILL) and waits for it to exit.
func (m *Member) Kill() { m.signal(syscall.SIGKILL) }

func (m *Member) signal(sig syscall.Signal) {
	if !m.Running() {
		return
	}
	_ = m.cmd.Process.Signal(sig)
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
}

// Restart starts a stopped member again, with its data, and waits until it
// is healthy.
func (m *Member) Restart() {
	m.t.Helper()
	if m.Running() {
		m.t.Fatalf("etcd %s is running", m.Name)
	}
	m.start(Binary())
	m.WaitHealthy()
}

// WaitHealthy waits up to 20s for the member to report itself healthy.
func (m *Member) WaitHealthy() {
	m.t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if !m.Running() {
			m.t.Fatalf("etcd %s exited", m.Name)
		}
		resp, err := client.Get(m.ClientURL + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.t.Fatalf("etcd %s not healthy within 20s", m.Name)
}

// freeAddr returns a loopback address with a port free for TCP now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
