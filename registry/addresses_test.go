package registry_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"disco/registry"
)

func TestAddresses(t *testing.T) {
	ctx := context.Background()
	r := registry.New(registry.Config{})
	addrs := func() string { return fmt.Sprint(r.Snapshot().Addresses()) }
	steps := []struct {
		name string
		do   func() error
		want string
	}{
		{"empty", func() error { return nil }, "[]"},
		{"register", func() error {
			_, err := r.Register(ctx, inst(t, "web", "web-1", "10.0.0.1:80"))
			return err
		}, "[10.0.0.1]"},
		{"same address in another service", func() error {
			_, err := r.Register(ctx, inst(t, "db", "db-1", "10.0.0.1:5432"))
			return err
		}, "[10.0.0.1]"},
		{"IPv6 and a second address", func() error {
			if _, err := r.Register(ctx, inst(t, "web", "web-2", "[2001:db8::1]:80")); err != nil {
				return err
			}
			_, err := r.Register(ctx, inst(t, "web", "web-3", "10.0.0.3:80", tcpCheck("10.0.0.3:80")))
			return err
		}, "[10.0.0.1 10.0.0.3 2001:db8::1]"},
		{"one of two users leaves", func() error { return r.Deregister(ctx, "web", "web-1") }, "[10.0.0.1 10.0.0.3 2001:db8::1]"},
		{"the last user leaves", func() error { return r.Deregister(ctx, "db", "db-1") }, "[10.0.0.3 2001:db8::1]"},
		{"re-registered at another address", func() error {
			_, err := r.Register(ctx, inst(t, "web", "web-2", "10.0.0.2:80"))
			return err
		}, "[10.0.0.2 10.0.0.3]"},
		{"maintenance keeps it", func() error {
			_, err := r.SetMaintenance(ctx, "web", "web-3", true, "")
			return err
		}, "[10.0.0.2 10.0.0.3]"},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := addrs(); got != s.want {
			t.Errorf("%s: addresses %s, want %s", s.name, got, s.want)
		}
	}
	snap := r.Snapshot()
	for a, want := range map[string]bool{"10.0.0.2": true, "10.0.0.3": true, "10.0.0.1": false, "2001:db8::1": false} {
		if got := snap.HasAddress(netip.MustParseAddr(a)); got != want {
			t.Errorf("HasAddress(%s) = %v, want %v", a, got, want)
		}
	}
	// A critical instance (checks not yet passed) still counts.
	if in, _ := snap.Instance("web", "web-3"); in.Status() == registry.StatusPassing {
		t.Fatal("web-3 should not be passing")
	}
}

// TestAddressesLoad: the index is built by Load and by remote changes too.
func TestAddressesLoadAndRemote(t *testing.T) {
	st := &memStore{state: &registry.State{Instances: []*registry.Instance{
		inst(t, "web", "web-1", "10.0.0.1:80"), inst(t, "web", "web-2", "10.0.0.2:80"),
	}}}
	r := registry.New(registry.Config{Store: st})
	if err := r.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(r.Snapshot().Addresses()); got != "[10.0.0.1 10.0.0.2]" {
		t.Fatalf("after Load: %s", got)
	}
	r.ApplyRemote([]registry.Change{
		{Op: registry.OpDeleteInstance, Service: "web", ID: "web-1"},
		{Op: registry.OpPutInstance, Service: "api", Instance: inst(t, "api", "api-1", "10.0.0.9:80")},
	}, nil)
	if got := fmt.Sprint(r.Snapshot().Addresses()); got != "[10.0.0.2 10.0.0.9]" {
		t.Fatalf("after ApplyRemote: %s", got)
	}
}

// memStore is a registry.Store that keeps a fixed state and accepts every
// commit.
type memStore struct{ state *registry.State }

func (m *memStore) Load(context.Context) (*registry.State, error)   { return m.state, nil }
func (m *memStore) Commit(context.Context, []registry.Change) error { return nil }
