package registry

import (
	"strings"
)

// MaxLabel is the longest DNS label, and so the longest name or tag.
const MaxLabel = 63

// Fold returns s in lower case, the canonical form of service names,
// instance ids and tags.
func Fold(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// ValidName reports whether s is one DNS label of the form
// [a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxLabel || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ValidateName returns an *Error of kind ErrInvalid that says what is wrong
// with s as the named kind of name ("service name", "instance id", "tag").
func ValidateName(what, s string) error {
	switch {
	case s == "":
		return Invalid("%s is empty", what)
	case len(s) > MaxLabel:
		return Invalid("%s %q is %d characters, at most %d allowed", what, s, len(s), MaxLabel)
	case !ValidName(s):
		return Invalid("%s %q must be lower-case letters, digits and inner hyphens (one DNS label)", what, s)
	}
	return nil
}

func validateMetaKey(k string) error {
	if k == "" || len(k) > MaxMetaKey {
		return Invalid("meta key %q must be 1-%d characters", k, MaxMetaKey)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return Invalid("meta key %q may hold only letters, digits, '-', '_' and '.'", k)
		}
	}
	return nil
}
