package dnsserver

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of transfer requests, as counted in
// disco_zone_transfers_total.
type xfrOutcome uint8

const (
	xfrFull        xfrOutcome = iota // the whole zone
	xfrIncremental                   // IXFR differences
	xfrSOA                           // the SOA alone: up to date, or over UDP
	xfrRefused                       // REFUSED, NOTAUTH, NOTIMP, FORMERR
	xfrBusy                          // SERVFAIL: no slot in time
	xfrFailed                        // ended early: write timeout, peer gone, shutdown
	numXfrOutcomes
)

var xfrOutcomeNames = [numXfrOutcomes]string{"full", "incremental", "soa", "refused", "busy", "failed"}

// xfrStats counts transfer requests by outcome.
type xfrStats struct {
	outcomes [numXfrOutcomes]atomic.Uint64
}

func (s *xfrStats) count(o xfrOutcome) { s.outcomes[o].Add(1) }

var (
	zoneSerialDesc = prometheus.NewDesc("disco_zone_serial",
		"SOA serial of the discovery zone being served.", nil, nil)
	journalVersionsDesc = prometheus.NewDesc("disco_zone_journal_versions",
		"Versions of the discovery zone whose differences are kept for IXFR.", nil, nil)
	journalBytesDesc = prometheus.NewDesc("disco_zone_journal_bytes",
		"Estimated memory of the differences kept for IXFR.", nil, nil)
	transfersDesc = prometheus.NewDesc("disco_zone_transfers_total",
		"Zone transfer requests (AXFR, IXFR), by outcome: full, incremental, soa (the SOA alone), refused, busy (no slot in time), failed (ended early).",
		[]string{"outcome"}, nil)
	transfersActiveDesc = prometheus.NewDesc("disco_zone_transfers_active",
		"Zone transfers streaming now.", nil, nil)
)

// zoneCollector reports the discovery zone and its transfers.
type zoneCollector struct{ h *Handler }

// ZoneMetrics returns the Prometheus collector of the discovery zone's
// serial, its IXFR journal and the zone transfers.
func (h *Handler) ZoneMetrics() prometheus.Collector { return zoneCollector{h} }

func (c zoneCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{zoneSerialDesc, journalVersionsDesc, journalBytesDesc, transfersDesc, transfersActiveDesc} {
		ch <- d
	}
}

func (c zoneCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.h
	ch <- prometheus.MustNewConstMetric(zoneSerialDesc, prometheus.GaugeValue, float64(h.zone.current().serial))
	versions, bytes := h.zone.journal.len()
	ch <- prometheus.MustNewConstMetric(journalVersionsDesc, prometheus.GaugeValue, float64(versions))
	ch <- prometheus.MustNewConstMetric(journalBytesDesc, prometheus.GaugeValue, float64(bytes))
	for o := range numXfrOutcomes {
		ch <- prometheus.MustNewConstMetric(transfersDesc, prometheus.CounterValue, float64(h.xfr.stats.outcomes[o].Load()), xfrOutcomeNames[o])
	}
	ch <- prometheus.MustNewConstMetric(transfersActiveDesc, prometheus.GaugeValue, float64(len(h.xfr.slots)))
}
