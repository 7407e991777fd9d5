package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSerialFile(t *testing.T) {
	dir := t.TempDir()
	f := NewSerialFile(dir)
	if _, ok, err := f.LoadSerial(); ok || err != nil {
		t.Fatalf("empty dir: ok %v err %v", ok, err)
	}
	for _, s := range []uint32{1767225600, 4294967295, 7} {
		if err := f.SaveSerial(s); err != nil {
			t.Fatal(err)
		}
		got, ok, err := NewSerialFile(dir).LoadSerial()
		if !ok || err != nil || got != s {
			t.Fatalf("after saving %d: %d %v %v", s, got, ok, err)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("%d files left in the directory, want 1", len(ents))
	}
	if err := os.WriteFile(filepath.Join(dir, SerialFileName), []byte("soon\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.LoadSerial(); err == nil || !strings.Contains(err.Error(), "does not hold a serial") {
		t.Errorf("garbage: %v", err)
	}
	if err := NewSerialFile(filepath.Join(dir, "missing")).SaveSerial(1); err == nil {
		t.Error("saved into a missing directory")
	}
}
