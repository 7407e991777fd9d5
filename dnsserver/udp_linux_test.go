package dnsserver

import (
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestSockaddrAddr(t *testing.T) {
	v4 := func(a [4]byte) *unix.RawSockaddrInet6 {
		var sa unix.RawSockaddrInet6
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa))
		sa4.Family, sa4.Addr = unix.AF_INET, a
		return &sa
	}
	v6 := func(s string) *unix.RawSockaddrInet6 {
		return &unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: netip.MustParseAddr(s).As16()}
	}
	tests := []struct {
		name string
		sa   *unix.RawSockaddrInet6
		want netip.Addr
	}{
		{"IPv4", v4([4]byte{127, 0, 1, 1}), netip.MustParseAddr("127.0.1.1")},
		{"IPv6", v6("2001:db8::7"), netip.MustParseAddr("2001:db8::7")},
		{"IPv4-mapped on a dual-stack socket", v6("::ffff:192.0.2.1"), netip.MustParseAddr("192.0.2.1")},
		{"other family", &unix.RawSockaddrInet6{Family: unix.AF_UNIX}, netip.Addr{}},
	}
	for _, tc := range tests {
		if got := sockaddrAddrPort(tc.sa).Addr(); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
