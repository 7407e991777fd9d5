package main

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"disco/admin"
	"disco/zones"
)

// TestListenError: the start-up error of an address that cannot be
// listened on names the flag and the address once and says what to do.
func TestListenError(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	busy := held.Addr().String()
	cases := []struct {
		addr string
		want string
	}{
		{busy, "--admin-addr " + busy + ": cannot listen on tcp: bind: address already in use; another program (another disco?) uses it: stop that program or give --admin-addr another address"},
		{"192.0.2.1:0", "--admin-addr 192.0.2.1:0: cannot listen on tcp: bind: cannot assign requested address; no network interface of this machine has that address"},
	}
	for _, tc := range cases {
		_, err := net.Listen("tcp", tc.addr)
		if err == nil {
			t.Fatalf("listen %s succeeded", tc.addr)
		}
		got := listenError("--admin-addr", tc.addr, err)
		if got.Error() != tc.want || strings.Count(got.Error(), tc.addr) != 1 {
			t.Errorf("listen %s:\n got %s\nwant %s", tc.addr, got, tc.want)
		}
		if !errors.Is(got, errors.Unwrap(err.(*net.OpError).Err)) {
			t.Errorf("listen %s: %v does not wrap the system error", tc.addr, got)
		}
	}
}

// TestAPIReloadZones: a zone file with an error is the client's problem
// (ErrUnprocessable, 422); other failures are the server's.
func TestAPIReloadZones(t *testing.T) {
	fileErr := &zones.Error{File: "z/example.com.zone", Line: 3, Msg: "bad A record"}
	for _, tc := range []struct {
		err           error
		unprocessable bool
	}{
		{nil, false},
		{errors.Join(fileErr, &zones.Error{File: "z/b.zone", Msg: "no SOA"}), true},
		{errors.New("reload zones: z: cannot read zone directory: permission denied"), false},
		{context.Canceled, false},
	} {
		_, err := apiReloadZones(t.Context(), func(context.Context) (zones.Report, error) { return zones.Report{}, tc.err })
		if got := errors.Is(err, admin.ErrUnprocessable); got != tc.unprocessable || !errors.Is(err, tc.err) {
			t.Errorf("%v: unprocessable %v, want %v (%v)", tc.err, got, tc.unprocessable, err)
		}
	}
}
