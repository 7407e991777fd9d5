package dnsserver

import (
	"context"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FuzzHandler feeds raw packets to the UDP path the server runs
// ((*Handler).serveUDP, fast path and full path alike), to the TCP path
// (AnswerWire over TCP, then Serve for a request it hands back) and, when
// a packet is well formed and unpacks, to Respond for UDP and TCP. Nothing may
// panic; every answer must parse, be a response (QR=1) with the query's
// ID, and fit the client's UDP size. The reaction follows readMessage: no
// answer exactly when the packet is a response or its question cannot be
// read; FORMERR with the question (if any) when something after it is
// malformed.
// For a well-formed query both paths agree on the response code. Seeds
// live in testdata/fuzz/FuzzHandler (real queries: A, AAAA, SRV, TXT, ANY,
// EDNS, DO, cookies, zones, and malformed ones) and hostileCases.
func FuzzHandler(f *testing.F) {
	// With a key and transfer rules, signed requests and transfers take
	// their whole path; reverse zones and DNS-SD names are served.
	cfg := xfrConfig(f)
	cfg.ReverseZones = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	h := NewHandler(cfg, testRegistry(f, fixture, fixtureSettings), staticZones{parseZones(f, exampleZone, domainZone)}, nil)
	for _, tc := range hostileCases(f) {
		f.Add(tc.pkt)
	}
	for _, qt := range []uint16{dns.TypeA, dns.TypeIXFR, dns.TypeAXFR} { // signed with the test key
		m := new(dns.Msg)
		m.SetQuestion("disco.internal.", qt)
		if qt == dns.TypeIXFR {
			m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "disco.internal.", Rrtype: dns.TypeSOA, Class: dns.ClassINET}, Ns: "a.", Mbox: "b.", Serial: 1}}
		}
		m.SetTsig("xfr.", dns.HmacSHA256, 300, time.Now().Unix())
		wire, _, err := dns.TsigGenerate(m, testSecret, "", false)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wire)
	}
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"1.0.0.10.in-addr.arpa.", dns.TypePTR}, {"0.10.in-addr.arpa.", dns.TypePTR}, {"d.f.ip6.arpa.", dns.TypeSOA},
		{"_services._dns-sd._udp.service.disco.internal.", dns.TypePTR}, {"_web._tcp.service.disco.internal.", dns.TypePTR},
		{"web-3._web._tcp.service.disco.internal.", dns.TypeTXT}, {"b._dns-sd._udp.disco.internal.", dns.TypePTR},
	} {
		f.Add(pack(f, 1, q.name, q.qtype, nil))
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		// The scratch the server's batched loop gives each datagram.
		s := newScratch()
		out := h.serveUDP(pkt, netip.AddrPort{}, s)
		m, fault := readMessage(pkt)
		silent := fault == msgNoHeader || fault == msgNoQuestion || m.response()
		checkTCP(t, h, pkt, out, fault)
		if out == nil {
			if !silent {
				t.Fatalf("silence for a query that is not a response and has a readable question (%v)", fault)
			}
			return
		}
		if silent {
			t.Fatalf("answered %x to a packet that gets no answer (%v, response %v)", out, fault, m.response())
		}
		if len(out) > UDPSize {
			t.Fatalf("UDP answer of %d bytes, over %d", len(out), UDPSize)
		}
		fast := checkReply(t, out, binary.BigEndian.Uint16(pkt))
		if fault == msgQuestions {
			if fast.Rcode != dns.RcodeFormatError || len(fast.Question) != 0 || fast.IsEdns0() != nil {
				t.Fatalf("answer to a query with several questions:\n%v\nwant FORMERR with no question and no OPT", fast)
			}
			return
		}
		if fault == msgMalformed {
			if fast.Rcode != dns.RcodeFormatError || len(fast.Question) != int(m.qd) || fast.IsEdns0() != nil {
				t.Fatalf("answer to a malformed message:\n%v\nwant FORMERR with the question (if any) and no OPT", fast)
			}
			return
		}

		req := new(dns.Msg)
		if err := req.Unpack(pkt); err != nil {
			return
		}
		if req.Opcode == dns.OpcodeUpdate {
			// Every transport hands an UPDATE to Serve, which answers it
			// with updateResponse (this handler takes no updates, so
			// nothing is written).
			if want := h.updateResponse(req, "", false); !needsServe(req) && fast.Rcode != want.Rcode {
				t.Fatalf("UDP path answers the UPDATE %s, updateResponse %s", dns.RcodeToString[fast.Rcode], dns.RcodeToString[want.Rcode])
			}
			return
		}
		for _, udp := range []bool{true, false} {
			resp := h.Respond(req, udp)
			if resp == nil {
				t.Fatalf("Respond(udp=%v) stayed silent for a query", udp)
			}
			wire, err := resp.Pack()
			if err != nil {
				t.Fatalf("Respond(udp=%v): answer does not pack: %v\n%v", udp, err, resp)
			}
			if limit := sizeLimit(req, udp); len(wire) > limit {
				t.Fatalf("Respond(udp=%v): answer of %d bytes, over the limit %d", udp, len(wire), limit)
			}
			full := checkReply(t, wire, req.Id)
			// Signed requests and transfers are answered by Serve, which
			// Respond does not cover.
			if udp && !needsServe(req) && fast.Rcode != full.Rcode {
				t.Fatalf("UDP path answers %s, Respond %s", dns.RcodeToString[fast.Rcode], dns.RcodeToString[full.Rcode])
			}
		}
	})
}

// checkTCP answers pkt as the TCP server does and checks the answer
// against the UDP path's, udp: every message parses with the query's ID;
// silence exactly when UDP is silent; the connection is closed exactly
// after a malformed message; the same response code, unless the UDP
// answer was truncated or the request is a zone transfer (which UDP
// refuses or answers with the SOA).
func checkTCP(t *testing.T, h *Handler, pkt, udp []byte, fault msgFault) {
	t.Helper()
	q := newQuery(TransportTCP, 512)
	q.Wire = pkt
	r := h.AnswerWire(q)
	var msgs [][]byte
	if r.Wire != nil {
		msgs = append(msgs, r.Wire)
	}
	if r.Later != nil {
		if r.Wire != nil || r.Close {
			t.Fatalf("AnswerWire answered %x (close %v) and handed the request on", r.Wire, r.Close)
		}
		var w capture
		h.Serve(context.Background(), *r.Later, &w)
		msgs = w.msgs
	}
	if r.Close != (fault != msgOK) {
		t.Fatalf("TCP close %v for a message read as %v", r.Close, fault)
	}
	if (len(msgs) == 0) != (udp == nil) {
		t.Fatalf("TCP answered %d messages, UDP %x", len(msgs), udp)
	}
	for _, wire := range msgs {
		checkReply(t, wire, binary.BigEndian.Uint16(pkt))
	}
	if len(msgs) == 0 || r.Later != nil || udp[2]&0x02 != 0 {
		return
	}
	if msgs[0][3]&0xf != udp[3]&0xf {
		t.Fatalf("TCP answers rcode %d, UDP %d", msgs[0][3]&0xf, udp[3]&0xf)
	}
}

// checkReply fails the test unless wire parses as a response with ID id,
// and returns it.
func checkReply(t *testing.T, wire []byte, id uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(wire); err != nil {
		t.Fatalf("answer %x does not parse: %v", wire, err)
	}
	if !m.Response || m.Id != id {
		t.Fatalf("answer qr=%v id %#x, want a response with id %#x", m.Response, m.Id, id)
	}
	return m
}
