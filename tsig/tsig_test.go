package tsig

import (
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestLoadFile(t *testing.T) {
	ring, err := LoadFile("testdata/good.keys")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(ring.Names(), " "), "notify.example. old. xfr."; got != want {
		t.Fatalf("names %q, want %q", got, want)
	}
	for name, alg := range map[string]string{"XFR": dns.HmacSHA256, "notify.example": dns.HmacSHA512, "old.": dns.HmacSHA1} {
		k, ok := ring.Key(name)
		if !ok || k.Algorithm != alg {
			t.Errorf("key %s: %v %+v, want algorithm %s", name, ok, k, alg)
		}
	}
	if _, ok := ring.Key("stranger"); ok {
		t.Error("found a key that is not in the file")
	}
}

// TestLoadFileTsigKeygen reads what tsig-keygen writes, for every
// algorithm disco accepts.
func TestLoadFileTsigKeygen(t *testing.T) {
	if _, err := exec.LookPath("tsig-keygen"); err != nil {
		t.Skip("tsig-keygen not installed (Debian package bind9)")
	}
	var all []byte
	for _, alg := range Algorithms {
		out, err := exec.Command("tsig-keygen", "-a", alg, "k-"+alg).Output()
		if err != nil {
			t.Fatalf("tsig-keygen -a %s: %v", alg, err)
		}
		all = append(all, out...)
	}
	path := filepath.Join(t.TempDir(), "keys.conf")
	if err := os.WriteFile(path, all, 0o600); err != nil {
		t.Fatal(err)
	}
	ring, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if ring.Len() != len(Algorithms) {
		t.Fatalf("%d keys, want %d", ring.Len(), len(Algorithms))
	}
}

// TestLoadFileBad reads every testdata/*.bad.keys and wants the error of
// the .bad.err next to it: "line: text", the text a prefix of the message.
func TestLoadFileBad(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.bad.keys")
	if len(files) == 0 {
		t.Fatal("no bad fixtures")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(f, ".keys") + ".err")
			if err != nil {
				t.Fatal(err)
			}
			_, err = LoadFile(f)
			if err == nil {
				t.Fatal("loaded")
			}
			w := strings.TrimSpace(string(want))
			if got := err.Error(); !strings.HasPrefix(got, f+":"+w) {
				t.Errorf("error %q, want %q", got, f+":"+w)
			}
		})
	}
	if _, err := LoadFile("testdata/missing.keys"); err == nil || !strings.Contains(err.Error(), "missing.keys") {
		t.Errorf("missing file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/good.keys", "testdata/dup.bad.keys", "testdata/comment.bad.keys"} {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		ring, err := Parse(strings.NewReader(string(src)), "fuzz")
		if err == nil && ring.Len() == 0 {
			t.Fatal("no error and no key")
		}
	})
}

const secret = "KkOLrzVLMGhOYI6ie8rShwMQ9jYGRu98kRvQwFSeccE="

// signed returns a query signed by client with key name, algorithm and
// secret, at time ts.
func signed(t *testing.T, name, alg, sec string, ts time.Time) ([]byte, *dns.Msg) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("web.service.disco.internal.", dns.TypeA)
	m.SetTsig(name, alg, Fudge, ts.Unix())
	wire, _, err := dns.TsigGenerate(m, sec, "", false)
	if err != nil {
		t.Fatal(err)
	}
	parsed := new(dns.Msg)
	if err := parsed.Unpack(wire); err != nil {
		t.Fatal(err)
	}
	return wire, parsed
}

func TestVerify(t *testing.T) {
	k, err := NewKey("xfr", "hmac-sha256", secret)
	if err != nil {
		t.Fatal(err)
	}
	ring, _ := NewKeyring(k)
	now := time.Now()
	other := "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="
	for _, tc := range []struct {
		name          string
		key, alg, sec string
		at            time.Time
		wantErr       uint16
		wantValid     bool
	}{
		{"valid", "xfr.", dns.HmacSHA256, secret, now, 0, true},
		{"key name in upper case", "XFR.", dns.HmacSHA256, secret, now, 0, true},
		{"unknown key", "stranger.", dns.HmacSHA256, secret, now, dns.RcodeBadKey, false},
		{"other algorithm", "xfr.", dns.HmacSHA512, secret, now, dns.RcodeBadKey, false},
		{"wrong secret", "xfr.", dns.HmacSHA256, other, now, dns.RcodeBadSig, false},
		{"an hour old", "xfr.", dns.HmacSHA256, secret, now.Add(-time.Hour), dns.RcodeBadTime, false},
		{"an hour ahead", "xfr.", dns.HmacSHA256, secret, now.Add(time.Hour), dns.RcodeBadTime, false},
		{"old and wrong", "xfr.", dns.HmacSHA256, other, now.Add(-time.Hour), dns.RcodeBadSig, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wire, m := signed(t, tc.key, tc.alg, tc.sec, tc.at)
			orig := string(wire)
			c := ring.Verify(wire, m)
			if string(wire) != orig {
				t.Error("Verify modified the message")
			}
			if !c.Signed || c.Error != tc.wantErr || (c.Key != nil) != tc.wantValid || c.FormErr {
				t.Fatalf("got %+v, want error %d valid %v", c, tc.wantErr, tc.wantValid)
			}
			// The reply: signed unless BADKEY or BADSIG; a client holding
			// the key verifies a signed one against its request's MAC.
			reply := new(dns.Msg)
			reply.SetReply(m)
			if c.Failed() {
				reply.Rcode = dns.RcodeNotAuth
			}
			out, err := c.Signer().Sign(reply, now)
			if err != nil {
				t.Fatal(err)
			}
			got := new(dns.Msg)
			if err := got.Unpack(out); err != nil {
				t.Fatal(err)
			}
			rt := got.IsTsig()
			if rt == nil || rt.Error != tc.wantErr {
				t.Fatalf("reply TSIG %v, want error %d", rt, tc.wantErr)
			}
			macWanted := tc.wantErr != dns.RcodeBadKey && tc.wantErr != dns.RcodeBadSig
			if (rt.MAC != "") != macWanted {
				t.Fatalf("reply MAC %q, want one: %v", rt.MAC, macWanted)
			}
			if !macWanted {
				// Our time, as Knot sends it: BIND's clients check the
				// time before the error.
				if rt.TimeSigned != uint64(now.Unix()) || rt.MACSize != 0 {
					t.Errorf("%s reply: time signed %d, MAC size %d; want %d and 0", dns.RcodeToString[int(tc.wantErr)], rt.TimeSigned, rt.MACSize, now.Unix())
				}
				return
			}
			if tc.wantErr == dns.RcodeBadTime {
				if rt.TimeSigned != uint64(tc.at.Unix()) || rt.OtherLen != 6 {
					t.Errorf("BADTIME reply times %d, other %q; want the client's time and ours", rt.TimeSigned, rt.OtherData)
				}
				return // the client's clock is off: it cannot check the time
			}
			if err := dns.TsigVerify(slices.Clone(out), tc.sec, m.IsTsig().MAC, false); err != nil {
				t.Errorf("client cannot verify the reply: %v", err)
			}
		})
	}
}

func TestVerifyMisplacedTSIG(t *testing.T) {
	k, _ := NewKey("xfr", "hmac-sha256", secret)
	ring, _ := NewKeyring(k)
	wire, m := signed(t, "xfr.", dns.HmacSHA256, secret, time.Now())
	// The same TSIG also in the answer section.
	m.Answer = append(m.Answer, m.IsTsig())
	if c := ring.Verify(wire, m); !c.FormErr || c.Signer() != nil {
		t.Errorf("TSIG in the answer section: %+v", c)
	}
	// Not last in the additional section.
	m.Answer = nil
	m.Extra = append(m.Extra, &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}})
	if c := ring.Verify(wire, m); !c.FormErr {
		t.Errorf("TSIG before OPT: %+v", c)
	}
	// Unsigned.
	q := new(dns.Msg)
	q.SetQuestion("a.", dns.TypeA)
	raw, _ := q.Pack()
	if c := ring.Verify(raw, q); c.Signed || c.Failed() || c.Signer() != nil {
		t.Errorf("unsigned: %+v", c)
	}
	// A nil keyring knows no key.
	var none *Keyring
	if c := none.Verify(wire, mustUnpack(t, wire)); c.Error != dns.RcodeBadKey {
		t.Errorf("nil keyring: %+v", c)
	}
}

func TestVerifyTruncatedMAC(t *testing.T) {
	k, _ := NewKey("xfr", "hmac-sha256", secret)
	ring, _ := NewKeyring(k)
	m := new(dns.Msg)
	m.SetQuestion("a.", dns.TypeA)
	m.Id = 7
	for _, tc := range []struct {
		size    int
		corrupt bool
		want    uint16
		formerr bool
	}{
		{16, false, dns.RcodeBadTrunc, false},
		{16, true, dns.RcodeBadSig, false},
		{8, false, 0, true}, // below half the hash: FORMERR
	} {
		raw := truncatedSigned(t, m, tc.size, tc.corrupt)
		c := ring.Verify(raw, mustUnpack(t, raw))
		if c.Error != tc.want || c.FormErr != tc.formerr {
			t.Errorf("MAC of %d bytes (corrupt %v): %+v, want error %d formerr %v", tc.size, tc.corrupt, c, tc.want, tc.formerr)
		}
	}
}

// truncatedSigned signs m with the test key and cuts its MAC to size bytes.
func truncatedSigned(t *testing.T, m *dns.Msg, size int, corrupt bool) []byte {
	t.Helper()
	c := m.Copy()
	c.SetTsig("xfr.", dns.HmacSHA256, Fudge, time.Now().Unix())
	wire, mac, err := dns.TsigGenerate(c, secret, "", false)
	if err != nil {
		t.Fatal(err)
	}
	signed := mustUnpack(t, wire)
	ts := signed.IsTsig()
	raw, _ := hex.DecodeString(mac)
	raw = raw[:size]
	if corrupt {
		raw[0] ^= 0xff
	}
	ts.MAC, ts.MACSize = hex.EncodeToString(raw), uint16(size)
	out, err := signed.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustUnpack(t *testing.T, wire []byte) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(wire); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSignerChain signs three messages of one transfer and checks them as
// miekg/dns's transfer client does: the first against the request's MAC,
// the next ones against the prior MAC with timers only.
func TestSignerChain(t *testing.T) {
	k, _ := NewKey("xfr", "hmac-sha256", secret)
	ring, _ := NewKeyring(k)
	wire, req := signed(t, "xfr.", dns.HmacSHA256, secret, time.Now())
	c := ring.Verify(wire, req)
	if c.Failed() {
		t.Fatal(c)
	}
	s := c.Signer()
	prev := req.IsTsig().MAC
	for i := range 3 {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: "a.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: []byte{10, 0, 0, byte(i)}})
		out, err := s.Sign(m, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := dns.TsigVerify(slices.Clone(out), secret, prev, i > 0); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		prev = mustUnpack(t, out).IsTsig().MAC
	}
}

func TestSignerLen(t *testing.T) {
	k, _ := NewKey("a-long-key-name.example", "hmac-sha512", secret)
	s := NewSigner(k)
	m := new(dns.Msg)
	m.SetQuestion("a.", dns.TypeA)
	before := m.Len()
	out, err := s.Sign(m, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if grew := len(out) - before; grew > s.Len() {
		t.Errorf("TSIG added %d bytes, Len says %d", grew, s.Len())
	}
	if len(m.Extra) != 0 {
		t.Error("Sign left its TSIG in the message")
	}
}
