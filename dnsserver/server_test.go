package dnsserver

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// BenchmarkServerTCP asks the real server over one TCP connection, one
// query at a time, for a cached answer and for a name that does not
// exist. The client reuses its buffers, so the allocations counted are the
// server's.
func BenchmarkServerTCP(b *testing.B) {
	h := NewHandler(testConfig(), testRegistry(b, fixture, nil), nil, nil)
	addr := startServer(b, ServerConfig{UDPSockets: 1}, h)
	for _, tc := range []struct {
		name  string
		qname string
	}{
		{"A", goodName},
		{"NXDOMAIN", "nope.service.disco.internal."},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := new(dns.Msg)
			req.SetQuestion(tc.qname, dns.TypeA)
			req.SetEdns0(1232, false)
			pkt, _ := req.Pack()
			msg := binary.BigEndian.AppendUint16(nil, uint16(len(pkt)))
			msg = append(msg, pkt...)
			buf := make([]byte, dns.MaxMsgSize)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf[:2]); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf[:binary.BigEndian.Uint16(buf)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// newScratch returns the Query a UDP reader of the server keeps per
// datagram.
func newScratch() *Query { return newQuery(TransportUDP, udpSlotBytes) }

// serveUDP answers the UDP query pkt from the client at from as the
// server's UDP loop does: AnswerWire, then Serve for a request it hands
// back (answered in place), each observed by the handler's hooks. It
// returns the answer, or nil.
func (h *Handler) serveUDP(pkt []byte, from netip.AddrPort, q *Query) []byte {
	start := time.Now()
	q.Wire, q.Remote = pkt, from
	r := h.AnswerWire(q)
	if r.Later != nil {
		w := &packetWriter{buf: q.Out[:0]}
		r = h.Serve(context.Background(), *r.Later, w)
		r.Wire = w.out
	}
	h.observe(QueryEvent{Transport: TransportUDP, Remote: from, Wire: pkt, Reply: r, Duration: time.Since(start)})
	return r.Wire
}
