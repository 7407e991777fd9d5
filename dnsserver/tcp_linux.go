package dnsserver

import (
	"io"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawStream reads and writes a TCP connection with raw system calls on
// its non-blocking socket, waiting for it through the runtime's poller
// (which keeps the connection's deadlines). A plain Read or Write tells
// the scheduler it enters a system call; on a loopback connection the
// call does the peer's receive work too, often longer than the 20 µs
// after which the scheduler's monitor hands the processor to another
// thread, and with one processor that costs a thread switch per batch of
// answers. Reads and writes of a non-blocking socket never wait, so they
// need not tell.
type rawStream struct {
	rc syscall.RawConn
	// The arguments and results of the read and the write under way
	// (one reader; writes are serialized), and the functions that do
	// them, made once so that a call allocates nothing.
	rbuf            []byte
	rn              int
	rerr            syscall.Errno
	wbuf, wmore     []byte
	werr            syscall.Errno
	readFn, writeFn func(fd uintptr) bool
}

// newStream returns the reader and writer of nc.
func newStream(nc net.Conn) (io.Reader, streamWriter) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nc, netWriter{nc}
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nc, netWriter{nc}
	}
	s := &rawStream{rc: rc}
	s.readFn, s.writeFn = s.read, s.writeSome
	return s, s
}

func (s *rawStream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.rbuf = p
	err := s.rc.Read(s.readFn)
	s.rbuf = nil
	switch {
	case err != nil:
		return 0, err
	case s.rerr != 0:
		return 0, s.rerr
	case s.rn == 0:
		return 0, io.EOF
	}
	return s.rn, nil
}

// read is the RawConn.Read function of Read.
func (s *rawStream) read(fd uintptr) bool {
	for {
		r, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&s.rbuf[0])), uintptr(len(s.rbuf)))
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // wait until readable
		}
		s.rn, s.rerr = int(r), e
		return true
	}
}

// write writes all of b, then all of more.
func (s *rawStream) write(b, more []byte) error {
	s.wbuf, s.wmore, s.werr = b, more, 0
	err := s.rc.Write(s.writeFn)
	s.wbuf, s.wmore = nil, nil
	if err != nil {
		return err
	}
	if s.werr != 0 {
		return s.werr
	}
	return nil
}

// writeSome is the RawConn.Write function of write.
func (s *rawStream) writeSome(fd uintptr) bool {
	for len(s.wbuf) > 0 || len(s.wmore) > 0 {
		if len(s.wbuf) == 0 {
			s.wbuf, s.wmore = s.wmore, nil
		}
		r, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&s.wbuf[0])), uintptr(len(s.wbuf)))
		switch e {
		case 0:
			s.wbuf = s.wbuf[r:]
		case unix.EINTR:
		case unix.EAGAIN:
			return false // wait until writable
		default:
			s.werr = e
			return true
		}
	}
	return true
}
