package store

import (
	"errors"

	"disco/registry"
)

// The stored forms of the registry's records, shared with the other stores
// (such as the etcd one) so that every store writes and checks records the
// same way.

// EncodeInstance returns the stored form of in: its JSON, health left out.
// It refuses, wrapping registry.ErrInvalid, an instance that DecodeInstance
// would refuse, so a store never writes what it cannot read back.
func EncodeInstance(in *registry.Instance) ([]byte, error) { return encodeInstance(in) }

// DecodeInstance decodes the stored form of instance id of service and
// checks it against the registry's rules and against the names it is stored
// under.
func DecodeInstance(service, id string, val []byte) (*registry.Instance, error) {
	if !registry.ValidName(service) || !registry.ValidName(id) {
		return nil, errors.New("stored under a name that is not service/id")
	}
	return decodeInstance(instanceKey(service, id), val)
}

// EncodeSettings returns the stored form (JSON) of a service's settings,
// refusing settings the registry would refuse.
func EncodeSettings(service string, s registry.Settings) ([]byte, error) {
	return encodeSettings(service, s)
}

// DecodeSettings decodes and checks the stored settings of service.
func DecodeSettings(service string, val []byte) (registry.Settings, error) {
	return decodeSettings([]byte(service), val)
}
