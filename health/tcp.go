package health

import (
	"context"
	"net"

	"disco/registry"
)

// TCPChecker probes tcp checks: passing when a TCP connection to the
// check's address opens within its timeout, critical otherwise. The
// connection is closed at once; nothing is sent.
type TCPChecker struct {
	dialer net.Dialer
}

// NewTCPChecker returns a TCPChecker.
func NewTCPChecker() *TCPChecker {
	return &TCPChecker{dialer: net.Dialer{KeepAlive: -1}}
}

// Check connects to c.Address within c.Timeout (and ctx).
func (t *TCPChecker) Check(ctx context.Context, c registry.Check) Result {
	ctx, cancel := withTimeout(ctx, c.Timeout.Std())
	defer cancel()
	conn, err := t.dialer.DialContext(ctx, "tcp", c.Address)
	if err != nil {
		if timedOut(ctx, err) {
			return Result{registry.StatusCritical, "timeout: no connection to " + c.Address + " within " + c.Timeout.String()}
		}
		return Result{registry.StatusCritical, err.Error()}
	}
	conn.Close()
	return Result{registry.StatusPassing, "connected to " + c.Address}
}
