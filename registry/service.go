package registry

import (
	"cmp"
	"fmt"
	"slices"
)

// MaxDNSTTL is the largest dns_ttl a service may set (one day).
const MaxDNSTTL = 86400

// Settings are a service's own policies; nil fields take the server's
// defaults.
type Settings struct {
	// DNSTTL is the TTL in seconds of the service's DNS records.
	DNSTTL *int `json:"dns_ttl,omitempty"`
	// MinHealthyPercent, when set, makes DNS fail open: if fewer than this
	// share of the non-maintenance instances pass, all of them are served.
	MinHealthyPercent *int `json:"min_healthy_percent,omitempty"`
}

// Validate reports what is wrong with s, wrapping ErrInvalid.
func (s Settings) Validate() error {
	if s.DNSTTL != nil && (*s.DNSTTL < 0 || *s.DNSTTL > MaxDNSTTL) {
		return fmt.Errorf("%w: dns_ttl %d is out of range 0-%d seconds", ErrInvalid, *s.DNSTTL, MaxDNSTTL)
	}
	if s.MinHealthyPercent != nil && (*s.MinHealthyPercent < 0 || *s.MinHealthyPercent > 100) {
		return fmt.Errorf("%w: min_healthy_percent %d is out of range 0-100", ErrInvalid, *s.MinHealthyPercent)
	}
	return nil
}

// Counts are the number of a service's instances in each status.
type Counts struct {
	Passing     int `json:"passing"`
	Warning     int `json:"warning"`
	Critical    int `json:"critical"`
	Maintenance int `json:"maintenance"`
}

// Total is the number of instances counted.
func (c Counts) Total() int { return c.Passing + c.Warning + c.Critical + c.Maintenance }

// Service is a named group of instances as of one snapshot. It is immutable
// once published.
type Service struct {
	name     string
	settings Settings
	// explicit is set when the service's settings were written; such a
	// service exists even with no instances.
	explicit  bool
	instances map[string]*Instance

	// Derived by finish.
	all     []*Instance
	passing []*Instance
	warning []*Instance
	counts  Counts
}

// Name is the service's canonical (lower-case) name.
func (s *Service) Name() string { return s.name }

// Settings are the service's own settings.
func (s *Service) Settings() Settings { return s.settings }

// Explicit reports whether the service's settings were written by a client.
func (s *Service) Explicit() bool { return s.explicit }

// Instances returns every instance, sorted by id. The slice is shared.
func (s *Service) Instances() []*Instance { return s.all }

// Instance returns the instance with the given id.
func (s *Service) Instance(id string) (*Instance, bool) {
	in, ok := s.instances[id]
	return in, ok
}

// Passing returns the passing instances, sorted by id. The slice is shared.
func (s *Service) Passing() []*Instance { return s.passing }

// Warning returns the instances in warning, sorted by id. The slice is shared.
func (s *Service) Warning() []*Instance { return s.warning }

// Counts returns how many instances are in each status.
func (s *Service) Counts() Counts { return s.counts }

func (s *Service) clone() *Service {
	c := &Service{name: s.name, settings: s.settings, explicit: s.explicit,
		instances: make(map[string]*Instance, len(s.instances)+1)}
	for id, in := range s.instances {
		c.instances[id] = in
	}
	return c
}

// finish derives the sorted views and counts after the instances changed.
func (s *Service) finish() {
	s.all = make([]*Instance, 0, len(s.instances))
	for _, in := range s.instances {
		s.all = append(s.all, in)
	}
	slices.SortFunc(s.all, func(a, b *Instance) int { return cmp.Compare(a.ID, b.ID) })
	s.passing, s.warning, s.counts = nil, nil, Counts{}
	for _, in := range s.all {
		switch in.Status() {
		case StatusPassing:
			s.passing = append(s.passing, in)
			s.counts.Passing++
		case StatusWarning:
			s.warning = append(s.warning, in)
			s.counts.Warning++
		case StatusMaintenance:
			s.counts.Maintenance++
		default:
			s.counts.Critical++
		}
	}
}
