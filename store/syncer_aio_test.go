//go:build linux && (amd64 || arm64)

package store

import (
	"testing"
	"unsafe"
)

// TestAIOLayout checks the Go structs against the kernel's struct iocb and
// struct io_event (include/uapi/linux/aio_abi.h).
func TestAIOLayout(t *testing.T) {
	var cb iocb
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(struct iocb)", unsafe.Sizeof(cb), 64},
		{"aio_lio_opcode", unsafe.Offsetof(cb.opcode), 16},
		{"aio_fildes", unsafe.Offsetof(cb.fildes), 20},
		{"aio_flags", unsafe.Offsetof(cb.flags), 56},
		{"aio_resfd", unsafe.Offsetof(cb.resfd), 60},
		{"sizeof(struct io_event)", unsafe.Sizeof(ioEvent{}), 32},
		{"io_event.res", unsafe.Offsetof(ioEvent{}.res), 16},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}
