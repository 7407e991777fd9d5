package store

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestSyncer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fallback bool
	}{{"aio", false}, {"fdatasync", true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSyncer()
			defer s.close()
			if tc.fallback {
				if err := s.close(); err != nil {
					t.Fatal(err)
				}
			} else if !s.async() {
				if runtime.GOOS == "linux" && (runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64") {
					t.Skip("Linux AIO is not available here (io_setup refused); the server falls back to fdatasync")
				}
				t.Skip("no AIO flush on this platform")
			}
			f, err := os.Create(filepath.Join(t.TempDir(), "f"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for i := range 50 {
				if _, err := f.Write([]byte("record\n")); err != nil {
					t.Fatal(err)
				}
				if err := s.sync(f); err != nil {
					t.Fatalf("sync %d: %v", i, err)
				}
			}
			if s.async() == tc.fallback {
				t.Errorf("async() = %v after syncing, want %v", s.async(), !tc.fallback)
			}
			// A closed file is an error, not a hang or a panic.
			f.Close()
			if err := s.sync(f); err == nil {
				t.Error("sync of a closed file succeeded")
			}
		})
	}
}

// TestSyncerError checks that a flush the kernel refuses comes back as an
// error, and that the syncer still works for the next file.
func TestSyncerError(t *testing.T) {
	s := newSyncer()
	defer s.close()
	dev, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if err := s.sync(dev); err == nil {
		t.Errorf("sync of %s succeeded; want the kernel's EINVAL", os.DevNull)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := s.sync(f); err != nil {
		t.Errorf("sync after a refused one: %v", err)
	}
}
