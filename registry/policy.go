package registry

import (
	"fmt"
	"time"
)

// Policy decides which instances of a service DNS serves: the passing ones,
// the ones in warning too with ServeWarning, and every instance not in
// maintenance when too few of them are healthy (fail open). It is the one
// place that decides; DNS answers, the API's views, the fail-open log and
// explanations all ask it. The zero value serves passing instances and
// never fails open.
type Policy struct {
	// ServeWarning serves instances in warning next to passing ones.
	ServeWarning bool `json:"serve_warning"`
	// MinHealthyPercent is the fail-open threshold of services that set
	// none: when fewer than this share of a service's instances not in
	// maintenance are healthy, DNS serves all of them. 0 turns it off.
	MinHealthyPercent int `json:"min_healthy_percent"`
}

// Validate reports what is wrong with p, wrapping ErrInvalid.
func (p Policy) Validate() error {
	if p.MinHealthyPercent < 0 || p.MinHealthyPercent > 100 {
		return Invalid("min healthy percent %d is out of range 0-100", p.MinHealthyPercent)
	}
	return nil
}

// Threshold returns the min_healthy_percent in force for svc and whether it
// is the service's own setting (otherwise the policy's default).
func (p Policy) Threshold(svc *Service) (pct int, own bool) {
	if v := svc.settings.MinHealthyPercent; v != nil {
		return *v, true
	}
	return p.MinHealthyPercent, false
}

// failsOpen reports whether healthy instances out of active are too few
// for threshold pct.
func failsOpen(pct, healthy, active int) bool {
	return pct > 0 && active > 0 && healthy*100 < pct*active
}

// FailOpen reports whether DNS serves every instance of svc not in
// maintenance because too few of them are healthy. It looks at the
// service as a whole (no tag), from its counts, without allocating.
func (p Policy) FailOpen(svc *Service) bool {
	pct, _ := p.Threshold(svc)
	c := svc.counts
	healthy := c.Passing
	if p.ServeWarning {
		healthy += c.Warning
	}
	return failsOpen(pct, healthy, c.Total()-c.Maintenance)
}

// Selection is what a Policy serves of one service, or of the instances of
// it that carry a tag.
type Selection struct {
	// Policy is the policy that selected.
	Policy Policy
	// Service is the service's name and Tag the tag filter ("" for none).
	Service, Tag string
	// Instances are the served instances, sorted by id. The slice may be
	// shared with the service: do not modify it.
	Instances []*Instance
	// Exists is set when the name exists: the service has an instance
	// with the tag, or no tag was asked for.
	Exists bool
	// FailOpen is set when too few instances were healthy, so that every
	// instance not in maintenance is served.
	FailOpen bool
	// Counts counts the instances that carry the tag (all of them without
	// a tag) by status.
	Counts Counts
	// MinHealthyPercent is the threshold in force, and OwnThreshold tells
	// whether it is the service's own setting.
	MinHealthyPercent int
	OwnThreshold      bool
}

// Select returns the instances of svc (only those carrying tag, when tag is
// not empty) that DNS serves. The common case — no tag, no warning served,
// no threshold — allocates nothing.
func (p Policy) Select(svc *Service, tag string) Selection {
	pct, own := p.Threshold(svc)
	sel := Selection{Policy: p, Service: svc.name, Tag: tag, MinHealthyPercent: pct, OwnThreshold: own}
	if tag == "" && !p.ServeWarning && pct == 0 {
		sel.Instances, sel.Exists, sel.Counts = svc.passing, true, svc.counts
		return sel
	}
	var active []*Instance
	for _, in := range svc.all {
		if tag != "" && !in.HasTag(tag) {
			continue
		}
		sel.Exists = true
		switch in.Status() {
		case StatusPassing:
			sel.Counts.Passing++
			sel.Instances = append(sel.Instances, in)
		case StatusWarning:
			sel.Counts.Warning++
			if p.ServeWarning {
				sel.Instances = append(sel.Instances, in)
			}
		case StatusMaintenance:
			sel.Counts.Maintenance++
			continue
		default:
			sel.Counts.Critical++
		}
		active = append(active, in)
	}
	if tag == "" {
		sel.Exists = true // a registered service exists even with no instance
	}
	if failsOpen(pct, len(sel.Instances), len(active)) {
		sel.Instances, sel.FailOpen = active, true
	}
	return sel
}

// Summary is the one-line account of a selection that DNS gives in an
// Extended DNS Error when it serves nobody or fails open.
func (s Selection) Summary() string {
	what := s.Service
	if s.Tag != "" {
		what = s.Tag + "." + s.Service
	}
	c := s.Counts
	if s.FailOpen {
		return fmt.Sprintf("%s: %d of %d instances passing, below min_healthy_percent %d: serving all %d (fail open)",
			what, c.Passing, c.Total()-c.Maintenance, s.MinHealthyPercent, len(s.Instances))
	}
	return fmt.Sprintf("%s: %d instances, %d passing (%d warning, %d critical, %d maintenance)",
		what, c.Total(), c.Passing, c.Warning, c.Critical, c.Maintenance)
}

// Verdict says whether one instance is served and why.
type Verdict struct {
	Served bool
	Reason string
}

// Why says why the selection serves in or leaves it out. It agrees with
// Instances by construction: both follow the same rules in the same order
// (tag, maintenance, status, fail open).
func (s Selection) Why(in *Instance) Verdict {
	if s.Tag != "" && !in.HasTag(s.Tag) {
		return Verdict{false, fmt.Sprintf("does not carry tag %q", s.Tag)}
	}
	if m := in.Maintenance; m != nil {
		r := "in maintenance since " + m.Since.UTC().Format(time.RFC3339)
		if m.Reason != "" {
			r += ": " + m.Reason
		}
		return Verdict{false, r}
	}
	h := in.Health
	since := h.Since.UTC().Format(time.RFC3339)
	status := fmt.Sprintf("%s since %s", h.Status, since)
	if h.Output != "" {
		status += " (" + h.Output + ")"
	}
	switch {
	case h.Status == StatusPassing:
		return Verdict{true, status}
	case h.Status == StatusWarning && s.Policy.ServeWarning:
		return Verdict{true, status + "; warning is served (--serve-warning)"}
	case s.FailOpen:
		return Verdict{true, status + "; served because the selection fails open"}
	case h.Status == StatusWarning:
		return Verdict{false, status + "; warning is not served (no --serve-warning)"}
	}
	return Verdict{false, status}
}
