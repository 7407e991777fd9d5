package cluster_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"

	"disco/cluster"
	"disco/registry"
	"disco/store/etcdstore/etcdtest"
)

const (
	token  = "cluster-e2e-token"
	domain = "disco.internal."
)

// discoBin is the disco binary built by TestMain.
var discoBin string

func TestMain(m *testing.M) {
	if etcdtest.Binary() == "" {
		fmt.Println("etcd is not installed (Debian package etcd-server): cluster tests skipped")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "disco-cluster-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	discoBin = filepath.Join(dir, "disco")
	build := exec.Command("go", "build", "-o", discoBin, "disco/cmd/disco")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build disco: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a disco server process.
type server struct {
	t        *testing.T
	name     string
	cmd      *exec.Cmd
	dns      string
	admin    string
	logPath  string
	exited   chan struct{}
	httpc    *http.Client
	dnsc     *dns.Client
	endpoint []string
}

var startedRE = regexp.MustCompile(`msg="disco started" dns=(\S+) admin=(\S+)`)

// startServer runs disco serve --store etcd on free loopback ports against
// endpoints and waits until it is ready. It is killed when the test ends;
// its log is printed if the test failed.
func startServer(t *testing.T, name string, endpoints []string, extra ...string) *server {
	t.Helper()
	s := launch(t, name, endpoints, extra...)
	s.waitStarted()
	return s
}

// launch starts the server process without waiting for it.
func launch(t *testing.T, name string, endpoints []string, extra ...string) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{t: t, name: name, logPath: filepath.Join(dir, "disco.log"), exited: make(chan struct{}),
		httpc: &http.Client{Timeout: 10 * time.Second}, dnsc: &dns.Client{Timeout: 2 * time.Second}, endpoint: endpoints}
	args := append([]string{"serve", "--dns-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
		"--data-dir", filepath.Join(dir, "data"), "--admin-token", token, "--log-level", "debug",
		"--store", "etcd", "--etcd-endpoints", strings.Join(endpoints, ",")}, extra...)
	log, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	s.cmd = exec.Command(discoBin, args...)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			b, _ := os.ReadFile(s.logPath)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			t.Logf("disco %s log (last lines):\n%s", name, strings.Join(lines[max(0, len(lines)-25):], "\n"))
		}
	})
	return s
}

// waitStarted waits up to 30s for the server to log its addresses.
func (s *server) waitStarted() {
	t := s.t
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.dns == "" {
		if time.Now().After(deadline) || !s.running() {
			b, _ := os.ReadFile(s.logPath)
			t.Fatalf("disco %s did not start:\n%s", s.name, b)
		}
		if m := startedRE.FindStringSubmatch(readFile(s.logPath)); m != nil {
			s.dns, s.admin = m[1], "http://"+m[2]
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func (s *server) running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// kill kills the process (SIGKILL) and waits for it.
func (s *server) kill() { s.signal(syscall.SIGKILL) }

func (s *server) signal(sig syscall.Signal) {
	if !s.running() {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// api makes an admin API request and returns the status and body.
func (s *server) api(method, path, body string) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.admin+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.httpc.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// register registers service/id at addr:port with the extra JSON fields.
func (s *server) register(service, id, addr string, port int, extra string) (int, string) {
	s.t.Helper()
	body := fmt.Sprintf(`{"address":%q,"port":%d%s}`, addr, port, extra)
	return s.api(http.MethodPut, "/v1/services/"+service+"/instances/"+id, body)
}

// mustRegister registers and fails the test on anything but 200.
func (s *server) mustRegister(service, id, addr string, port int, extra string) {
	s.t.Helper()
	if code, body := s.register(service, id, addr, port, extra); code != http.StatusOK {
		s.t.Fatalf("register %s/%s through %s: %d %s", service, id, s.name, code, body)
	}
}

// lookup asks the server for name's A records and returns their addresses,
// sorted; nil for none (or no answer).
func (s *server) lookup(name string) []string {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	m.RecursionDesired = false
	r, _, err := s.dnsc.Exchange(m, s.dns)
	if err != nil || r == nil {
		return nil
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return out
}

func serviceName(service string) string { return service + ".service." + domain }

// status returns an instance's status as the server's API shows it, or
// "gone"/"error".
func (s *server) status(service, id string) string {
	code, body := s.api(http.MethodGet, "/v1/services/"+service, "")
	if code == http.StatusNotFound {
		return "gone"
	}
	if code != http.StatusOK {
		return "error"
	}
	var view struct {
		Instances []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"instances"`
	}
	if err := json.Unmarshal([]byte(body), &view); err != nil {
		return "error"
	}
	for _, in := range view.Instances {
		if in.ID == id {
			return in.Status
		}
	}
	return "gone"
}

// metric returns the value of an unlabelled metric, or -1.
func (s *server) metric(name string) float64 {
	resp, err := s.httpc.Get(s.admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var v float64
		if strings.HasPrefix(sc.Text(), name+" ") {
			if _, err := fmt.Sscanf(strings.TrimPrefix(sc.Text(), name+" "), "%g", &v); err == nil {
				return v
			}
		}
	}
	return -1
}

// waitFor polls cond until it holds, failing the test after timeout, and
// returns how long it took.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// owner returns which of servers checks service/id now, by the members
// registered in etcd.
func owner(t *testing.T, endpoints []string, servers []*server, service, id string) *server {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/disco/members/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]string{}
	var ids []string
	for _, kv := range resp.Kvs {
		var m cluster.Member
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			t.Fatal(err)
		}
		byID[m.ID] = "http://" + m.Admin
		ids = append(ids, m.ID)
	}
	admin := byID[cluster.Owner(ids, registry.Key{Service: service, ID: id})]
	for _, s := range servers {
		if s.admin == admin {
			return s
		}
	}
	t.Fatalf("the owner of %s/%s (%s) is none of the servers", service, id, admin)
	return nil
}

// percentile returns the p-th percentile of ds (sorted in place).
func percentile(ds []time.Duration, p float64) time.Duration {
	slices.Sort(ds)
	i := int(float64(len(ds)-1) * p)
	return ds[i]
}
