package main

import (
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"disco/registry"
)

// serverMetrics are the process's Prometheus metrics beside the DNS
// handler's own collector.
type serverMetrics struct {
	reg *prometheus.Registry

	checks        *prometheus.CounterVec
	checkDuration *prometheus.HistogramVec
	checkLag      prometheus.Histogram
	commits       *prometheus.CounterVec
	commitChanges prometheus.Histogram
	commitLatency prometheus.Histogram
	zoneReloads   *prometheus.CounterVec
	zonesLoaded   prometheus.Gauge
	notifyLatency prometheus.Histogram
}

// newServerMetrics registers the metrics of disco in a new registry; the
// registry's and the DNS handler's collectors join with register.
func newServerMetrics() *serverMetrics {
	m := &serverMetrics{
		reg: prometheus.NewRegistry(),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "disco_health_checks_total", Help: "Health check probes, by check type and result.",
		}, []string{"type", "result"}),
		checkDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "disco_health_check_duration_seconds", Help: "How long health check probes took, by check type.",
			Buckets: []float64{.0005, .001, .005, .01, .05, .1, .5, 1, 2, 5, 10},
		}, []string{"type"}),
		checkLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "disco_health_check_lag_seconds", Help: "How late probes started against their schedule.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5},
		}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "disco_store_commits_total", Help: "Durable store commits, by result.",
		}, []string{"result"}),
		commitChanges: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "disco_store_commit_changes", Help: "Registry changes per durable commit (group commit size).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "disco_registry_write_duration_seconds", Help: "Time to make a batch of registry writes durable.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		zoneReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "disco_zone_reloads_total", Help: "Zone directory reloads, by result (ok, or error when a file failed).",
		}, []string{"result"}),
		zonesLoaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "disco_zones", Help: "Static zones served.",
		}),
		notifyLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "disco_notify_latency_seconds", Help: "Time from a zone change to a secondary's answer to its NOTIFY (coalescing and retries included).",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 2, 5, 30, 120},
		}),
	}
	ver, rev := buildVersion()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "disco_build_info", Help: "Build information; the value is always 1.",
		ConstLabels: prometheus.Labels{"version": ver, "revision": rev, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(m.checks, m.checkDuration, m.checkLag, m.commits, m.commitChanges, m.commitLatency,
		m.zoneReloads, m.zonesLoaded, m.notifyLatency, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// register adds collectors.
func (m *serverMetrics) register(cs ...prometheus.Collector) { m.reg.MustRegister(cs...) }

// registerCluster adds the metrics of a server sharing its registry
// through etcd.
func (m *serverMetrics) registerCluster(lastSync func() time.Time, members, pendingHealth func() int) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "disco_store_last_sync_age_seconds",
			Help: "Seconds since this server last knew it had everything etcd holds: how stale its answers may be while etcd is unreachable.",
		}, func() float64 {
			t := lastSync()
			if t.IsZero() {
				return -1
			}
			return time.Since(t).Seconds()
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "disco_cluster_members", Help: "Live disco servers sharing the registry, as this server sees them.",
		}, func() float64 { return float64(members()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "disco_health_results_pending", Help: "Health results of this server's checks not yet recorded in etcd.",
		}, func() float64 { return float64(pendingHealth()) }),
	)
}

// onCheck records one health probe.
func (m *serverMetrics) onCheck(t registry.CheckType, s registry.Status, took time.Duration) {
	m.checks.WithLabelValues(string(t), string(s)).Inc()
	m.checkDuration.WithLabelValues(string(t)).Observe(took.Seconds())
}

// onLag records how late a probe started.
func (m *serverMetrics) onLag(lag time.Duration) { m.checkLag.Observe(lag.Seconds()) }

// onCommit records one durable commit of the registry.
func (m *serverMetrics) onCommit(changes int, took time.Duration, err error) {
	if err != nil {
		m.commits.WithLabelValues("error").Inc()
		return
	}
	m.commits.WithLabelValues("ok").Inc()
	m.commitChanges.Observe(float64(changes))
	m.commitLatency.Observe(took.Seconds())
}

// onNotify records one NOTIFY a secondary answered.
func (m *serverMetrics) onNotify(_ string, _ uint32, latency time.Duration) {
	m.notifyLatency.Observe(latency.Seconds())
}

// onReload records one zone reload.
func (m *serverMetrics) onReload(zones int, err error) {
	if err != nil {
		m.zoneReloads.WithLabelValues("error").Inc()
	} else {
		m.zoneReloads.WithLabelValues("ok").Inc()
	}
	m.zonesLoaded.Set(float64(zones))
}

// registryCollector reports instances by service and status from the
// current snapshot when scraped.
type registryCollector struct{ src *registry.Registry }

var (
	instancesDesc = prometheus.NewDesc("disco_instances",
		"Registered instances, by service and effective status.", []string{"service", "status"}, nil)
	servicesDesc = prometheus.NewDesc("disco_services", "Registered services.", nil, nil)
	versionDesc  = prometheus.NewDesc("disco_registry_version", "Version of the registry snapshot being served.", nil, nil)
)

func (c registryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- instancesDesc
	ch <- servicesDesc
	ch <- versionDesc
}

func (c registryCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.src.Snapshot()
	services, _ := snap.Len()
	ch <- prometheus.MustNewConstMetric(servicesDesc, prometheus.GaugeValue, float64(services))
	ch <- prometheus.MustNewConstMetric(versionDesc, prometheus.GaugeValue, float64(snap.Version()))
	for _, svc := range snap.Services() {
		n := svc.Counts()
		for _, s := range []struct {
			status registry.Status
			n      int
		}{
			{registry.StatusPassing, n.Passing}, {registry.StatusWarning, n.Warning},
			{registry.StatusCritical, n.Critical}, {registry.StatusMaintenance, n.Maintenance},
		} {
			ch <- prometheus.MustNewConstMetric(instancesDesc, prometheus.GaugeValue, float64(s.n), svc.Name(), string(s.status))
		}
	}
}
