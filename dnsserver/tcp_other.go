//go:build !linux

package dnsserver

import (
	"io"
	"net"
)

// newStream returns the reader and writer of nc.
func newStream(nc net.Conn) (io.Reader, streamWriter) { return nc, netWriter{nc} }
