package cluster

import (
	"context"
	"log/slog"
	"slices"

	"disco/registry"
)

// Heartbeats routes the ttl heartbeats a server receives to the server that
// checks the instance: its own monitor when it owns the instance, otherwise
// through the shared store, whose watch hands it to the owner's Deliver.
type Heartbeats struct {
	// Source is the local registry.
	Source interface{ Snapshot() *registry.Snapshot }
	// Owns reports whether this server checks an instance.
	Owns func(registry.Key) bool
	// Local renews the ttl checks in this server's monitor
	// (health.Monitor.Heartbeat).
	Local func(registry.Key) error
	// Forward records the heartbeat for the owner (etcdstore.PutHeartbeat).
	Forward func(ctx context.Context, k registry.Key) error
	// Logger receives heartbeats the owner could not apply; nil discards.
	Logger *slog.Logger
}

// Heartbeat renews instance k's ttl checks wherever they run. The error
// wraps registry.ErrNotFound for an unknown instance, registry.ErrInvalid
// for one without a ttl check, and registry.ErrUnavailable when the shared
// store did not take it.
func (h *Heartbeats) Heartbeat(k registry.Key) error {
	k = registry.Key{Service: registry.Fold(k.Service), ID: registry.Fold(k.ID)}
	in, ok := h.Source.Snapshot().Instance(k.Service, k.ID)
	if !ok {
		return registry.NotFound("instance %q of service %q is not registered", k.ID, k.Service).In("heartbeat " + k.String())
	}
	if !slices.ContainsFunc(in.Checks, func(c registry.Check) bool { return c.Type == registry.CheckTTL }) {
		return registry.Invalid("the instance has no ttl check").In("heartbeat " + k.String())
	}
	if h.Owns(k) {
		return h.Local(k)
	}
	return h.Forward(context.Background(), k)
}

// Deliver applies a heartbeat recorded in the shared store (by any server)
// if this server checks the instance.
func (h *Heartbeats) Deliver(k registry.Key) {
	if !h.Owns(k) {
		return
	}
	if err := h.Local(k); err != nil && h.Logger != nil {
		h.Logger.Debug("heartbeat from the cluster not applied", "service", k.Service, "instance", k.ID, "err", err)
	}
}
