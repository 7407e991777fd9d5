package registry_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"disco/registry"
)

// TestErrorKinds checks, for errors made by the registry's exported
// functions, the kind that errors.Is finds from outside the package, the
// text for logs (Error) and the text for the client (MessageOf).
func TestErrorKinds(t *testing.T) {
	kinds := []error{registry.ErrInvalid, registry.ErrNotFound, registry.ErrUnavailable}
	ctx := context.Background()
	newReg := func(t *testing.T, fs *fakeStore) *registry.Registry {
		r := registry.New(registry.Config{Store: fs})
		if _, err := r.Register(ctx, inst(t, "web", "a1", "10.0.0.1:80")); err != nil {
			t.Fatal(err)
		}
		return r
	}
	newInstance := func(reg registry.Registration) func(*testing.T) error {
		return func(*testing.T) error {
			_, err := registry.NewInstance("web", "a1", reg)
			return err
		}
	}
	tests := []struct {
		name     string
		do       func(t *testing.T) error
		kind     error
		text     string
		message  string
		op       string // of the *registry.Error found by errors.As; "-" when there is none
		problems int    // the number of Problems, 0 when the error is not Problems
	}{
		{name: "one invalid field", do: newInstance(registry.Registration{Address: "10.0.0.1", Port: 0}),
			kind: registry.ErrInvalid, text: "invalid: port 0 is out of range 1-65535",
			message: "port 0 is out of range 1-65535", problems: 1},
		{name: "every invalid field", do: newInstance(registry.Registration{Port: 70000, Tags: []string{"A B"}}),
			kind: registry.ErrInvalid,
			text: "invalid: address is required (an IPv4 or IPv6 literal)\ninvalid: port 70000 is out of range 1-65535\n" +
				`invalid: tag "a b" must be lower-case letters, digits and inner hyphens (one DNS label)`,
			message: "address is required (an IPv4 or IPv6 literal); port 70000 is out of range 1-65535; " +
				`tag "a b" must be lower-case letters, digits and inner hyphens (one DNS label)`,
			problems: 3},
		{name: "invalid check", do: newInstance(registry.Registration{Address: "10.0.0.1", Port: 80,
			Checks: []registry.Check{{Type: registry.CheckTCP, Address: "10.0.0.1"}}}),
			kind: registry.ErrInvalid, text: `check 1: invalid: tcp check: address "10.0.0.1" must be host:port`,
			message: `check 1: tcp check: address "10.0.0.1" must be host:port`, op: "check 1", problems: 1},
		{name: "invalid settings", do: func(*testing.T) error {
			_, err := registry.New(registry.Config{}).SetSettings(ctx, "web", registry.Settings{DNSTTL: intp(-1)})
			return err
		}, kind: registry.ErrInvalid, text: "invalid: dns_ttl -1 is out of range 0-86400 seconds",
			message: "dns_ttl -1 is out of range 0-86400 seconds"},
		{name: "invalid name", do: func(*testing.T) error { return registry.ValidateName("service name", "-web") },
			kind: registry.ErrInvalid, text: `invalid: service name "-web" must be lower-case letters, digits and inner hyphens (one DNS label)`,
			message: `service name "-web" must be lower-case letters, digits and inner hyphens (one DNS label)`},
		{name: "invalid batch", do: func(t *testing.T) error {
			in := inst(t, "web", "a2", "10.0.0.2:80")
			_, err := newReg(t, newFakeStore()).Apply(ctx, func(*registry.Snapshot) (registry.Batch, error) {
				return registry.Batch{Put: []*registry.Instance{in, in}}, nil
			})
			return err
		}, kind: registry.ErrInvalid, text: "invalid: instance web/a2 is written twice in one batch",
			message: "instance web/a2 is written twice in one batch"},
		{name: "not found", do: func(t *testing.T) error {
			return newReg(t, newFakeStore()).Deregister(ctx, "web", "zz")
		}, kind: registry.ErrNotFound, text: `deregister web/zz: not found: instance "zz" of service "web" is not registered`,
			message: `deregister web/zz: instance "zz" of service "web" is not registered`, op: "deregister web/zz"},
		{name: "not found draining", do: func(t *testing.T) error {
			_, err := newReg(t, newFakeStore()).SetMaintenance(ctx, "web", "zz", true, "")
			return err
		}, kind: registry.ErrNotFound, text: `set maintenance of web/zz: not found: instance "zz" of service "web" is not registered`,
			message: `set maintenance of web/zz: instance "zz" of service "web" is not registered`, op: "set maintenance of web/zz"},
		{name: "unavailable", do: func(t *testing.T) error {
			fs := newFakeStore()
			r := newReg(t, fs)
			fs.setFail(true)
			return r.Deregister(ctx, "web", "a1")
		}, kind: registry.ErrUnavailable, text: "deregister web/a1: store unavailable: disk full",
			message: "deregister web/a1: store unavailable: disk full", op: "-"},
		{name: "invalid in an operation", do: func(*testing.T) error {
			return registry.Invalid("the instance has no ttl check").In("heartbeat web/a1")
		}, kind: registry.ErrInvalid, text: "heartbeat web/a1: invalid: the instance has no ttl check",
			message: "heartbeat web/a1: the instance has no ttl check", op: "heartbeat web/a1"},
		{name: "operations nest", do: func(*testing.T) error {
			return registry.NotFound(`service "mail" is not registered`).In("watch").In("api")
		}, kind: registry.ErrNotFound, text: `api: watch: not found: service "mail" is not registered`,
			message: `api: watch: service "mail" is not registered`, op: "api: watch"},
		{name: "joined names", do: func(*testing.T) error {
			return registry.Join(registry.ValidateName("service name", "web"), registry.ValidateName("instance id", ""))
		}, kind: registry.ErrInvalid, text: "invalid: instance id is empty", message: "instance id is empty", problems: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do(t)
			if err == nil {
				t.Fatal("no error")
			}
			for _, k := range kinds {
				if got, want := errors.Is(err, k), k == tt.kind; got != want {
					t.Errorf("errors.Is(err, %q) = %v, want %v", k, got, want)
				}
			}
			if got := err.Error(); got != tt.text {
				t.Errorf("Error() = %q\n        want %q", got, tt.text)
			}
			if got := registry.MessageOf(err); got != tt.message {
				t.Errorf("MessageOf = %q\n      want %q", got, tt.message)
			}
			var re *registry.Error
			switch found := errors.As(err, &re); {
			case tt.op == "-" && found:
				t.Errorf("errors.As found a *registry.Error %+v", re)
			case tt.op != "-" && !found:
				t.Error("errors.As found no *registry.Error")
			case found:
				if re.Op != tt.op {
					t.Errorf("Op = %q, want %q", re.Op, tt.op)
				}
				if re.Kind != tt.kind {
					t.Errorf("Kind = %v, want %v", re.Kind, tt.kind)
				}
			}
			var p registry.Problems
			if got := errors.As(err, &p); got != (tt.problems > 0) || len(p) != tt.problems {
				t.Errorf("Problems: found %v with %d, want %d", got, len(p), tt.problems)
			}
		})
	}
}

func TestJoinNothing(t *testing.T) {
	if err := registry.Join(); err != nil {
		t.Errorf("Join() = %v, want nil", err)
	}
	if err := registry.Join(nil, nil); err != nil {
		t.Errorf("Join(nil, nil) = %v, want nil", err)
	}
}

// TestInstanceValidate checks that what NewInstance makes is valid and that
// an instance changed behind its back is refused, with the part that
// differs.
func TestInstanceValidate(t *testing.T) {
	good := func(t *testing.T) *registry.Instance {
		in, err := registry.NewInstance("web", "a1", registry.Registration{Address: "10.0.0.1", Port: 80,
			Tags: []string{"b", "a"}, Meta: map[string]string{"k": "v"},
			Checks: []registry.Check{{Type: registry.CheckTCP, Address: "10.0.0.1:80"}}})
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	tests := []struct {
		name   string
		change func(in *registry.Instance) *registry.Instance
		want   string // "" when valid
	}{
		{"as made", func(in *registry.Instance) *registry.Instance { return in }, ""},
		{"nil", func(*registry.Instance) *registry.Instance { return nil }, "invalid: no instance"},
		{"upper-case service", func(in *registry.Instance) *registry.Instance { in.Service = "Web"; return in },
			`invalid: service name "Web" must be lower-case letters, digits and inner hyphens (one DNS label)`},
		{"empty id", func(in *registry.Instance) *registry.Instance { in.ID = ""; return in }, "invalid: instance id is empty"},
		{"no port", func(in *registry.Instance) *registry.Instance { in.Port = 0; return in }, "invalid: port 0 is out of range 1-65535"},
		{"mapped address", func(in *registry.Instance) *registry.Instance {
			in.Address = netip.MustParseAddr("::ffff:10.0.0.1")
			return in
		}, "invalid: address not in canonical form"},
		{"tags out of order", func(in *registry.Instance) *registry.Instance { slices.Reverse(in.Tags); return in },
			"invalid: tags not in canonical form"},
		{"check without defaults", func(in *registry.Instance) *registry.Instance {
			in.Checks = []registry.Check{{Type: registry.CheckTCP, Address: "10.0.0.1:80"}}
			in.Tags = []string{"b", "a"}
			return in
		}, "invalid: tags, checks not in canonical form"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.change(good(t)).Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			case tt.want != "" && !errors.Is(err, registry.ErrInvalid):
				t.Errorf("Validate() = %v, not ErrInvalid", err)
			}
		})
	}
}
