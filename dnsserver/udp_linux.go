package dnsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpBatch is how many datagrams one recvmmsg/sendmmsg call moves.
const udpBatch = 64

// udpSlotBytes is the buffer of one datagram: queries larger than this are
// cut (and then get FORMERR); answers never exceed UDPSize.
const udpSlotBytes = 4096

// mmsghdr is struct mmsghdr of recvmmsg(2) and sendmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// serveUDP reads and answers queries on c until it is closed, moving up to
// udpBatch datagrams per system call in each direction (as Knot does),
// which halves the kernel's cost per query under load.
func (s *Server) serveUDP(ctx context.Context, c *net.UDPConn) {
	rc, err := c.SyscallConn()
	if err != nil {
		s.serveUDPSimple(ctx, c)
		return
	}
	var (
		in     [udpBatch]mmsghdr
		out    [udpBatch]mmsghdr
		inIov  [udpBatch]unix.Iovec
		outIov [udpBatch]unix.Iovec
		names  [udpBatch]unix.RawSockaddrInet6
		slots  [udpBatch]*Query
		events [udpBatch]QueryEvent
	)
	bufs := make([]byte, udpBatch*udpSlotBytes)
	for i := range udpBatch {
		slots[i] = newQuery(TransportUDP, udpSlotBytes)
		inIov[i].Base = &bufs[i*udpSlotBytes]
		inIov[i].SetLen(udpSlotBytes)
		in[i].hdr.Iov = &inIov[i]
		in[i].hdr.SetIovlen(1)
		in[i].hdr.Name = (*byte)(unsafe.Pointer(&names[i]))
	}
	for {
		for i := range udpBatch {
			in[i].hdr.Namelen = unix.SizeofSockaddrInet6
			in[i].hdr.Flags = 0
		}
		var n int
		var serr error
		err := rc.Read(func(fd uintptr) bool {
			r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&in[0])), udpBatch, unix.MSG_DONTWAIT, 0, 0)
			if e == unix.EAGAIN || e == unix.EINTR {
				s.hooks.drained() // a transfer may wait for this
				return false
			}
			if e != 0 {
				serr = e
			}
			n = int(r)
			return true
		})
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Debug("udp read", "err", err)
			continue
		}
		if serr != nil {
			continue // e.g. ICMP errors reported on the socket
		}
		start := time.Now()
		m, observed := 0, 0
		for i := range n {
			if in[i].hdr.Namelen < 4 || binary.BigEndian.Uint16((*[4]byte)(unsafe.Pointer(&names[i]))[2:]) == 0 {
				continue // no one can receive an answer at port 0
			}
			q := slots[i]
			q.Wire = bufs[i*udpSlotBytes : i*udpSlotBytes+int(in[i].len)]
			q.Remote = sockaddrAddrPort(&names[i]) // cheap; needed by RRL, the query log and transfer rules
			resp, ev, observe := s.answerUDP(ctx, c, q, start)
			if observe {
				events[observed] = ev
				observed++
			}
			if resp == nil {
				continue
			}
			outIov[m].Base = unsafe.SliceData(resp)
			outIov[m].SetLen(len(resp))
			out[m].hdr.Iov = &outIov[m]
			out[m].hdr.SetIovlen(1)
			out[m].hdr.Name = (*byte)(unsafe.Pointer(&names[i]))
			out[m].hdr.Namelen = in[i].hdr.Namelen
			m++
		}
		if observed > 0 && s.hooks.Query != nil {
			per := time.Since(start) / time.Duration(observed)
			for i := range observed {
				events[i].Duration = per
				s.hooks.Query(events[i])
				events[i] = QueryEvent{}
			}
		}
		for sent := 0; sent < m; {
			var werr error
			err := rc.Write(func(fd uintptr) bool {
				r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&out[sent])), uintptr(m-sent), unix.MSG_DONTWAIT, 0, 0)
				if e == unix.EAGAIN || e == unix.EINTR {
					return false
				}
				if e != 0 {
					werr = e
					sent++ // skip the datagram that failed
					return true
				}
				sent += int(r)
				return true
			})
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				break
			}
			if werr != nil {
				s.log.Debug("udp write", "err", werr)
			}
		}
	}
}

// sockaddrAddrPort decodes a sockaddr_in or sockaddr_in6 filled in by
// recvmmsg; an unknown family gives the zero AddrPort.
func sockaddrAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	port := binary.BigEndian.Uint16((*[4]byte)(unsafe.Pointer(sa))[2:])
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port)
	}
	return netip.AddrPort{}
}

// udpPending reports whether a datagram waits to be read on c.
func udpPending(c *net.UDPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	_ = rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
	return n > 0
}
