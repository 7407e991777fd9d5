package dnsserver

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

const reusePortSupported = true

// reusePort sets SO_REUSEPORT so that several sockets share one UDP port
// and the kernel spreads packets over them.
func reusePort(network, address string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return serr
}

// setBuffers asks for n-byte receive and send buffers on c: with
// SO_RCVBUFFORCE and SO_SNDBUFFORCE where the process may (CAP_NET_ADMIN),
// which lift net.core.rmem_max and wmem_max, else within those limits. It
// returns the receive buffer the kernel granted (which counts its own
// bookkeeping, so up to twice n).
func setBuffers(c *net.UDPConn, n int) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var got int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for _, o := range [][2]int{{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}, {unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}} {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], n) != nil {
				if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], n); serr != nil {
					return
				}
			}
		}
		got, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	}); err != nil {
		return 0, err
	}
	return got, serr
}
