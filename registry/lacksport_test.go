package registry

import "testing"

// TestLacksPort checks lacksPort on the forms net.SplitHostPort refuses
// for a missing port and on those it refuses for other reasons.
func TestLacksPort(t *testing.T) {
	tests := []struct {
		hostport string
		want     bool
	}{
		{"10.0.0.5", true},
		{"api.example.com", true},
		{"[::1]", true},
		{"[::1]x", true},
		{"[fe80::1]]", true},
		{"", true},
		{"10.0.0.5:50051", false},
		{"[::1]:50051", false},
		{"::1", false},          // too many colons
		{"[::1]:1:2", false},    // too many colons
		{"[::1:50051", false},   // missing ']'
		{"10.0.0.5:", false},    // empty port
		{"a]b:1", false},        // unexpected ']'
		{"[::1]::50051", false}, // too many colons
	}
	for _, tt := range tests {
		if got := lacksPort(tt.hostport); got != tt.want {
			t.Errorf("lacksPort(%q) = %v, want %v", tt.hostport, got, tt.want)
		}
	}
}
