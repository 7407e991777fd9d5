package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const xfrSecret = "KkOLrzVLMGhOYI6ie8rShwMQ9jYGRu98kRvQwFSeccE="

const keysFile = `key "xfr" {
	algorithm hmac-sha256;
	secret "` + xfrSecret + `";
};
`

// TestServeTransferFlags: the TSIG, transfer and NOTIFY flags are checked
// before anything starts, each problem named.
func TestServeTransferFlags(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "keys.conf")
	if err := os.WriteFile(good, []byte(keysFile), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(bad, []byte("key \"x\" {\n\talgorithm hmac-md5;\n\tsecret \"c2VjcmV0\";\n};\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"bad key file", []string{"--tsig-keys", bad}, nil, []string{"--tsig-keys: " + bad + `:2: key "x": algorithm "hmac-md5" is not supported`}},
		{"missing key file", []string{"--tsig-keys", filepath.Join(dir, "none")}, nil, []string{"--tsig-keys: open " + filepath.Join(dir, "none") + ": no such file"}},
		{"rules", []string{"--tsig-keys", good, "--transfer-allow", "key:other", "--transfer-allow", "10.0.0.0/33", "--transfer-allow", "key:xfr"}, nil,
			[]string{`--transfer-allow key:other: no key "other" in --tsig-keys`, `transfer rule "10.0.0.0/33": want key:NAME, a CIDR prefix`}},
		{"key rule without keys", []string{"--transfer-allow", "key:xfr"}, nil, []string{`no key "xfr" in --tsig-keys (not given)`}},
		{"notify", []string{"--notify", "secondary", "--notify", "10.0.0.1:99999", "--notify-key", "xfr"}, nil,
			[]string{`--notify "secondary": want HOST:PORT`, `--notify "10.0.0.1:99999": bad port`, `--notify-key "xfr": no such key in --tsig-keys (not given)`}},
		{"from the environment", nil, map[string]string{"DISCO_TSIG_KEYS": good, "DISCO_TRANSFER_ALLOW": "key:xfr,nonsense", "DISCO_NOTIFY_KEY": "nokey"},
			[]string{`transfer rule "nonsense"`, `--notify-key "nokey": no such key in --tsig-keys ` + good}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := run(t, append([]string{"serve", "--dns-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, tt.args...)...)
			if err == nil {
				t.Fatal("serve started")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not say %q", err, w)
				}
			}
		})
	}
}
