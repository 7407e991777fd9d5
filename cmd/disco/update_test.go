package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestServeUpdateFlags: --update-allow and --reverse-zone are checked
// before anything starts, each error naming its flag.
func TestServeUpdateFlags(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys.conf")
	if err := os.WriteFile(keys, []byte(`key "upd" { algorithm hmac-sha256; secret "c2VjcmV0LW9mLXRoZS11cGRhdGUta2V5LTAxMjM0NTY3ODk="; };`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []serveRefusal{
		{"reverse zone off an octet boundary", []string{"--reverse-zone", "10.0.0.0/12"}, nil,
			[]string{"--reverse-zone 10.0.0.0/12: 10.0.0.0/12 is not on an octet boundary"}},
		{"reverse zone off a nibble boundary", []string{"--reverse-zone", "2001:db8::/33"}, nil,
			[]string{"--reverse-zone 2001:db8::/33: 2001:db8::/33 is not on a nibble boundary"}},
		{"reverse zone with host bits, from the environment", nil, map[string]string{"DISCO_REVERSE_ZONE": "10.0.0.0/8,10.1.2.3/16"},
			[]string{"--reverse-zone 10.1.2.3/16: 10.1.2.3/16 has bits set past its length: the prefix is 10.1.0.0/16"}},
		{"not a prefix", []string{"--reverse-zone", "10.0.0.1"}, nil,
			[]string{`--reverse-zone "10.0.0.1": want a CIDR prefix such as 10.0.0.0/8`}},
		{"update-allow without key:", []string{"--tsig-keys", keys, "--update-allow", "upd"}, nil,
			[]string{`--update-allow "upd": want key:NAME`}},
		{"update-allow of an unknown key", []string{"--tsig-keys", keys, "--update-allow", "key:dhcp"}, nil,
			[]string{`--update-allow key:dhcp: no key "dhcp" in --tsig-keys ` + keys}},
		{"update-allow without keys", nil, map[string]string{"DISCO_UPDATE_ALLOW": "key:upd"},
			[]string{`--update-allow key:upd: no key "upd" in --tsig-keys (not given)`}},
	}
	checkServeRefuses(t, tests)
}
