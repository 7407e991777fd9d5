//go:build linux && (amd64 || arm64)

package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Linux AIO ABI (include/uapi/linux/aio_abi.h).
const (
	iocbCmdFdsync = 3
	iocbFlagResfd = 1 << 0
)

// iocb is struct iocb on little-endian machines; the fields a flush does
// not use are blank.
type iocb struct {
	_      uint64 // aio_data
	_      uint32 // aio_key
	_      int32  // aio_rw_flags
	opcode uint16
	_      int16 // aio_reqprio
	fildes uint32
	_      uint64 // aio_buf
	_      uint64 // aio_nbytes
	_      int64  // aio_offset
	_      uint64 // aio_reserved2
	flags  uint32
	resfd  uint32
}

// ioEvent is struct io_event.
type ioEvent struct {
	data, obj uint64
	res, res2 int64
}

// syncer makes a file's data durable like fdatasync(2), but without
// holding an OS thread in a blocking system call while the disk works: it
// submits the flush with Linux AIO (IOCB_CMD_FDSYNC, run by a kernel
// worker) and waits for the completion on an eventfd through Go's network
// poller, so the waiting goroutine parks like one waiting on a socket.
//
// This matters for a server pinned to one core, where Go runs one
// goroutine at a time: during a blocking fdatasync the runtime keeps that
// core for the syncing thread until its monitor notices, often only after
// the disk is done, and the DNS loop waits the whole time.
//
// Where AIO is unavailable (an old kernel, a seccomp filter, a file
// system without it) syncer falls back to fdatasync.
type syncer struct {
	mu  sync.Mutex
	ctx uintptr  // aio_context_t; 0 when falling back
	efd int      // the eventfd completions signal...
	ev  *os.File // ...in the poller (never call its Fd: that makes it blocking)
	cb  iocb
	cbs [1]*iocb
}

func newSyncer() *syncer {
	s := &syncer{}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return s
	}
	var ctx uintptr
	if _, _, errno := unix.Syscall(unix.SYS_IO_SETUP, 1, uintptr(unsafe.Pointer(&ctx)), 0); errno != 0 {
		unix.Close(efd)
		return s
	}
	s.ctx, s.efd, s.ev = ctx, efd, os.NewFile(uintptr(efd), "eventfd")
	s.cbs[0] = &s.cb
	return s
}

// async reports whether s submits flushes with AIO.
func (s *syncer) async() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctx != 0
}

// describe says how s flushes, for the start-up log.
func (s *syncer) describe() string {
	if s.async() {
		return "Linux AIO fdatasync, in the background: DNS keeps answering while the disk syncs"
	}
	return "fdatasync (Linux AIO unavailable): on one core, DNS waits while the disk syncs"
}

// sync flushes f's data (not its timestamps) to stable storage.
func (s *syncer) sync(f *os.File) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	if s.ctx == 0 {
		return fdatasync(rc)
	}
	var errno unix.Errno
	if err := rc.Control(func(fd uintptr) {
		s.cb = iocb{opcode: iocbCmdFdsync, fildes: uint32(fd), flags: iocbFlagResfd, resfd: uint32(s.efd)}
		for {
			_, _, errno = unix.Syscall(unix.SYS_IO_SUBMIT, s.ctx, 1, uintptr(unsafe.Pointer(&s.cbs[0])))
			if errno != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	switch errno {
	case 0:
	case unix.EINVAL, unix.ENOSYS, unix.EPERM, unix.EOPNOTSUPP:
		// This kernel or file system does not flush through AIO.
		s.closeLocked()
		return fdatasync(rc)
	case unix.EAGAIN:
		return fdatasync(rc)
	default:
		return fmt.Errorf("submit fdatasync: %w", errno)
	}
	var ev ioEvent
	var count [8]byte
	for {
		if _, err := io.ReadFull(s.ev, count[:]); err != nil {
			return fmt.Errorf("wait for fdatasync: %w", err)
		}
		ts := unix.Timespec{}
		n, _, errno := unix.Syscall6(unix.SYS_IO_GETEVENTS, s.ctx, 1, 1,
			uintptr(unsafe.Pointer(&ev)), uintptr(unsafe.Pointer(&ts)), 0)
		if errno != 0 && errno != unix.EINTR {
			return fmt.Errorf("collect fdatasync: %w", errno)
		}
		if n == 1 {
			break
		}
	}
	if ev.res < 0 {
		return unix.Errno(-ev.res)
	}
	return nil
}

func fdatasync(rc syscall.RawConn) error {
	var err error
	if cerr := rc.Control(func(fd uintptr) {
		for {
			if err = unix.Fdatasync(int(fd)); err != unix.EINTR {
				return
			}
		}
	}); cerr != nil {
		return cerr
	}
	return err
}

// close releases the AIO context; later syncs use fdatasync.
func (s *syncer) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeLocked()
}

func (s *syncer) closeLocked() error {
	if s.ctx == 0 {
		return nil
	}
	var err error
	if _, _, errno := unix.Syscall(unix.SYS_IO_DESTROY, s.ctx, 0, 0); errno != 0 {
		err = fmt.Errorf("io_destroy: %w", errno)
	}
	s.ctx = 0
	return errors.Join(err, s.ev.Close())
}
