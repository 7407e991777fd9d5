package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// SerialFileName is the file in the data directory that keeps the ceiling
// of the discovery zone's SOA serials.
const SerialFileName = "zone-serial"

// SerialFile keeps the ceiling of the discovery zone's serials in
// dir/zone-serial (dnsserver.SerialStore): health is not durable, so the
// serials that follow health changes are reserved ahead in this file, and a
// restart starts above anything served before. The file holds the number in
// decimal; it is replaced atomically and synced.
type SerialFile struct {
	dir string
}

// NewSerialFile returns the serial file of data directory dir, which must
// exist (Open creates it).
func NewSerialFile(dir string) *SerialFile { return &SerialFile{dir: dir} }

// Path returns the file's path.
func (f *SerialFile) Path() string { return filepath.Join(f.dir, SerialFileName) }

// LoadSerial returns the stored ceiling; ok is false when there is no file.
func (f *SerialFile) LoadSerial() (uint32, bool, error) {
	b, err := os.ReadFile(f.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read %s: %w", f.Path(), err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil {
		return 0, false, fmt.Errorf("%s does not hold a serial (0-4294967295): remove it to start the serial from the clock", f.Path())
	}
	return uint32(n), true, nil
}

// SaveSerial stores the ceiling durably: written to a temporary file,
// synced, renamed over the file, and the directory synced.
func (f *SerialFile) SaveSerial(serial uint32) error {
	tmp, err := os.CreateTemp(f.dir, "."+SerialFileName+".*")
	if err != nil {
		return fmt.Errorf("save zone serial: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(strconv.FormatUint(uint64(serial), 10) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.Path())
	}
	if err == nil {
		err = syncDir(f.dir)
	}
	if err != nil {
		return fmt.Errorf("save zone serial in %s: %w", f.Path(), err)
	}
	return nil
}
