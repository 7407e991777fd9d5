//go:build !linux

package dnsserver

import (
	"context"
	"net"
)

// serveUDP reads and answers queries on c until it is closed.
func (s *Server) serveUDP(ctx context.Context, c *net.UDPConn) { s.serveUDPSimple(ctx, c) }

// udpPending reports whether a datagram waits to be read on c; without
// the ioctl it never knows.
func udpPending(*net.UDPConn) bool { return false }
