package dnsserver

import (
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// The stats are plain atomic counters on the query path and become
// Prometheus metrics only when scraped, so counting costs a few atomic adds.

// Query types and rcodes counted by name; the rest fall into "other".
var (
	countedTypes  = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeTXT, dns.TypeSOA, dns.TypeNS, dns.TypeANY, dns.TypePTR, dns.TypeCNAME, dns.TypeMX}
	countedRcodes = []int{dns.RcodeSuccess, dns.RcodeFormatError, dns.RcodeServerFailure, dns.RcodeNameError, dns.RcodeNotImplemented, dns.RcodeRefused, dns.RcodeBadVers}
)

const (
	numTypes  = 11 // countedTypes + other
	numRcodes = 8  // countedRcodes + other
)

// stats are the handler's counters: the answer cache's own, and those of
// the queries the server's Query hook reports (Handler.Hooks).
type stats struct {
	queries     [numTransports][numTypes][numRcodes]atomic.Uint64
	cacheHits   atomic.Uint64
	cacheMisses atomic.Uint64
	truncated   atomic.Uint64
	dropped     atomic.Uint64
	// rrlDropped and rrlSlipped count UDP responses withheld or sent
	// truncated by response rate limiting.
	rrlDropped atomic.Uint64
	rrlSlipped atomic.Uint64
	// latency counts answers per bucket (the last one is +Inf), and the
	// sum in nanoseconds.
	latency    [len(latencyBucketsNs) + 1]atomic.Uint64
	latencySum atomic.Uint64
}

// latencyBucketsNs are the upper bounds of the latency histogram.
var latencyBucketsNs = [...]int64{5e3, 1e4, 2.5e4, 5e4, 1e5, 2.5e5, 5e5, 1e6, 5e6, 2.5e7, 1e8}

func typeIndex(t uint16) int {
	for i, c := range countedTypes {
		if c == t {
			return i
		}
	}
	return len(countedTypes)
}

func rcodeIndex(r int) int {
	for i, c := range countedRcodes {
		if c == r {
			return i
		}
	}
	return len(countedRcodes)
}

// Hooks returns the hooks that connect a Server to h: each query is
// counted in h's metrics and written to its query log, and h's zone
// transfers learn of queries waiting on the UDP sockets, to let them go
// first.
func (h *Handler) Hooks() Hooks {
	return Hooks{
		Query: h.observe,
		Backlog: func(waiting func() bool) {
			h.waiting.Store(&waiting)
		},
		Drained: h.udpDrained,
	}
}

// observe counts one message the server read and logs it.
func (h *Handler) observe(e QueryEvent) {
	s := &h.stats
	s.observe(e.Duration)
	switch {
	case e.RRL == RRLSlip && e.Reply.Answered:
		s.rrlSlipped.Add(1)
		return
	case e.RRL != RRLNone:
		s.rrlDropped.Add(1)
		return
	case !e.Reply.Answered:
		s.dropped.Add(1)
		return
	}
	s.count(e.Transport, e.Reply.Qtype, e.Reply.Rcode)
	if e.Reply.Truncated {
		s.truncated.Add(1)
	}
	if h.qlog != nil {
		h.logQuery(&e)
	}
}

// count records one answered query.
func (s *stats) count(t Transport, qtype uint16, rcode int) {
	s.queries[t][typeIndex(qtype)][rcodeIndex(rcode)].Add(1)
}

// observe records how long one answer took.
func (s *stats) observe(d time.Duration) {
	i := 0
	for i < len(latencyBucketsNs) && int64(d) > latencyBucketsNs[i] {
		i++
	}
	s.latency[i].Add(1)
	s.latencySum.Add(uint64(d))
}

var (
	queriesDesc = prometheus.NewDesc("disco_dns_queries_total",
		"DNS queries answered, by query type, response code and transport.",
		[]string{"qtype", "rcode", "transport"}, nil)
	latencyDesc = prometheus.NewDesc("disco_dns_response_duration_seconds",
		"Time from reading a DNS query to having its answer ready.", nil, nil)
	cacheDesc = prometheus.NewDesc("disco_dns_cache_lookups_total",
		"Lookups in the pre-packed answer cache, by result.", []string{"result"}, nil)
	truncatedDesc = prometheus.NewDesc("disco_dns_truncated_responses_total",
		"Answers built with TC=1 because they did not fit the client's UDP size.", nil, nil)
	droppedDesc = prometheus.NewDesc("disco_dns_dropped_total",
		"UDP packets dropped without an answer (responses, unparsable packets).", nil, nil)
	cacheEntriesDesc = prometheus.NewDesc("disco_dns_cache_entries",
		"Answers held in the pre-packed answer cache.", nil, nil)
	rrlDesc = prometheus.NewDesc("disco_dns_rrl_total",
		"UDP responses limited by response rate limiting, by action: drop (not sent) or slip (sent truncated).",
		[]string{"action"}, nil)
)

// Describe implements prometheus.Collector.
func (h *Handler) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{queriesDesc, latencyDesc, cacheDesc, truncatedDesc, droppedDesc, cacheEntriesDesc, rrlDesc, updatesDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (h *Handler) Collect(ch chan<- prometheus.Metric) {
	s := &h.stats
	for t := range numTransports {
		for qi := range numTypes {
			for ri := range numRcodes {
				n := s.queries[t][qi][ri].Load()
				if n == 0 {
					continue
				}
				qtype, rcode := "other", "other"
				if qi < len(countedTypes) {
					qtype = dns.TypeToString[countedTypes[qi]]
				}
				if ri < len(countedRcodes) {
					rcode = rcodeName(countedRcodes[ri])
				}
				ch <- prometheus.MustNewConstMetric(queriesDesc, prometheus.CounterValue, float64(n), qtype, rcode, transportNames[t])
			}
		}
	}
	buckets := make(map[float64]uint64, len(latencyBucketsNs))
	var total uint64
	for i, ub := range latencyBucketsNs {
		total += s.latency[i].Load()
		buckets[float64(ub)/1e9] = total
	}
	total += s.latency[len(latencyBucketsNs)].Load()
	ch <- prometheus.MustNewConstHistogram(latencyDesc, total, float64(s.latencySum.Load())/1e9, buckets)
	ch <- prometheus.MustNewConstMetric(cacheDesc, prometheus.CounterValue, float64(s.cacheHits.Load()), "hit")
	ch <- prometheus.MustNewConstMetric(cacheDesc, prometheus.CounterValue, float64(s.cacheMisses.Load()), "miss")
	ch <- prometheus.MustNewConstMetric(truncatedDesc, prometheus.CounterValue, float64(s.truncated.Load()))
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(s.dropped.Load()))
	ch <- prometheus.MustNewConstMetric(cacheEntriesDesc, prometheus.GaugeValue, float64(h.cache.lru.Len()))
	ch <- prometheus.MustNewConstMetric(rrlDesc, prometheus.CounterValue, float64(s.rrlDropped.Load()), "drop")
	ch <- prometheus.MustNewConstMetric(rrlDesc, prometheus.CounterValue, float64(s.rrlSlipped.Load()), "slip")
	h.upd.collect(ch)
}
