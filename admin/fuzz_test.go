package admin_test

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"disco/admin"
	"disco/registry"
)

// FuzzDecodeRegistration feeds raw bodies to the register route. The
// server must never panic, must answer 2xx only to a body that strictly
// decodes to a valid registration, and must leave the registry untouched
// otherwise.
func FuzzDecodeRegistration(f *testing.F) {
	for _, seed := range []string{
		`{"address":"10.0.0.1","port":80}`,
		`{"address":"fd00::1","port":443,"tags":["v2"],"meta":{"k":"v"},"weight":0,"priority":10}`,
		`{"address":"10.0.0.1","port":80,"checks":[{"type":"http","url":"http://10.0.0.1/health","interval":"5s","timeout":"1s"}]}`,
		`{"address":"10.0.0.1","port":80,"checks":[{"type":"tcp","address":"10.0.0.1:80","rise":2,"fall":5,"deregister_after":"1m"}]}`,
		`{"address":"10.0.0.1","port":80,"checks":[{"type":"ttl","ttl":"30s"}]}`,
		`{"address":"10.0.0.1","port":70000}`,
		`{"address":"10.0.0.1","port":80} {}`,
		`{"address":"10.0.0.1","port":"80"}`,
		`{"adress":"10.0.0.1"}`,
		`{"address":`,
		`[]`,
		`null`,
		``,
		"{\"address\":\"10.0.0.1\",\"port\":80,\"meta\":{\"\xff\":\"\x00\"}}",
		`{"address":"10.0.0.1","port":1e400}`,
		`{"checks":[{"type":"ttl","ttl":"-5s"}],"address":"::ffff:1.2.3.4","port":1}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		reg := registry.New(registry.Config{})
		h := admin.New(admin.Config{Registry: reg, MaxBodyBytes: 4096}).Handler()
		before := reg.Snapshot()
		r := httptest.NewRequest("PUT", "/v1/services/web/instances/web-1", bytes.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		valid := false
		var rg registry.Registration
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if len(body) <= 4096 && dec.Decode(&rg) == nil && !dec.More() && strings.HasPrefix(strings.TrimLeft(string(body), " \t\r\n"), "{") {
			if _, err := registry.NewInstance("web", "web-1", rg); err == nil {
				valid = true
			}
		}
		switch {
		case w.Code == 200:
			if !valid {
				t.Fatalf("200 for a body that is not a valid registration: %q", body)
			}
			var v admin.InstanceView
			if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil || v.Service != "web" || v.ID != "web-1" {
				t.Fatalf("200 with answer %s (%v)", w.Body, err)
			}
			if _, ok := reg.Snapshot().Instance("web", "web-1"); !ok {
				t.Fatalf("200 but the instance is not registered")
			}
		case w.Code >= 400 && w.Code < 500:
			var eb admin.ErrorBody
			if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.Error == "" {
				t.Fatalf("%d with answer %q (%v)", w.Code, w.Body, err)
			}
			if reg.Snapshot() != before {
				t.Fatalf("rejected body %q changed the registry", body)
			}
			if valid && w.Code == 400 {
				// The strict decoder above ignores trailing data that is
				// only whitespace; everything else it accepts must pass.
				if strings.TrimSpace(string(body[dec.InputOffset():])) == "" {
					t.Fatalf("400 %q for a valid body %q", eb.Error, body)
				}
			}
		default:
			t.Fatalf("status %d for body %q: %s", w.Code, body, w.Body)
		}
	})
}
