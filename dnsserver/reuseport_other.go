//go:build !linux

package dnsserver

import (
	"net"
	"syscall"
)

const reusePortSupported = false

func reusePort(network, address string, c syscall.RawConn) error { return nil }

// setBuffers asks for n-byte receive and send buffers on c and returns n.
func setBuffers(c *net.UDPConn, n int) (int, error) {
	if err := c.SetReadBuffer(n); err != nil {
		return 0, err
	}
	return n, c.SetWriteBuffer(n)
}
