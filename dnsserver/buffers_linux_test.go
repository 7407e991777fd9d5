package dnsserver

import (
	"bytes"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// hasNetAdmin reports whether this process has CAP_NET_ADMIN in effect.
func hasNetAdmin(t *testing.T) bool {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if hex, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return caps&(1<<unix.CAP_NET_ADMIN) != 0
		}
	}
	t.Fatal("no CapEff in /proc/self/status")
	return false
}

// TestUDPBuffers checks that every UDP socket gets the configured buffers:
// past net.core.rmem_max when the process may (CAP_NET_ADMIN),
// and otherwise as much as the kernel allows, with a warning naming the
// sysctl when that is less than asked.
func TestUDPBuffers(t *testing.T) {
	raw, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skipf("no rmem_max: %v", err)
	}
	rmemMax, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	want := 2*rmemMax + 64<<10 // above the limit, so only the FORCE options reach it
	var logs bytes.Buffer
	srv := NewServer(ServerConfig{Addr: "127.0.0.1:0", UDPSockets: 2, UDPBufferBytes: want},
		NewHandler(testConfig(), testRegistry(t, nil, nil), nil, nil),
		slog.New(slog.NewTextHandler(&logs, nil)))
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range srv.udp {
			c.Close()
		}
		srv.tcp.ln.Close()
	}()
	privileged := hasNetAdmin(t)
	for i, c := range srv.udp {
		rc, err := c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var rcv, snd int
		rc.Control(func(fd uintptr) {
			rcv, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
			snd, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
		})
		t.Logf("socket %d: SO_RCVBUF %d, SO_SNDBUF %d (asked %d, rmem_max %d, CAP_NET_ADMIN %v)", i, rcv, snd, want, rmemMax, privileged)
		if privileged && (rcv/2 < want || snd/2 < want) {
			t.Errorf("socket %d: buffers %d/%d, want at least %d each", i, rcv/2, snd/2, want)
		}
		if !privileged && rcv/2 < rmemMax {
			t.Errorf("socket %d: receive buffer %d, want rmem_max %d", i, rcv/2, rmemMax)
		}
	}
	warned := strings.Contains(logs.String(), "net.core.rmem_max")
	if warned == privileged {
		t.Errorf("warning logged: %v, want %v; logs:\n%s", warned, !privileged, logs.String())
	}
}
