package etcdstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"disco/registry"
)

// The layout of the keys under the prefix P:
//
//	P + "schema"                     the layout version, "1"
//	P + "services/" + service        registry.Settings (the store package's JSON)
//	P + "instances/" + service/id    registry.Instance (the store package's JSON, no health)
//	P + "health/" + service/id       healthRecord: what the instance's checks concluded
//	P + "heartbeats/" + service/id   heartbeatRecord: the last heartbeat of a ttl check
//	P + "members/" + member          the live servers (package cluster), on leases
const (
	keySchema     = "schema"
	dirServices   = "services/"
	dirInstances  = "instances/"
	dirHealth     = "health/"
	dirHeartbeats = "heartbeats/"
	// DirMembers is the directory of the live servers under the prefix.
	DirMembers = "members/"
)

// SchemaVersion is the layout version this package writes. A prefix
// written with a newer version is refused rather than misread.
const SchemaVersion = 1

// healthRecord is the stored health of one instance revision.
type healthRecord struct {
	Status   registry.Status `json:"status"`
	Output   string          `json:"output"`
	Since    time.Time       `json:"since"`
	Revision uint64          `json:"revision"`
	// By is the member that wrote it.
	By string `json:"by"`
	// Heartbeat is the etcd revision of the latest heartbeat record the
	// result answers; 0 for none.
	Heartbeat int64 `json:"heartbeat,omitempty"`
}

func (h healthRecord) health() registry.Health {
	return registry.Health{Status: h.Status, Output: h.Output, Since: h.Since}
}

func decodeHealth(val []byte) (healthRecord, error) {
	var h healthRecord
	if err := json.Unmarshal(val, &h); err != nil {
		return h, fmt.Errorf("decode health: %w", err)
	}
	switch h.Status {
	case registry.StatusPassing, registry.StatusWarning, registry.StatusCritical:
	default:
		return h, fmt.Errorf("health status %q is not passing, warning or critical", h.Status)
	}
	if h.Revision == 0 {
		return h, errors.New("health revision is 0")
	}
	return h, nil
}

// heartbeatRecord is the last heartbeat of an instance's ttl checks.
type heartbeatRecord struct {
	At time.Time `json:"at"`
	By string    `json:"by"`
}

// splitKey splits service/id.
func splitKey(s string) (registry.Key, bool) {
	svc, id, ok := strings.Cut(s, "/")
	if !ok || !registry.ValidName(svc) || !registry.ValidName(id) {
		return registry.Key{}, false
	}
	return registry.Key{Service: svc, ID: id}, true
}

func (s *Store) instanceKey(k registry.Key) string {
	return s.prefix + dirInstances + k.Service + "/" + k.ID
}
func (s *Store) healthKey(k registry.Key) string {
	return s.prefix + dirHealth + k.Service + "/" + k.ID
}
func (s *Store) heartbeatKey(k registry.Key) string {
	return s.prefix + dirHeartbeats + k.Service + "/" + k.ID
}
func (s *Store) serviceKey(name string) string { return s.prefix + dirServices + name }
