package admin

import (
	"time"

	"disco/registry"
)

// InstanceView is the JSON form of one instance as the API returns it.
type InstanceView struct {
	Service  string            `json:"service"`
	ID       string            `json:"id"`
	Address  string            `json:"address"`
	Port     int               `json:"port"`
	Tags     []string          `json:"tags"`
	Meta     map[string]string `json:"meta"`
	Weight   int               `json:"weight"`
	Priority int               `json:"priority"`
	Checks   []registry.Check  `json:"checks"`
	// Status is the effective status: maintenance while drained, otherwise
	// what the checks say.
	Status registry.Status `json:"status"`
	// Health is what the checks say, even while the instance is drained.
	Health registry.Status `json:"health"`
	// Output is the last check's output.
	Output string `json:"output"`
	// Since is when the instance entered its current status.
	Since time.Time `json:"since"`
	// Maintenance is set while an operator drains the instance.
	Maintenance *registry.Maintenance `json:"maintenance,omitempty"`
	// Registered is when the instance was first registered.
	Registered time.Time `json:"registered"`
}

// ServiceSummary is one line of the service list.
type ServiceSummary struct {
	Name string `json:"name"`
	// Instances is the number of instances, whatever their status.
	Instances int               `json:"instances"`
	Counts    registry.Counts   `json:"counts"`
	Settings  registry.Settings `json:"settings"`
	// FailOpen is set while DNS serves every instance because too few are
	// healthy (min_healthy_percent).
	FailOpen bool `json:"fail_open"`
}

// ServiceList is the answer to GET /v1/services.
type ServiceList struct {
	// Version is the registry snapshot version the list was taken from.
	Version  uint64           `json:"version"`
	Services []ServiceSummary `json:"services"`
}

// ServiceView is one service with its settings and instances, the answer
// to GET and PUT /v1/services/{service}.
type ServiceView struct {
	Name     string            `json:"name"`
	Settings registry.Settings `json:"settings"`
	Counts   registry.Counts   `json:"counts"`
	// FailOpen is set while fewer than min_healthy_percent of the
	// instances are healthy and DNS serves all of them.
	FailOpen  bool           `json:"fail_open"`
	Instances []InstanceView `json:"instances"`
}

// MaintenanceRequest is the body of PUT .../maintenance.
type MaintenanceRequest struct {
	// Enabled drains the instance when true and undrains it when false; it
	// is required.
	Enabled *bool `json:"enabled"`
	// Reason says why the instance is drained (shown to operators).
	Reason string `json:"reason,omitempty"`
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error string `json:"error"`
}

// instanceView returns the JSON view of in.
func instanceView(in *registry.Instance) InstanceView {
	v := InstanceView{
		Service:    in.Service,
		ID:         in.ID,
		Address:    in.Address.String(),
		Port:       int(in.Port),
		Tags:       in.Tags,
		Meta:       in.Meta,
		Weight:     int(in.Weight),
		Priority:   int(in.Priority),
		Checks:     in.Checks,
		Status:     in.Status(),
		Health:     in.Health.Status,
		Output:     in.Health.Output,
		Since:      in.Health.Since.UTC(),
		Registered: in.Registered.UTC(),
	}
	if v.Tags == nil {
		v.Tags = []string{}
	}
	if v.Meta == nil {
		v.Meta = map[string]string{}
	}
	if v.Checks == nil {
		v.Checks = []registry.Check{}
	}
	if m := in.Maintenance; m != nil {
		v.Maintenance = &registry.Maintenance{Reason: m.Reason, Since: m.Since.UTC()}
		v.Since = v.Maintenance.Since
	}
	return v
}

// serviceView returns the JSON view of svc and its instances.
func (s *Server) serviceView(svc *registry.Service) ServiceView {
	all := svc.Instances()
	v := ServiceView{
		Name:      svc.Name(),
		Settings:  svc.Settings(),
		Counts:    svc.Counts(),
		FailOpen:  svc.FailOpen(s.cfg.MinHealthyPercent, s.cfg.ServeWarning),
		Instances: make([]InstanceView, 0, len(all)),
	}
	for _, in := range all {
		v.Instances = append(v.Instances, instanceView(in))
	}
	return v
}

// serviceList returns the JSON view of every service in snap.
func (s *Server) serviceList(snap *registry.Snapshot) ServiceList {
	svcs := snap.Services()
	l := ServiceList{Version: snap.Version(), Services: make([]ServiceSummary, 0, len(svcs))}
	for _, svc := range svcs {
		c := svc.Counts()
		l.Services = append(l.Services, ServiceSummary{
			Name:      svc.Name(),
			Instances: c.Total(),
			Counts:    c,
			Settings:  svc.Settings(),
			FailOpen:  svc.FailOpen(s.cfg.MinHealthyPercent, s.cfg.ServeWarning),
		})
	}
	return l
}

// Deregistered is the answer to DELETE /v1/services/{service}/instances/{id}.
// Deregistering is idempotent: the answer is the same success whether the
// instance was registered or not, and Removed tells which.
type Deregistered struct {
	Service string `json:"service"`
	ID      string `json:"id"`
	// Removed is true when this request removed the instance, false when
	// it was not registered (nothing changed).
	Removed bool `json:"removed"`
}
