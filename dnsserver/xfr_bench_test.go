package dnsserver

import (
	"context"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// countWriter is a MessageWriter that counts bytes and messages.
type countWriter struct{ bytes, msgs int }

func (c *countWriter) WriteMessage(wire []byte, _ time.Time) error {
	c.bytes += len(wire)
	c.msgs++
	return nil
}

// BenchmarkAXFR streams the discovery zone of n instances (in services of
// 50, each instance with a tag and one metadata entry), signed with TSIG,
// into a writer that only counts: the server's whole cost of one AXFR.
func BenchmarkAXFR(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			h := NewHandler(xfrConfig(b), bigRegistry(b, n), nil, nil)
			m := new(dns.Msg)
			m.SetAxfr("disco.internal.")
			m.SetTsig("xfr.", dns.HmacSHA256, 300, time.Now().Unix())
			wire, _, err := dns.TsigGenerate(m, testSecret, "", false)
			if err != nil {
				b.Fatal(err)
			}
			req := new(dns.Msg)
			if err := req.Unpack(wire); err != nil {
				b.Fatal(err)
			}
			r := Request{Wire: wire, Msg: req, TCP: true, Remote: netip.MustParseAddrPort("127.0.0.1:5353")}
			b.ReportAllocs()
			b.ResetTimer()
			var w countWriter
			for b.Loop() {
				w = countWriter{}
				h.Serve(context.Background(), r, &w)
			}
			b.ReportMetric(float64(w.msgs), "msgs/op")
			b.ReportMetric(float64(w.bytes)/1e6, "MB/op")
		})
	}
}
