package registry_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"disco/registry"
)

func TestChangedSince(t *testing.T) {
	ctx := context.Background()
	r := registry.New(registry.Config{})
	reg := func(svc, id string) {
		t.Helper()
		in, err := registry.NewInstance(svc, id, registry.Registration{Address: "10.0.0.1", Port: 80})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Register(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 500 {
		reg(fmt.Sprintf("s%d", i), "a")
	}
	old := r.Snapshot()
	reg("s7", "b")                                       // changed
	reg("new", "a")                                      // added
	if err := r.Deregister(ctx, "s9", "a"); err != nil { // removed
		t.Fatal(err)
	}
	if _, err := r.SetSettings(ctx, "s11", registry.Settings{}); err != nil { // settings
		t.Fatal(err)
	}
	got := r.Snapshot().ChangedSince(old)
	slices.Sort(got)
	if want := []string{"new", "s11", "s7", "s9"}; !slices.Equal(got, want) {
		t.Errorf("ChangedSince = %v, want %v", got, want)
	}
	if got := r.Snapshot().ChangedSince(r.Snapshot()); len(got) != 0 {
		t.Errorf("ChangedSince itself = %v, want nothing", got)
	}
}
