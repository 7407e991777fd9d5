package registry_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"disco/registry"
)

// policyRegistry holds service web: web-1 passing (tag a), web-2 warning
// (tag a), web-3 critical (tag b), web-4 critical, drained "upgrade" (tag
// a), and service solo with one passing instance.
func policyRegistry(t *testing.T, settings registry.Settings) *registry.Registry {
	t.Helper()
	ctx := context.Background()
	r := registry.New(registry.Config{Now: newClock().now})
	add := func(service, id, addr string, tag string, status registry.Status) {
		in, err := registry.NewInstance(service, id, registry.Registration{Address: addr, Port: 80, Tags: []string{tag},
			Checks: []registry.Check{ttlCheck(time.Minute)}})
		if err != nil {
			t.Fatal(err)
		}
		in, err = r.Register(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		r.SetHealth(in.Key(), in.Revision, registry.Health{Status: status, Output: "said " + string(status), Since: newClock().now()})
	}
	add("web", "web-1", "10.0.0.1", "a", registry.StatusPassing)
	add("web", "web-2", "10.0.0.2", "a", registry.StatusWarning)
	add("web", "web-3", "10.0.0.3", "b", registry.StatusCritical)
	add("web", "web-4", "10.0.0.4", "a", registry.StatusCritical)
	add("solo", "solo-1", "10.0.1.1", "a", registry.StatusPassing)
	if _, err := r.SetMaintenance(ctx, "web", "web-4", true, "upgrade"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SetSettings(ctx, "web", settings); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPolicySelect(t *testing.T) {
	pct := func(v int) *int { return &v }
	tests := []struct {
		name     string
		policy   registry.Policy
		settings registry.Settings
		tag      string
		served   []string
		exists   bool
		failOpen bool
		summary  string
		why      map[string]string // id -> a part of the reason
	}{
		{name: "passing only", served: []string{"web-1"}, exists: true,
			summary: "web: 4 instances, 1 passing (1 warning, 1 critical, 1 maintenance)",
			why: map[string]string{"web-1": "passing since 2025-03-01T12:00:00Z (said passing)",
				"web-2": "warning is not served", "web-3": "critical since", "web-4": "in maintenance since 2025-03-01T12:00:00Z: upgrade"}},
		{name: "serve warning", policy: registry.Policy{ServeWarning: true}, served: []string{"web-1", "web-2"}, exists: true,
			why: map[string]string{"web-2": "warning is served (--serve-warning)"}},
		{name: "tag a", tag: "a", served: []string{"web-1"}, exists: true,
			summary: "a.web: 3 instances, 1 passing (1 warning, 0 critical, 1 maintenance)",
			why:     map[string]string{"web-3": `does not carry tag "a"`}},
		{name: "unknown tag", tag: "zz", exists: false,
			summary: "zz.web: 0 instances, 0 passing (0 warning, 0 critical, 0 maintenance)"},
		{name: "server threshold fails open", policy: registry.Policy{MinHealthyPercent: 50},
			served: []string{"web-1", "web-2", "web-3"}, exists: true, failOpen: true,
			summary: "web: 1 of 3 instances passing, below min_healthy_percent 50: serving all 3 (fail open)",
			why:     map[string]string{"web-3": "served because the selection fails open", "web-4": "upgrade"}},
		{name: "warning counts as healthy when served", policy: registry.Policy{ServeWarning: true, MinHealthyPercent: 60},
			served: []string{"web-1", "web-2"}, exists: true},
		{name: "service setting wins", policy: registry.Policy{MinHealthyPercent: 50}, settings: registry.Settings{MinHealthyPercent: pct(0)},
			served: []string{"web-1"}, exists: true},
		{name: "service setting alone", settings: registry.Settings{MinHealthyPercent: pct(90)}, tag: "a",
			served: []string{"web-1", "web-2"}, exists: true, failOpen: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := policyRegistry(t, tt.settings).Snapshot()
			svc, _ := snap.Service("web")
			sel := tt.policy.Select(svc, tt.tag)
			var ids []string
			for _, in := range sel.Instances {
				ids = append(ids, in.ID)
			}
			if !slices.Equal(ids, tt.served) || sel.Exists != tt.exists || sel.FailOpen != tt.failOpen {
				t.Errorf("served %v exists %v fail open %v, want %v %v %v", ids, sel.Exists, sel.FailOpen, tt.served, tt.exists, tt.failOpen)
			}
			if tt.summary != "" && sel.Summary() != tt.summary {
				t.Errorf("summary %q, want %q", sel.Summary(), tt.summary)
			}
			if tt.tag == "" && sel.FailOpen != tt.policy.FailOpen(svc) {
				t.Errorf("Select says fail open %v, FailOpen says %v", sel.FailOpen, !sel.FailOpen)
			}
			for _, in := range svc.Instances() {
				v := sel.Why(in)
				if v.Served != slices.Contains(sel.Instances, in) {
					t.Errorf("%s: Why says served=%v (%s), the selection disagrees", in.ID, v.Served, v.Reason)
				}
				if want, ok := tt.why[in.ID]; ok && !strings.Contains(v.Reason, want) {
					t.Errorf("%s: reason %q, want it to say %q", in.ID, v.Reason, want)
				}
			}
		})
	}
}

func TestPolicySelectAllocs(t *testing.T) {
	svc, _ := policyRegistry(t, registry.Settings{}).Snapshot().Service("solo")
	var p registry.Policy
	if n := testing.AllocsPerRun(100, func() { p.Select(svc, "") }); n != 0 {
		t.Errorf("the common selection allocates %v times, want 0", n)
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, pct := range []int{-1, 101} {
		if err := (registry.Policy{MinHealthyPercent: pct}).Validate(); err == nil {
			t.Errorf("min healthy percent %d accepted", pct)
		}
	}
	if err := (registry.Policy{MinHealthyPercent: 100, ServeWarning: true}).Validate(); err != nil {
		t.Error(err)
	}
}
