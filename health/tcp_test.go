package health

import (
	"context"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"disco/registry"
)

func tcpCheck(addr string, timeout time.Duration) registry.Check {
	return registry.Check{Type: registry.CheckTCP, Address: addr,
		Interval: registry.Duration(10 * time.Second), Timeout: registry.Duration(timeout), Rise: 1, Fall: 3}
}

func TestTCPChecker(t *testing.T) {
	// A listener that accepts and never answers: TCP checks only connect.
	open := listen(t)
	go func() {
		for {
			c, err := open.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	full := fullBacklog(t)

	tests := []struct {
		name, addr string
		status     registry.Status
		want       string
	}{
		{"open", open.Addr().String(), registry.StatusPassing, "connected to " + open.Addr().String()},
		{"refused", closedPort(t), registry.StatusCritical, "connection refused"},
		{"connect-never-completes", full, registry.StatusCritical, "timeout: no connection to " + full + " within 200ms"},
	}
	c := NewTCPChecker()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.Check(context.Background(), tcpCheck(tt.addr, 200*time.Millisecond))
			if got.Status != tt.status || !strings.Contains(got.Output, tt.want) {
				t.Errorf("got %s %q, want %s containing %q", got.Status, got.Output, tt.status, tt.want)
			}
		})
	}
}

// fullBacklog returns the address of a loopback listener whose accept queue
// is full, so that a new connection never completes: the kernel drops its
// SYNs. It listens with a backlog of 0 (room for one connection), never
// accepts, and fills the queue.
func fullBacklog(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return addr // the queue is full
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatalf("could not fill the accept queue of %s", addr)
	return ""
}
