//go:build !linux

package dnsserver

import "net"

// serveUDP reads and answers queries on c until it is closed.
func (s *Server) serveUDP(c *net.UDPConn) { s.serveUDPSimple(c) }
