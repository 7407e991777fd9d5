package admin

import (
	"net/http"

	"disco/registry"
)

// InstanceDetail is one instance with its recent transitions, the answer
// to GET /v1/services/{service}/instances/{id}.
type InstanceDetail struct {
	InstanceView
	// History holds the last transitions (at least registry.HistoryLen),
	// oldest first. It does not survive a restart.
	History []registry.Transition `json:"history"`
}

func (s *Server) getInstance(w http.ResponseWriter, r *http.Request) error {
	k, err := pathKey(r)
	if err != nil {
		return err
	}
	snap := s.reg.Snapshot()
	setIndex(w, snap.ServiceIndex(k.Service))
	in, err := s.lookupIn(snap, k)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.instanceDetail(in))
	return nil
}

// instanceDetail returns the JSON view of in with its history.
func (s *Server) instanceDetail(in *registry.Instance) InstanceDetail {
	d := InstanceDetail{InstanceView: s.instanceView(in), History: []registry.Transition{}}
	if a, ok := s.reg.Activity(in.Key()); ok {
		d.History = a.History
	}
	return d
}
