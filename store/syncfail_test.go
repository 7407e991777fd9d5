package store

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"disco/registry"
)

// failingFlusher reports every flush as failed, as a dying disk would.
type failingFlusher struct{}

func (failingFlusher) sync(*os.File) error { return syscall.EIO }

func change(t *testing.T, id string) registry.Change {
	t.Helper()
	in, err := registry.NewInstance("web", id, registry.Registration{Address: "10.0.0.1", Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	in.Revision = 1
	return registry.Change{Op: registry.OpPutInstance, Service: "web", Instance: in}
}

// TestFailedSyncStopsWrites checks what a failed journal sync does: the
// commit fails with the disk's error, every later commit fails too (after
// a failed fsync the page cache cannot be trusted), nothing acknowledged
// is lost, and a restart replays the journal and takes writes again.
func TestFailedSyncStopsWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(ctx, []registry.Change{change(t, "acked")}); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	real := b.j.sync
	b.j.sync = failingFlusher{}
	b.mu.Unlock()
	err = b.Commit(ctx, []registry.Change{change(t, "failed")})
	if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "sync journal") {
		t.Fatalf("commit with a failing sync: %v, want the sync's EIO", err)
	}
	b.mu.Lock()
	b.j.sync = real
	b.mu.Unlock()
	if err := b.Commit(ctx, []registry.Change{change(t, "later")}); !errors.Is(err, syscall.EIO) {
		t.Fatalf("commit after a failed sync: %v, want it refused with the sync's error", err)
	}
	if err := b.Close(); err != nil {
		t.Logf("close after a failed sync: %v", err)
	}

	b, err = Open(dir, Options{})
	if err != nil {
		t.Fatalf("reopen after a failed sync: %v", err)
	}
	defer b.Close()
	st, err := b.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, in := range st.Instances {
		ids[in.ID] = true
	}
	if !ids["acked"] || ids["later"] {
		t.Errorf("after restart: %v; want the acknowledged write and not the refused one", ids)
	}
	// The write whose sync failed may be there or not, as after a crash:
	// its client got an error, not an acknowledgement.
	if err := b.Commit(ctx, []registry.Change{change(t, "after-restart")}); err != nil {
		t.Errorf("commit after the restart: %v", err)
	}
}
