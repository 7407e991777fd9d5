package main

import (
	"context"
	"log/slog"

	"disco/registry"
)

// logFailOpen logs each service's passage into and out of fail-open (DNS
// serving all its instances because fewer than min_healthy_percent are
// healthy) until ctx is done.
func logFailOpen(ctx context.Context, reg *registry.Registry, policy registry.Policy, log *slog.Logger) {
	open := map[string]bool{}
	check := func(svc *registry.Service) {
		now := policy.FailOpen(svc)
		if now == open[svc.Name()] {
			return
		}
		c := svc.Counts()
		if now {
			open[svc.Name()] = true
			log.Warn("too few healthy instances: DNS serves all of them (fail open)", "service", svc.Name(),
				"passing", c.Passing, "warning", c.Warning, "critical", c.Critical, "maintenance", c.Maintenance)
		} else {
			delete(open, svc.Name())
			log.Info("enough healthy instances again: DNS serves the healthy ones", "service", svc.Name(),
				"passing", c.Passing, "critical", c.Critical)
		}
	}
	snap := reg.Snapshot()
	for _, svc := range snap.Services() {
		check(svc)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-snap.Changed():
		}
		next := reg.Snapshot()
		changed := next.Touched()
		if next.Version() != snap.Version()+1 {
			changed = next.ChangedSince(snap)
		}
		for _, name := range changed {
			if svc, ok := next.Service(name); ok {
				check(svc)
			} else {
				delete(open, name)
			}
		}
		snap = next
	}
}
