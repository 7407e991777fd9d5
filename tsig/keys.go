// Package tsig holds the shared secrets of transaction signatures (TSIG,
// RFC 8945): keys read from the BIND "key" statements that tsig-keygen
// writes, the HMAC that signs and verifies with them, and the checks and
// replies RFC 8945 prescribes for a signed request. The framing of signed
// messages (what the MAC covers, how a multi-message response chains) is
// miekg/dns's TsigGenerateWithProvider and TsigVerifyWithProvider; this
// package plugs its keys into them as a dns.TsigProvider.
package tsig

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Algorithms lists the HMAC algorithms a key may use, by the name
// tsig-keygen and BIND give them. hmac-sha1 is only for old peers.
var Algorithms = []string{"hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha1"}

// Key is one shared secret.
type Key struct {
	// Name is the key's canonical name (lower case, fully qualified), the
	// owner name of the TSIG records made with it.
	Name string
	// Algorithm is the algorithm's canonical name as it appears in TSIG
	// records, e.g. dns.HmacSHA256 ("hmac-sha256.").
	Algorithm string
	secret    []byte
	hash      func() hash.Hash
}

// NewKey returns a key from its name, algorithm (as in Algorithms, with or
// without the trailing dot) and base64 secret.
func NewKey(name, algorithm, secret string) (*Key, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	alg, h, err := algorithmOf(algorithm)
	if err != nil {
		return nil, err
	}
	raw, err := decodeSecret(secret)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", name, err)
	}
	return &Key{Name: dns.CanonicalName(name), Algorithm: alg, secret: raw, hash: h}, nil
}

func checkName(name string) error {
	bad := strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '\\' })
	if _, ok := dns.IsDomainName(name); !ok || bad || name == "" || name == "." {
		return fmt.Errorf("key name %q is not a domain name", name)
	}
	return nil
}

// algorithmOf returns the canonical name and hash of an algorithm.
func algorithmOf(algorithm string) (string, func() hash.Hash, error) {
	alg := dns.CanonicalName(algorithm)
	switch alg {
	case dns.HmacSHA256:
		return alg, sha256.New, nil
	case dns.HmacSHA384:
		return alg, sha512.New384, nil
	case dns.HmacSHA512:
		return alg, sha512.New, nil
	case dns.HmacSHA1:
		return alg, sha1.New, nil
	}
	return "", nil, fmt.Errorf("algorithm %q is not supported (use one of %s)", algorithm, strings.Join(Algorithms, ", "))
}

func decodeSecret(secret string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(secret)
	if err != nil {
		return nil, errors.New("secret is not valid base64")
	}
	if len(raw) == 0 {
		return nil, errors.New("secret is empty")
	}
	return raw, nil
}

// macSize is the length of a full MAC of the key's algorithm.
func (k *Key) macSize() int { return k.hash().Size() }

// Errors of Verify beyond miekg/dns's ErrSig and ErrTime.
var (
	// ErrAlgorithm means a TSIG names another algorithm than the key's.
	ErrAlgorithm = errors.New("tsig: algorithm does not match the key")
	// ErrTruncated means a TSIG carries a correct MAC shorter than the
	// algorithm's but long enough to be allowed by RFC 8945 section
	// 5.2.2.1; disco accepts only full MACs (BADTRUNC).
	ErrTruncated = errors.New("tsig: truncated MAC")
	// ErrShortMAC means a TSIG carries a MAC too short for any policy, or
	// longer than the algorithm's (FORMERR).
	ErrShortMAC = errors.New("tsig: MAC too short")
)

// Generate implements dns.TsigProvider: the HMAC of msg with the key.
func (k *Key) Generate(msg []byte, t *dns.TSIG) ([]byte, error) {
	if dns.CanonicalName(t.Algorithm) != k.Algorithm {
		return nil, ErrAlgorithm
	}
	h := hmac.New(k.hash, k.secret)
	h.Write(msg)
	return h.Sum(nil), nil
}

// Verify implements dns.TsigProvider: it checks the MAC of t over msg.
func (k *Key) Verify(msg []byte, t *dns.TSIG) error {
	if dns.CanonicalName(t.Algorithm) != k.Algorithm {
		return ErrAlgorithm
	}
	full := k.macSize()
	got, err := hex.DecodeString(t.MAC)
	if err != nil {
		return ErrShortMAC
	}
	if len(got) < max(10, full/2) || len(got) > full {
		return ErrShortMAC
	}
	want, err := k.Generate(msg, t)
	if err != nil {
		return err
	}
	if !hmac.Equal(want[:len(got)], got) {
		return dns.ErrSig
	}
	if len(got) < full {
		return ErrTruncated
	}
	return nil
}

// Keyring is a set of keys by name. A nil Keyring holds no key.
type Keyring struct {
	keys map[string]*Key
}

// NewKeyring returns a keyring of keys; two keys with one name are an
// error.
func NewKeyring(keys ...*Key) (*Keyring, error) {
	r := &Keyring{keys: make(map[string]*Key, len(keys))}
	for _, k := range keys {
		if _, dup := r.keys[k.Name]; dup {
			return nil, fmt.Errorf("key %q is defined twice", strings.TrimSuffix(k.Name, "."))
		}
		r.keys[k.Name] = k
	}
	return r, nil
}

// Key returns the key with the name (case and trailing dot do not matter).
func (r *Keyring) Key(name string) (*Key, bool) {
	if r == nil {
		return nil, false
	}
	k, ok := r.keys[dns.CanonicalName(name)]
	return k, ok
}

// Names returns the canonical names of the keys, sorted.
func (r *Keyring) Names() []string {
	if r == nil {
		return nil
	}
	names := make([]string, 0, len(r.keys))
	for n := range r.keys {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Len returns the number of keys.
func (r *Keyring) Len() int {
	if r == nil {
		return 0
	}
	return len(r.keys)
}
