package main

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// listenError is the start-up error for an address that cannot be
// listened on: it names the flag and the address once, and says what to
// do about the common causes.
func listenError(flag, addr string, err error) error {
	var op *net.OpError
	cause, what := err, "cannot listen"
	if errors.As(err, &op) {
		cause, what = op.Err, "cannot listen on "+op.Net
	}
	hint := ""
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		hint = "another program (another disco?) uses it: stop that program or give " + flag + " another address"
	case errors.Is(err, syscall.EACCES):
		hint = "ports below 1024 need root or CAP_NET_BIND_SERVICE (see contrib/systemd)"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		hint = "no network interface of this machine has that address"
	}
	if hint == "" {
		return fmt.Errorf("%s %s: %s: %w", flag, addr, what, cause)
	}
	return fmt.Errorf("%s %s: %s: %w; %s", flag, addr, what, cause, hint)
}
