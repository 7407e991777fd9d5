package dnsserver

import (
	"context"
	"log/slog"
	"strconv"

	"github.com/miekg/dns"
)

// The query log writes one Info record per answered query to
// Config.QueryLog:
//
//	msg=query client=127.0.0.1:40512 qname=web.service.disco.internal. qtype=A rcode=NOERROR transport=udp tc=false duration=4.1µs
//
// The server's Query hook (Handler.Hooks) writes it. With no query log the
// hook checks one pointer per query and does nothing else: the question
// name is not even decoded. Queries that get no answer (responses, packets
// without a DNS header, answers withheld by rate limiting) are not logged.

// logQuery writes the query log record of e.
func (h *Handler) logQuery(e *QueryEvent) {
	client := ""
	if e.Remote.IsValid() {
		client = e.Remote.String()
	}
	h.qlog.LogAttrs(context.Background(), slog.LevelInfo, "query",
		slog.String("client", client),
		slog.String("qname", e.Qname()),
		slog.String("qtype", typeString(e.Reply.Qtype)),
		slog.String("rcode", rcodeName(e.Reply.Rcode)),
		slog.String("transport", e.Transport.String()),
		slog.Bool("tc", e.Reply.Truncated),
		slog.Duration("duration", e.Duration),
	)
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
