package store_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"disco/registry"
	"disco/store"
)

// crashCopy copies the data dir of a store that is still open, as a crash
// would leave it: the bbolt file as of the last checkpoint plus journals.
func crashCopy(t *testing.T, dir string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		src, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, src); err != nil {
			t.Fatal(err)
		}
		src.Close()
		out.Close()
	}
	return dst
}

func journals(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "journal-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func loadIDs(t *testing.T, dir string) map[string]bool {
	t.Helper()
	b := open(t, dir)
	defer b.Close()
	st, err := b.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, in := range st.Instances {
		ids[in.Service+"/"+in.ID] = true
	}
	return ids
}

// TestJournalSurvivesCrash checks that commits acknowledged but not yet
// checkpointed are replayed after a crash, deletes included.
func TestJournalSurvivesCrash(t *testing.T) {
	dir := t.TempDir()
	b, err := store.Open(dir, store.Options{CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	for i := range 50 {
		if err := b.Commit(ctx, []registry.Change{put(instance(t, "web", fmt.Sprintf("w%d", i), "10.0.0.1"))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(ctx, []registry.Change{{Op: registry.OpDeleteInstance, Service: "web", ID: "w7"}}); err != nil {
		t.Fatal(err)
	}
	if len(journals(t, dir)) != 1 {
		t.Fatalf("journal files %v, want one", journals(t, dir))
	}
	copied := crashCopy(t, dir)
	ids := loadIDs(t, copied)
	if len(ids) != 49 || ids["web/w7"] || !ids["web/w49"] {
		t.Fatalf("after the crash: %d instances (w7 %v, w49 %v), want 49 without w7", len(ids), ids["web/w7"], ids["web/w49"])
	}
	if j := journals(t, copied); len(j) != 0 {
		t.Errorf("journals left after a clean reopen: %v", j)
	}
}

// TestJournalTornTail checks that a last record cut short by a crash is
// dropped (its writer never got an answer) and the rest is kept.
func TestJournalTornTail(t *testing.T) {
	dir := t.TempDir()
	b, err := store.Open(dir, store.Options{CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := range 5 {
		if err := b.Commit(context.Background(), []registry.Change{put(instance(t, "web", fmt.Sprintf("w%d", i), "10.0.0.1"))}); err != nil {
			t.Fatal(err)
		}
	}
	copied := crashCopy(t, dir)
	j := journals(t, copied)[0]
	data, _ := os.ReadFile(j)
	for _, tail := range [][]byte{{0, 0, 1}, {0, 0, 0, 200, 1, 2, 3, 4, 5}, data[:len(data)/5+9]} {
		t.Run(fmt.Sprintf("%d bytes", len(tail)), func(t *testing.T) {
			d := crashCopy(t, copied)
			f, err := os.OpenFile(filepath.Join(d, filepath.Base(j)), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(tail)
			f.Close()
			if ids := loadIDs(t, d); len(ids) != 5 {
				t.Errorf("%d instances after a torn tail, want the 5 whole records", len(ids))
			}
		})
	}
}

// TestJournalCorruptEarlierFile checks that damage in a journal file that
// is not the last one stops Open with an error naming the file.
func TestJournalCorruptEarlierFile(t *testing.T) {
	dir := t.TempDir()
	b, err := store.Open(dir, store.Options{CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Commit(context.Background(), []registry.Change{put(instance(t, "web", "w1", "10.0.0.1"))}); err != nil {
		t.Fatal(err)
	}
	d := crashCopy(t, dir)
	first := journals(t, d)[0]
	data, _ := os.ReadFile(first)
	data[len(data)-1] ^= 0xff
	os.WriteFile(first, data, 0o600)
	second := strings.Replace(first, "0001.log", "0002.log", 1)
	os.WriteFile(second, nil, 0o600)
	_, err = store.Open(d, store.Options{})
	if err == nil || !strings.Contains(err.Error(), first) || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("Open: %v, want a checksum error naming %s", err, first)
	}
}

// TestCheckpoint checks that the journal is copied into the bbolt file and
// removed once it passes its size threshold, and that everything loads.
func TestCheckpoint(t *testing.T) {
	dir := t.TempDir()
	b, err := store.Open(dir, store.Options{CheckpointBytes: 4096, CheckpointInterval: time.Hour,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 200 {
		if err := b.Commit(ctx, []registry.Change{put(instance(t, "web", fmt.Sprintf("w%d", i), "10.0.0.1"))}); err != nil {
			t.Fatal(err)
		}
	}
	// The checkpoint runs in the background: wait (bounded) for the
	// journal to be rotated at least once.
	deadline := time.Now().Add(10 * time.Second)
	for {
		j := journals(t, dir)
		if len(j) == 1 && !strings.HasSuffix(j[0], "0001.log") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("journal never rotated: %v", j)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if j := journals(t, dir); len(j) != 0 {
		t.Errorf("journal files after Close: %v, want none (all checkpointed)", j)
	}
	if ids := loadIDs(t, dir); len(ids) != 200 {
		t.Errorf("%d instances after reopening, want 200", len(ids))
	}
}
