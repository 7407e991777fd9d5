package registry

import (
	"cmp"
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
		return Invalid("dns_ttl %d is out of range 0-%d seconds", *s.DNSTTL, MaxDNSTTL)
	}
	if s.MinHealthyPercent != nil && (*s.MinHealthyPercent < 0 || *s.MinHealthyPercent > 100) {
		return Invalid("min_healthy_percent %d is out of range 0-100", *s.MinHealthyPercent)
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
	explicit bool
	// all holds the instances sorted by id: a lookup is a binary search,
	// and a copy for the next snapshot is one copy of pointers.
	all []*Instance

	// index is the version of the first snapshot that held this value of
	// the service; set once, when it is published.
	index uint64

	// Derived by finish.
	passing []*Instance
	warning []*Instance
	counts  Counts
}

// Name is the service's canonical (lower-case) name.
func (s *Service) Name() string { return s.name }

// Index is the version of the snapshot in which the service last changed:
// an instance was added, removed or changed (health included), or its
// settings were written.
func (s *Service) Index() uint64 { return s.index }

// Settings are the service's own settings.
func (s *Service) Settings() Settings { return s.settings }

// Explicit reports whether the service's settings were written by a client.
func (s *Service) Explicit() bool { return s.explicit }

// Instances returns every instance, sorted by id. The slice is shared.
func (s *Service) Instances() []*Instance { return s.all }

// Instance returns the instance with the given id.
func (s *Service) Instance(id string) (*Instance, bool) {
	if i, ok := s.find(id); ok {
		return s.all[i], true
	}
	return nil, false
}

// find returns where id is or would be in s.all.
func (s *Service) find(id string) (int, bool) {
	return slices.BinarySearchFunc(s.all, id, func(in *Instance, id string) int { return cmp.Compare(in.ID, id) })
}

// put adds or replaces in (s must be a private copy).
func (s *Service) put(in *Instance) {
	if i, ok := s.find(in.ID); ok {
		s.all[i] = in
	} else {
		s.all = slices.Insert(s.all, i, in)
	}
}

// remove removes instance id (s must be a private copy).
func (s *Service) remove(id string) {
	if i, ok := s.find(id); ok {
		s.all = slices.Delete(s.all, i, i+1)
	}
}

// Passing returns the passing instances, sorted by id. The slice is shared.
func (s *Service) Passing() []*Instance { return s.passing }

// Warning returns the instances in warning, sorted by id. The slice is shared.
func (s *Service) Warning() []*Instance { return s.warning }

// Counts returns how many instances are in each status.
func (s *Service) Counts() Counts { return s.counts }

func (s *Service) clone() *Service {
	all := make([]*Instance, len(s.all), len(s.all)+1)
	copy(all, s.all)
	return &Service{name: s.name, settings: s.settings, explicit: s.explicit, all: all}
}

// finish derives the views by status and the counts after the instances
// changed.
func (s *Service) finish() {
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
