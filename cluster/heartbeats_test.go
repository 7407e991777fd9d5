package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"disco/registry"
)

// TestHeartbeats routes heartbeats: the owner's monitor renews its own,
// others forward them; unknown instances and instances without a ttl check
// are refused; Deliver applies only what this server owns.
func TestHeartbeats(t *testing.T) {
	reg := registry.New(registry.Config{})
	for _, r := range []struct {
		id     string
		checks []registry.Check
	}{
		{"mine", []registry.Check{{Type: registry.CheckTTL, TTL: registry.Duration(time.Minute)}}},
		{"theirs", []registry.Check{{Type: registry.CheckTTL, TTL: registry.Duration(time.Minute)}}},
		{"tcp", []registry.Check{{Type: registry.CheckTCP, Address: "10.0.0.1:80"}}},
	} {
		in, err := registry.NewInstance("web", r.id, registry.Registration{Address: "10.0.0.1", Port: 80, Checks: r.checks})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Register(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	var calls []string
	errDown := errors.New("etcd down")
	forwardErr := error(nil)
	h := &Heartbeats{
		Source: reg,
		Owns:   func(k registry.Key) bool { return k.ID != "theirs" },
		Local: func(k registry.Key) error {
			calls = append(calls, "local "+k.String())
			return nil
		},
		Forward: func(_ context.Context, k registry.Key) error {
			calls = append(calls, "forward "+k.String())
			return forwardErr
		},
	}
	tests := []struct {
		id    string
		err   error // nil, or what the error wraps
		calls string
	}{
		{"MINE", nil, "[local web/mine]"},
		{"theirs", nil, "[forward web/theirs]"},
		{"tcp", registry.ErrInvalid, "[]"},
		{"nobody", registry.ErrNotFound, "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			calls = nil
			err := h.Heartbeat(registry.Key{Service: "web", ID: tt.id})
			if (tt.err == nil) != (err == nil) || (tt.err != nil && !errors.Is(err, tt.err)) {
				t.Errorf("Heartbeat: %v, want %v", err, tt.err)
			}
			if got := fmt.Sprint(calls); got != tt.calls {
				t.Errorf("calls %s, want %s", got, tt.calls)
			}
		})
	}
	forwardErr = fmt.Errorf("%w: %w", registry.ErrUnavailable, errDown)
	if err := h.Heartbeat(registry.Key{Service: "web", ID: "theirs"}); !errors.Is(err, registry.ErrUnavailable) {
		t.Errorf("forward failing: %v, want ErrUnavailable", err)
	}

	calls = nil
	h.Deliver(registry.Key{Service: "web", ID: "theirs"})
	h.Deliver(registry.Key{Service: "web", ID: "mine"})
	if got := fmt.Sprint(calls); got != "[local web/mine]" {
		t.Errorf("Deliver calls %s, want only the owned one", got)
	}
}
