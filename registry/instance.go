package registry

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Status is the status of an instance as DNS sees it.
type Status string

// The statuses of an instance. DNS serves passing instances (and warning ones
// when the server is told to); maintenance is set by an operator and wins over
// whatever the checks say.
const (
	StatusPassing     Status = "passing"
	StatusWarning     Status = "warning"
	StatusCritical    Status = "critical"
	StatusMaintenance Status = "maintenance"
)

// Limits on what one registration may carry. They keep a single instance's
// TXT record and stored form small.
const (
	MaxTags      = 32
	MaxMeta      = 64
	MaxMetaKey   = 63
	MaxMetaBytes = 255 // key=value must fit one TXT character-string
	MaxChecks    = 8
)

// Defaults applied to a registration's omitted fields.
const (
	DefaultWeight   = 1
	DefaultPriority = 1
)

// Instance is one registered endpoint of a service. Everything but Health is
// durable; Health is re-derived by the checks after a restart.
//
// Instances reachable from a Snapshot are shared and must not be modified.
type Instance struct {
	Service  string            `json:"service"`
	ID       string            `json:"id"`
	Address  netip.Addr        `json:"address"`
	Port     uint16            `json:"port"`
	Tags     []string          `json:"tags"`
	Meta     map[string]string `json:"meta"`
	Weight   uint16            `json:"weight"`
	Priority uint16            `json:"priority"`
	Checks   []Check           `json:"checks"`
	// Maintenance is non-nil while an operator drains the instance.
	Maintenance *Maintenance `json:"maintenance,omitempty"`
	// Registered is when the instance was first registered.
	Registered time.Time `json:"registered"`
	// Revision identifies the instance's current set of checks: it changes
	// when a registration changes the address, port or checks, and health
	// results carry it so that a result for an older revision is ignored.
	Revision uint64 `json:"revision"`

	// Health is the state the checks last reported (not persisted).
	Health Health `json:"-"`
}

// Maintenance records an operator's drain of an instance.
type Maintenance struct {
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"`
}

// Health is what the checks of an instance last concluded.
type Health struct {
	// Status is passing, warning or critical.
	Status Status
	// Output is the last check's output (HTTP status or error text).
	Output string
	// Since is the time of the last status transition.
	Since time.Time
}

// Key names an instance within the registry.
type Key struct {
	Service, ID string
}

func (k Key) String() string { return k.Service + "/" + k.ID }

// Key returns the instance's key.
func (in *Instance) Key() Key { return Key{in.Service, in.ID} }

// Status is the instance's effective status: maintenance when drained,
// otherwise what its checks say.
func (in *Instance) Status() Status {
	if in.Maintenance != nil {
		return StatusMaintenance
	}
	return in.Health.Status
}

// HasTag reports whether the instance carries tag t.
func (in *Instance) HasTag(t string) bool { return slices.Contains(in.Tags, t) }

// clone returns a copy that shares nothing mutable with in.
func (in *Instance) clone() *Instance {
	c := *in
	c.Tags = slices.Clone(in.Tags)
	c.Meta = maps.Clone(in.Meta)
	c.Checks = slices.Clone(in.Checks)
	if in.Maintenance != nil {
		m := *in.Maintenance
		c.Maintenance = &m
	}
	return &c
}

// initialHealth is the health of a newly registered instance: one without
// checks is passing at once, one with checks is critical until proven.
func initialHealth(in *Instance, now time.Time) Health {
	if len(in.Checks) == 0 {
		return Health{Status: StatusPassing, Output: "no checks", Since: now}
	}
	return Health{Status: StatusCritical, Output: "waiting for the first check", Since: now}
}

// Registration is the body of a register request: the fields a client sets.
// Omitted weight and priority take their defaults.
type Registration struct {
	Address  string            `json:"address"`
	Port     int               `json:"port"`
	Tags     []string          `json:"tags,omitempty"`
	Meta     map[string]string `json:"meta,omitempty"`
	Weight   *int              `json:"weight,omitempty"`
	Priority *int              `json:"priority,omitempty"`
	Checks   []Check           `json:"checks,omitempty"`
}

// NewInstance validates a registration of instance id in service and returns
// the instance it describes, with defaults filled in. Names are folded to
// lower case. Every problem found is reported, as Problems of kind ErrInvalid.
func NewInstance(service, id string, reg Registration) (*Instance, error) {
	var errs Problems
	bad := func(format string, args ...any) {
		errs = append(errs, Invalid(format, args...))
	}
	service, id = Fold(service), Fold(id)
	if err := ValidateName("service name", service); err != nil {
		errs = append(errs, err)
	}
	if err := ValidateName("instance id", id); err != nil {
		errs = append(errs, err)
	}
	in := &Instance{Service: service, ID: id, Weight: DefaultWeight, Priority: DefaultPriority}

	switch addr, err := netip.ParseAddr(reg.Address); {
	case reg.Address == "":
		bad("address is required (an IPv4 or IPv6 literal)")
	case err != nil:
		bad("address %q is not an IPv4 or IPv6 literal", reg.Address)
	case addr.Zone() != "":
		bad("address %q has a zone; give a plain IP address", reg.Address)
	case addr.Unmap().IsUnspecified():
		bad("address %q is unspecified; give the instance's reachable address", reg.Address)
	default:
		in.Address = addr.Unmap()
	}
	if reg.Port < 1 || reg.Port > 65535 {
		bad("port %d is out of range 1-65535", reg.Port)
	} else {
		in.Port = uint16(reg.Port)
	}
	if reg.Weight != nil {
		if *reg.Weight < 0 || *reg.Weight > 65535 {
			bad("weight %d is out of range 0-65535", *reg.Weight)
		} else {
			in.Weight = uint16(*reg.Weight)
		}
	}
	if reg.Priority != nil {
		if *reg.Priority < 0 || *reg.Priority > 65535 {
			bad("priority %d is out of range 0-65535", *reg.Priority)
		} else {
			in.Priority = uint16(*reg.Priority)
		}
	}

	if len(reg.Tags) > MaxTags {
		bad("%d tags given, at most %d allowed", len(reg.Tags), MaxTags)
	}
	in.Tags = []string{}
	for _, t := range reg.Tags {
		t = Fold(t)
		if err := ValidateName("tag", t); err != nil {
			errs = append(errs, err)
			continue
		}
		if !slices.Contains(in.Tags, t) {
			in.Tags = append(in.Tags, t)
		}
	}
	slices.Sort(in.Tags)

	if len(reg.Meta) > MaxMeta {
		bad("%d meta keys given, at most %d allowed", len(reg.Meta), MaxMeta)
	}
	in.Meta = make(map[string]string, len(reg.Meta))
	for _, k := range slices.Sorted(maps.Keys(reg.Meta)) {
		v := reg.Meta[k]
		if err := validateMetaKey(k); err != nil {
			errs = append(errs, err)
			continue
		}
		if len(k)+1+len(v) > MaxMetaBytes {
			bad("meta %q: key=value is %d bytes, at most %d allowed", k, len(k)+1+len(v), MaxMetaBytes)
			continue
		}
		in.Meta[k] = v
	}

	if len(reg.Checks) > MaxChecks {
		bad("%d checks given, at most %d allowed", len(reg.Checks), MaxChecks)
	}
	in.Checks = make([]Check, 0, len(reg.Checks))
	for i, c := range reg.Checks {
		c, err := c.normalize()
		if err != nil {
			errs = append(errs, withOp(fmt.Sprintf("check %d", i+1), err))
			continue
		}
		in.Checks = append(in.Checks, c)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return in, nil
}

// Validate reports whether in is an instance the registry could hold:
// exactly what NewInstance makes of the same registration, with its names
// already in lower case, its defaults filled in, its tags sorted and its
// checks complete. A store checks what it reads back with it. The error is
// an *Error or Problems of kind ErrInvalid.
func (in *Instance) Validate() error {
	if in == nil {
		return Invalid("no instance")
	}
	// Check the names as given, before NewInstance folds them.
	if err := ValidateName("service name", in.Service); err != nil {
		return err
	}
	if err := ValidateName("instance id", in.ID); err != nil {
		return err
	}
	canon, err := NewInstance(in.Service, in.ID, in.registration())
	if err != nil {
		return err
	}
	var differ []string
	if canon.Address != in.Address {
		differ = append(differ, "address")
	}
	if !slices.Equal(canon.Tags, in.Tags) {
		differ = append(differ, "tags")
	}
	if !maps.Equal(canon.Meta, in.Meta) {
		differ = append(differ, "meta")
	}
	if !EqualChecks(canon.Checks, in.Checks) {
		differ = append(differ, "checks")
	}
	if len(differ) > 0 {
		return Invalid("%s not in canonical form", strings.Join(differ, ", "))
	}
	return nil
}

// registration returns the registration that in was made of.
func (in *Instance) registration() Registration {
	w, p := int(in.Weight), int(in.Priority)
	reg := Registration{
		Port:     int(in.Port),
		Tags:     in.Tags,
		Meta:     in.Meta,
		Weight:   &w,
		Priority: &p,
		Checks:   in.Checks,
	}
	if in.Address.IsValid() {
		reg.Address = in.Address.String()
	}
	return reg
}

// sameTargets reports whether a and b would be checked the same way, so that
// the health of one carries over to the other.
func sameTargets(a, b *Instance) bool {
	return a.Address == b.Address && a.Port == b.Port && EqualChecks(a.Checks, b.Checks)
}
