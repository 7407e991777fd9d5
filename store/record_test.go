package store

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzDecodeInstance feeds arbitrary records to the decoder: it must never
// panic, and whatever it accepts must encode again and decode to the same
// instance.
func FuzzDecodeInstance(f *testing.F) {
	good := `{"service":"api","id":"a1","address":"10.0.0.1","port":80,"tags":["blue","v2"],` +
		`"meta":{"zone":"a"},"weight":1,"priority":1,"checks":[{"type":"http","url":"http://10.0.0.1/health",` +
		`"interval":"10s","timeout":"2s","rise":1,"fall":3}],"maintenance":{"reason":"x","since":"2025-03-01T12:00:00Z"},` +
		`"registered":"2025-03-01T12:00:00Z","revision":3}`
	f.Add([]byte("api/a1"), []byte(good))
	f.Add([]byte("api/a1"), []byte(`{"service":"api","id":"a1","address":"::ffff:10.0.0.1","port":80,"revision":1}`))
	f.Add([]byte("api/a1"), []byte(`{"service":"api","id":"a1","address":"fe80::1%eth0","port":80,"revision":1}`))
	f.Add([]byte("api/a1"), []byte(`{"service":"api","id":"a1","address":"10.0.0.1","port":80,"revision":1,"checks":[{"type":"ttl","ttl":"1ns"}]}`))
	f.Add([]byte("api/a1"), []byte(`{"service":"api","id":"a1","address":"10.0.0.1","port":80,"revision":1,"checks":[`+
		`{"type":"http","url":"https://10.0.0.1/h","method":"POST","headers":{"X-Probe":["yes"]},"body":"ping","tls_skip_verify":true,"tls_server_name":"probe.test","interval":"10s","timeout":"2s","rise":1,"fall":3},`+
		`{"type":"grpc","address":"10.0.0.1:50051","service":"api","tls":true,"interval":"10s","timeout":"2s","rise":1,"fall":3},`+
		`{"type":"exec","command":["/bin/check","-v"],"interval":"10s","timeout":"2s","rise":1,"fall":3}]}`))
	f.Add([]byte("api/a1"), []byte(`{"service":"api","id":"a1","address":"10.0.0.1","port":80,"revision":1,"checks":[`+
		`{"type":"http","url":"http://10.0.0.1/h","method":"post","headers":{"x-probe":["yes"]},"interval":"10s","timeout":"2s","rise":1,"fall":3}]}`))
	f.Add([]byte("api/a1"), []byte(`null`))
	f.Add([]byte("a/b/c"), []byte(`{"service":"a","id":"b/c"}`))
	f.Add([]byte(""), []byte(`{"port":-1,"weight":70000}`))
	f.Fuzz(func(t *testing.T, key, val []byte) {
		in, err := decodeInstance(key, val)
		if err != nil {
			return
		}
		enc, err := encodeInstance(in)
		if err != nil {
			t.Fatalf("accepted %s but cannot encode it: %v", val, err)
		}
		again, err := decodeInstance(key, enc)
		if err != nil {
			t.Fatalf("accepted %s but not its encoding %s: %v", val, enc, err)
		}
		enc2, _ := json.Marshal(again)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed the record:\n%s\n%s", enc, enc2)
		}
	})
}

// FuzzDecodeSettings does the same for service settings records.
func FuzzDecodeSettings(f *testing.F) {
	f.Add([]byte("web"), []byte(`{"dns_ttl":30,"min_healthy_percent":50}`))
	f.Add([]byte("web"), []byte(`{}`))
	f.Add([]byte("Web"), []byte(`{"dns_ttl":-1}`))
	f.Fuzz(func(t *testing.T, key, val []byte) {
		s, err := decodeSettings(key, val)
		if err != nil {
			return
		}
		enc, err := encodeSettings(string(key), s)
		if err != nil {
			t.Fatalf("accepted %s but cannot encode it: %v", val, err)
		}
		if _, err := decodeSettings(key, enc); err != nil {
			t.Fatalf("accepted %s but not its encoding %s: %v", val, enc, err)
		}
	})
}
