package store_test

import (
	"errors"
	"testing"

	"disco/registry"
	"disco/store"
)

// TestCodec: the exported codec round-trips a valid instance and settings,
// and refuses records that do not match their names or the registry's rules.
func TestCodec(t *testing.T) {
	in, err := registry.NewInstance("web", "a1", registry.Registration{Address: "10.0.0.1", Port: 80, Tags: []string{"v2"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.EncodeInstance(in); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("encoding an instance without revision: %v, want ErrInvalid", err)
	}
	in.Revision = 3
	val, err := store.EncodeInstance(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.DecodeInstance("web", "a1", val)
	if err != nil {
		t.Fatal(err)
	}
	if got.Address != in.Address || got.Port != in.Port || got.Revision != 3 || len(got.Tags) != 1 {
		t.Errorf("decoded %+v, want %+v", got, in)
	}
	for _, tt := range []struct{ service, id, val string }{
		{"web", "a2", string(val)},       // another instance's name
		{"web/x", "a1", string(val)},     // not a name
		{"web", "a1", `{"port":80}`},     // invalid record
		{"web", "a1", `not json at all`}, // not JSON
	} {
		if _, err := store.DecodeInstance(tt.service, tt.id, []byte(tt.val)); err == nil {
			t.Errorf("DecodeInstance(%q, %q, %s) accepted it", tt.service, tt.id, tt.val)
		}
	}

	ttl := 30
	sv, err := store.EncodeSettings("web", registry.Settings{DNSTTL: &ttl})
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.DecodeSettings("web", sv)
	if err != nil || s.DNSTTL == nil || *s.DNSTTL != 30 {
		t.Errorf("settings round trip: %+v, %v", s, err)
	}
	if _, err := store.DecodeSettings("Web!", sv); err == nil {
		t.Error("DecodeSettings accepted a bad service name")
	}
	bad := -1
	if _, err := store.EncodeSettings("web", registry.Settings{DNSTTL: &bad}); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("EncodeSettings of a bad ttl: %v", err)
	}
}
