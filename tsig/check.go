package tsig

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Fudge is the time error, in seconds, disco allows in the TSIG records it
// signs (the RFC 8945 recommendation).
const Fudge = 300

// Check is what RFC 8945 section 5.2 concludes about a request's TSIG.
type Check struct {
	// Signed is true when the request carries a TSIG.
	Signed bool
	// Key is the key that validly signed the request; nil when the request
	// is unsigned or its TSIG failed.
	Key *Key
	// Error is the TSIG error of the reply (dns.RcodeBadKey, BadSig,
	// BadTime or BadTrunc); 0 when the request is unsigned or valid.
	Error uint16
	// FormErr is true when the TSIG is misplaced or malformed: the reply is
	// an unsigned FORMERR.
	FormErr bool

	req *dns.TSIG
	// mac is the key whose MAC matched (also with BADTIME and BADTRUNC,
	// whose replies are signed).
	mac *Key
}

// Failed reports whether the request must get an error reply instead of an
// answer: RCODE NOTAUTH with the TSIG error, or FORMERR.
func (c Check) Failed() bool { return c.Error != 0 || c.FormErr }

// KeyName returns the canonical name of the key that signed the request,
// or "".
func (c Check) KeyName() string {
	if c.Key == nil {
		return ""
	}
	return c.Key.Name
}

// Verify checks the TSIG of a request as RFC 8945 section 5.2 says: raw is
// the message as received, m the same message parsed. A TSIG anywhere but
// last in the additional section is FORMERR; a key the keyring does not
// hold, or held with another algorithm, is BADKEY; a wrong MAC is BADSIG; a
// time signed outside the fudge is BADTIME (checked after the MAC). raw is
// not modified.
func (r *Keyring) Verify(raw []byte, m *dns.Msg) Check {
	t := m.IsTsig()
	n := 0
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if rr.Header().Rrtype == dns.TypeTSIG {
				n++
			}
		}
	}
	switch {
	case n == 0:
		return Check{}
	case n > 1 || t == nil:
		return Check{Signed: true, FormErr: true}
	}
	c := Check{Signed: true, req: t}
	k, ok := r.Key(t.Hdr.Name)
	if !ok || dns.CanonicalName(t.Algorithm) != k.Algorithm {
		c.Error = dns.RcodeBadKey
		return c
	}
	err := dns.TsigVerifyWithProvider(slices.Clone(raw), k, "", false)
	switch {
	case err == nil:
		c.Key, c.mac = k, k
	case errors.Is(err, dns.ErrSig):
		c.Error = dns.RcodeBadSig
	case errors.Is(err, dns.ErrTime):
		c.mac, c.Error = k, dns.RcodeBadTime
	case errors.Is(err, ErrTruncated):
		c.mac, c.Error = k, dns.RcodeBadTrunc
	default:
		c.FormErr = true
	}
	return c
}

// Signer signs the messages of the reply to one request: an answer, each
// message of a zone transfer in turn (RFC 8945 section 5.3.1: the first
// covers the request's MAC and all TSIG variables, the next ones the prior
// MAC and the timers only), or the TSIG error reply of section 5.3.2
// (BADKEY and BADSIG unsigned, BADTIME and BADTRUNC signed).
type Signer struct {
	key      *Key // nil: the TSIG carries no MAC
	name     string
	alg      string
	errCode  uint16
	reqTime  uint64
	prevMAC  string
	messages int
}

// Signer returns the signer of the reply to the checked request, or nil
// when the reply goes unsigned (the request was, or its TSIG was
// malformed).
func (c Check) Signer() *Signer {
	if !c.Signed || c.FormErr {
		return nil
	}
	s := &Signer{key: c.mac, name: c.req.Hdr.Name, alg: c.req.Algorithm, errCode: c.Error,
		reqTime: c.req.TimeSigned, prevMAC: c.req.MAC}
	if c.mac != nil {
		s.name, s.alg = c.mac.Name, c.mac.Algorithm
	}
	return s
}

// NewSigner returns a signer of requests made with k, such as a NOTIFY.
func NewSigner(k *Key) *Signer {
	return &Signer{key: k, name: k.Name, alg: k.Algorithm}
}

// Sign packs m with a TSIG record appended (m must not have one) and
// returns the message as it goes on the wire. m.Extra is left as it was.
func (s *Signer) Sign(m *dns.Msg, now time.Time) ([]byte, error) {
	t := &dns.TSIG{Hdr: dns.RR_Header{Name: s.name, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
		Algorithm: s.alg, Fudge: Fudge, TimeSigned: uint64(now.Unix()), OrigId: m.Id, Error: s.errCode}
	if s.errCode == dns.RcodeBadTime {
		// RFC 8945 section 5.2.3: the client's time in Time Signed, ours
		// in Other Data.
		t.TimeSigned = s.reqTime
		t.OtherLen = 6
		t.OtherData = fmt.Sprintf("%012x", uint64(now.Unix())&(1<<48-1))
	}
	extra := m.Extra
	m.Extra = append(m.Extra[:len(m.Extra):len(m.Extra)], t)
	defer func() { m.Extra = extra }()
	if s.key == nil {
		// BADKEY, BADSIG (RFC 8945 section 5.3.2): an unsigned TSIG, no
		// MAC. miekg/dns would zero Time Signed too; our time goes there,
		// as Knot sends it, so that a client that checks the time before
		// the error (BIND's dig and named) reports the error, not a clock
		// skew.
		wire, err := m.Pack()
		if err != nil {
			return nil, fmt.Errorf("pack error reply: %w", err)
		}
		s.messages++
		return wire, nil
	}
	wire, mac, err := dns.TsigGenerateWithProvider(m, s.key, s.prevMAC, s.messages > 0)
	if err != nil {
		return nil, fmt.Errorf("sign message: %w", err)
	}
	s.prevMAC = mac
	s.messages++
	return wire, nil
}

// ErrUnsigned means a response to a signed request carries no TSIG.
var ErrUnsigned = errors.New("tsig: the answer is not signed")

// VerifyResponse checks the TSIG of raw (parsed: m), the response to the
// message s signed last.
func (s *Signer) VerifyResponse(raw []byte, m *dns.Msg) error {
	t := m.IsTsig()
	switch {
	case t == nil:
		return ErrUnsigned
	case t.Error != 0:
		return fmt.Errorf("tsig: the peer answered %s", dns.RcodeToString[int(t.Error)])
	case s.key == nil || !strings.EqualFold(dns.CanonicalName(t.Hdr.Name), s.key.Name):
		return fmt.Errorf("tsig: the answer is signed with another key (%s)", t.Hdr.Name)
	}
	return dns.TsigVerifyWithProvider(slices.Clone(raw), s.key, s.prevMAC, false)
}

// Len returns how many bytes the TSIG record adds to a message.
func (s *Signer) Len() int {
	size := 0
	if s.key != nil {
		size = s.key.macSize()
	}
	t := &dns.TSIG{Hdr: dns.RR_Header{Name: s.name, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
		Algorithm: s.alg, MACSize: uint16(size), MAC: hex.EncodeToString(make([]byte, size)), OtherLen: 6, OtherData: "000000000000"}
	return dns.Len(t)
}
