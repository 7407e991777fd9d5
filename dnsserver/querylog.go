package dnsserver

import (
	"context"
	"log/slog"
	"net/netip"
	"strconv"
	"time"

	"github.com/miekg/dns"
)

// The query log writes one Info record per answered query to
// Config.QueryLog:
//
//	msg=query client=127.0.0.1:40512 qname=web.service.disco.internal. qtype=A rcode=NOERROR transport=udp tc=false duration=4.1µs
//
// With no query log the UDP and TCP paths check one pointer per query and
// do nothing else: the client address is not even decoded. Queries that get
// no answer (responses, packets without a DNS header) are not logged.

// serveUDPLogged is serveUDP with the query log on.
func (h *Handler) serveUDPLogged(pkt []byte, from netip.AddrPort, s *scratch) []byte {
	start := time.Now()
	m, fault := readMessage(pkt)
	out, rcode := h.answerUDP(pkt, &m, fault, s)
	if out == nil {
		return nil
	}
	took := time.Since(start)
	tc := len(out) > 2 && out[2]&0x02 != 0
	h.logQuery(from.String(), m.qname(pkt), m.qtype, rcode, transportUDP, tc, took)
	return out
}

// logQuery writes one query log record.
func (h *Handler) logQuery(client, qname string, qtype uint16, rcode int, t transport, tc bool, took time.Duration) {
	h.qlog.LogAttrs(context.Background(), slog.LevelInfo, "query",
		slog.String("client", client),
		slog.String("qname", qname),
		slog.String("qtype", typeString(qtype)),
		slog.String("rcode", rcodeName(rcode)),
		slog.String("transport", transportNames[t]),
		slog.Bool("tc", tc),
		slog.Duration("duration", took),
	)
}

// qnameOf returns the question name of m, or "".
func qnameOf(m *dns.Msg) string {
	if len(m.Question) == 0 {
		return ""
	}
	return m.Question[0].Name
}

func typeString(t uint16) string {
	if t == 0 {
		return ""
	}
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// rcodeName is the mnemonic of a response code. 16 is BADVERS as a
// message's rcode (RFC 6891); miekg/dns's table names it BADSIG, its
// meaning in a TSIG record's error field (RFC 8945).
func rcodeName(r int) string {
	if r == dns.RcodeBadVers {
		return "BADVERS"
	}
	if s, ok := dns.RcodeToString[r]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(r)
}
