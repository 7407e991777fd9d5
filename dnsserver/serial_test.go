package dnsserver

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"disco/store"
)

func TestSerialArithmetic(t *testing.T) {
	for _, tc := range []struct {
		a, b uint32
		less bool
	}{
		{1, 2, true}, {2, 1, false}, {5, 5, false},
		{0xffffffff, 0, true}, {0, 0xffffffff, false}, // wraps
		{0, 1<<31 - 1, true}, {0, 1 << 31, false}, // undefined: not less
	} {
		if got := serialLess(tc.a, tc.b); got != tc.less {
			t.Errorf("serialLess(%d, %d) = %v", tc.a, tc.b, got)
		}
	}
	if got := serialMax(0xfffffff0, 3); got != 3 {
		t.Errorf("serialMax across the wrap = %d", got)
	}
}

// TestSerialsSurviveRestarts: serials handed out by one run are all below
// the first serial of the next, whatever the clock says.
func TestSerialsSurviveRestarts(t *testing.T) {
	dir := t.TempDir()
	clock := time.Unix(1767225600, 0)
	open := func() *Serials {
		t.Helper()
		s, err := NewSerials(SerialConfig{Store: store.NewSerialFile(dir), Now: func() time.Time { return clock }})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	if s.First() != 1767225600 {
		t.Fatalf("fresh data dir: first serial %d, want the clock", s.First())
	}
	// More changes than one reserved block, faster than the clock.
	served := s.First()
	for range serialBlock + 10 {
		next, err := s.Next(served)
		if err != nil {
			t.Fatal(err)
		}
		if !serialLess(served, next) {
			t.Fatalf("%d does not follow %d", next, served)
		}
		served = next
	}
	// Restart with the clock a second later: far behind what was served.
	clock = clock.Add(time.Second)
	s = open()
	if !serialLess(served, s.First()) {
		t.Errorf("after a restart the serial starts at %d, below %d served before", s.First(), served)
	}
	// Restart much later: the clock wins.
	clock = clock.Add(365 * 24 * time.Hour)
	if s = open(); s.First() != uint32(clock.Unix()) {
		t.Errorf("a year later the serial starts at %d, want the clock %d", s.First(), clock.Unix())
	}
}

func TestSerialsFloor(t *testing.T) {
	rev := uint32(100)
	s, err := NewSerials(SerialConfig{Floor: func() uint32 { return rev }})
	if err != nil {
		t.Fatal(err)
	}
	if s.First() != 100 {
		t.Fatalf("first %d, want the floor", s.First())
	}
	if n, _ := s.Next(100); n != 101 {
		t.Errorf("next after 100 with floor 100: %d", n)
	}
	rev = 5000
	if n, _ := s.Next(101); n != 5000 {
		t.Errorf("next after 101 with floor 5000: %d", n)
	}
}

// TestSerialsStoreFails: when the ceiling cannot be stored the serial still
// moves, and the error says so.
func TestSerialsStoreFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := NewSerials(SerialConfig{Store: store.NewSerialFile(dir)})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	next, err := s.Next(s.First() + serialBlock)
	if err == nil || next != s.First()+serialBlock+1 {
		t.Errorf("Next past the ceiling without a store: %d, %v", next, err)
	}
	if _, err := NewSerials(SerialConfig{Store: store.NewSerialFile(dir)}); err == nil {
		t.Error("NewSerials without a data dir: no error")
	}
}
