package store_test

import (
	"context"
	"fmt"
	"os"

	"disco/registry"
	"disco/store"
)

// The server opens the store first, loads the registry from it, and closes
// the store last, after everything that writes to the registry has stopped.
func Example() {
	dir, err := os.MkdirTemp("", "disco-data")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	s, err := store.Open(dir, store.Options{})
	if err != nil {
		fmt.Println(err) // e.g. in use by another disco server, or corrupt
		return
	}
	r := registry.New(registry.Config{Store: s})
	if err := r.Load(ctx); err != nil {
		fmt.Println(err)
		return
	}
	in, err := registry.NewInstance("web", "web-1", registry.Registration{Address: "10.0.0.1", Port: 80})
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := r.Register(ctx, in); err != nil { // durable when it returns
		fmt.Println(err)
		return
	}
	if err := s.Close(); err != nil {
		fmt.Println(err)
		return
	}

	// After a restart the registration is still there.
	s, err = store.Open(dir, store.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	r = registry.New(registry.Config{Store: s})
	if err := r.Load(ctx); err != nil {
		fmt.Println(err)
		return
	}
	got, _ := r.Snapshot().Instance("web", "web-1")
	fmt.Println(got.Key(), got.Address, got.Port, got.Status())
	// Output: web/web-1 10.0.0.1 80 passing
}
