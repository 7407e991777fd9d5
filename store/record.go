package store

import (
	"encoding/json"
	"fmt"

	"disco/registry"
)

// instanceKey is the key of an instance's record: "service/id". Neither part
// may hold a '/', so the key names one instance.
func instanceKey(service, id string) []byte {
	k := make([]byte, 0, len(service)+1+len(id))
	k = append(k, service...)
	k = append(k, '/')
	return append(k, id...)
}

// encodeInstance returns the record of in. It refuses an instance that
// decodeInstance would refuse, so the store never writes what it cannot read
// back.
func encodeInstance(in *registry.Instance) ([]byte, error) {
	if err := checkInstance(in); err != nil {
		return nil, err
	}
	v, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return v, nil
}

// decodeInstance decodes and checks the record stored under key in the
// instances bucket.
func decodeInstance(key, val []byte) (*registry.Instance, error) {
	in := new(registry.Instance)
	if err := json.Unmarshal(val, in); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if err := checkInstance(in); err != nil {
		return nil, err
	}
	if want := instanceKey(in.Service, in.ID); string(key) != string(want) {
		return nil, fmt.Errorf("record holds instance %q, not the one its key names", want)
	}
	return in, nil
}

// checkInstance reports whether in is an instance the store may hold: one
// the registry could hold (registry.Instance.Validate), with a revision.
func checkInstance(in *registry.Instance) error {
	if err := in.Validate(); err != nil {
		return err
	}
	if in.Revision == 0 {
		return registry.Invalid("revision is 0")
	}
	return nil
}

// encodeSettings returns the record of a service's settings.
func encodeSettings(service string, s registry.Settings) ([]byte, error) {
	if err := checkSettings(service, s); err != nil {
		return nil, err
	}
	v, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return v, nil
}

// decodeSettings decodes and checks the record stored under key in the
// services bucket.
func decodeSettings(key, val []byte) (registry.Settings, error) {
	var s registry.Settings
	if err := json.Unmarshal(val, &s); err != nil {
		return registry.Settings{}, fmt.Errorf("decode: %w", err)
	}
	if err := checkSettings(string(key), s); err != nil {
		return registry.Settings{}, err
	}
	return s, nil
}

func checkSettings(service string, s registry.Settings) error {
	if err := registry.ValidateName("service name", service); err != nil {
		return err
	}
	return s.Validate()
}
