package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"disco/admin"
	"disco/cluster"
	"disco/dnsserver"
	"disco/health"
	"disco/notify"
	"disco/registry"
	"disco/store/etcdstore"
	"disco/zones"
)

// runServer runs disco until ctx is done, then stops gracefully: readiness
// goes false, listeners close, in-flight work finishes and the store is
// closed. started, if not nil, is called with the bound addresses once
// everything is up.
func runServer(ctx context.Context, cfg serveConfig, log *slog.Logger, started func(dnsAddr, adminAddr net.Addr)) (err error) {
	if err := admin.CheckExposure(cfg.AdminAddr, cfg.AdminToken); err != nil {
		return err
	}
	var adminTLS *tls.Config
	if cfg.AdminTLSCert != "" {
		if adminTLS, err = admin.LoadTLS(cfg.AdminTLSCert, cfg.AdminTLSKey); err != nil {
			return err
		}
	}
	be, err := openBackend(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := be.close(); cerr != nil && err == nil {
			err = fmt.Errorf("close store: %w", cerr)
		}
	}()
	metrics := newServerMetrics()
	reg := registry.New(registry.Config{Store: be.store, MaxBatch: be.maxBatch, CommitDelay: cfg.CommitDelay, NextRevision: be.nextRevision,
		Logger: log, OnCommit: metrics.onCommit})
	if err := be.load(ctx, reg, log); err != nil {
		return err
	}

	reserved, err := discoveryReserved(cfg.Domain)
	if err != nil {
		return err
	}
	zm := zones.NewManager(cfg.ZonesDir, zones.Options{Reserved: reserved}, log)
	reloadZones := func(ctx context.Context) (zones.Report, error) {
		rep, err := zm.Reload(ctx)
		metrics.onReload(zm.Current().Len(), err)
		return rep, err
	}
	if _, err := reloadZones(ctx); err != nil {
		// The zones that loaded are served; the others are reported.
		log.Error("some zones failed to load", "err", err)
	}

	// One serving policy for DNS answers, the API's views and the
	// fail-open log.
	policy := registry.Policy{ServeWarning: cfg.ServeWarning, MinHealthyPercent: cfg.MinHealthyPercent}
	var qlog *slog.Logger
	if cfg.QueryLog {
		qlog = queryLogger(log)
	}
	serials, err := zoneSerials(cfg, be)
	if err != nil {
		return err
	}
	notifier := notify.New(notify.Config{Targets: cfg.Transfer.Notify, Key: cfg.Transfer.NotifyKey, Logger: log,
		OnSent: metrics.onNotify})
	handler := dnsserver.NewHandler(dnsserver.Config{
		Domain: cfg.Domain, TTL: cfg.DNSTTL, NegativeTTL: cfg.NegativeTTL,
		Policy: policy, NSAddrs: cfg.NSAddrs,
		Serials: serials, QueryLog: qlog,
		TSIG: cfg.Transfer.Keys, Transfer: dnsserver.TransferConfig{Allow: cfg.Transfer.TransferAllow},
		Notify: notifier.Notify, ReverseZones: cfg.Update.ReverseZones,
	}, reg, zm, log)
	handler.EnableUpdates(dnsserver.UpdateConfig{Registry: reg, Allow: cfg.Update.Allow})
	metrics.register(handler, handler.ZoneMetrics(), registryCollector{reg})
	dnsSrv := dnsserver.NewServer(dnsserver.ServerConfig{
		Addr: cfg.DNSAddr, TCPIdleTimeout: cfg.TCPIdleTimeout, MaxTCPConns: cfg.MaxTCPConns, RRL: cfg.RRL,
		UDPBufferBytes: cfg.UDPBufferBytes,
	}, handler, log)
	if err := dnsSrv.Listen(); err != nil {
		return listenError("--dns-addr", cfg.DNSAddr, err)
	}
	adminLn, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		return listenError("--admin-addr", cfg.AdminAddr, err)
	}

	monCfg := health.Config{Source: reg, Reporter: reg, Observer: reg, Logger: log,
		OnCheck: metrics.onCheck, OnLag: metrics.onLag, Checkers: execCheckers(cfg)}
	type part struct {
		name string
		run  func(context.Context) error
	}
	var clusterParts []part
	var mon *health.Monitor
	heartbeat := func(k registry.Key) error { return mon.Heartbeat(k) }
	if be.etcd != nil {
		// Several servers share the registry: each checks its share of the
		// instances and shares the results through etcd.
		members := cluster.New(cluster.Config{
			Client: be.cli, Dir: be.etcd.Prefix() + etcdstore.DirMembers, TTL: cfg.MemberTTL, Timeout: cfg.EtcdTimeout,
			Self:   cluster.Member{ID: be.member, Admin: adminLn.Addr().String(), DNS: dnsSrv.Addr().String(), Started: time.Now().UTC()},
			Logger: log, OnChange: func([]string) { mon.Rebalance() },
		})
		rep := cluster.NewReporter(reg, be.etcd, log)
		monCfg.Owns, monCfg.Reporter = members.Owns, rep
		hb := &cluster.Heartbeats{Source: reg, Owns: members.Owns, Local: heartbeat, Forward: be.etcd.PutHeartbeat,
			Logger: log.With("component", "cluster")}
		heartbeat, be.onHeartbeat = hb.Heartbeat, hb.Deliver
		be.foreignHealth = func(k registry.Key, rev uint64, h registry.Health) bool {
			if !members.Owns(k) {
				return true
			}
			rep.Reassert(k, rev, h)
			return false
		}
		metrics.registerCluster(be.etcd.LastSync, func() int { return len(members.Members()) }, rep.Pending)
		clusterParts = []part{
			{"etcd watch", func(ctx context.Context) error { return be.etcd.Watch(ctx, reg) }},
			{"cluster membership", members.Run},
			{"health reporter", rep.Run},
		}
	}
	mon = health.New(monCfg)
	var ready atomic.Bool
	api := admin.New(admin.Config{
		Registry:    reg,
		Token:       cfg.AdminToken,
		Logger:      log,
		Heartbeat:   heartbeat,
		ReloadZones: func(ctx context.Context) (any, error) { return apiReloadZones(ctx, reloadZones) },
		Ready:       ready.Load,
		Policy:      policy,
		Explainer:   dnsExplainer{handler},
		ExecChecks:  cfg.ExecChecks,
		TLS:         adminTLS,
		Metrics:     promhttp.HandlerFor(metrics.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}),
	})

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	parts := []part{
		{"dns", dnsSrv.Run},
		{"admin", func(ctx context.Context) error { return api.Serve(ctx, adminLn) }},
		{"health", mon.Run},
		{"fail-open log", func(ctx context.Context) error {
			logFailOpen(ctx, reg, policy, log.With("component", "dns"))
			return nil
		}},
		{"reloader", func(ctx context.Context) error { reloadOnHangup(ctx, reloadZones, log); return nil }},
		{"zone serial", handler.Run},
		{"notify", notifier.Run},
	}
	parts = append(parts, clusterParts...)
	done := make(chan error, len(parts))
	for _, p := range parts {
		go func() {
			err := p.run(runCtx)
			if err != nil && !errors.Is(err, context.Canceled) {
				err = fmt.Errorf("%s: %w", p.name, err)
			} else {
				err = nil
			}
			done <- err
		}()
	}
	ready.Store(true)
	log.Info("disco started", "dns", dnsSrv.Addr().String(), "admin", adminLn.Addr().String(),
		"domain", cfg.Domain, "data_dir", cfg.DataDir, "store", be.describe, "query_log", cfg.QueryLog)
	if started != nil {
		started(dnsSrv.Addr(), adminLn.Addr())
	}

	var first error
	running := len(parts)
	select {
	case <-ctx.Done():
		log.Info("stopping")
	case first = <-done:
		running--
		log.Error("stopping after a failure", "err", first)
	}
	ready.Store(false)
	cancel()
	timeout := time.NewTimer(cfg.ShutdownTimeout)
	defer timeout.Stop()
	for ; running > 0; running-- {
		select {
		case err := <-done:
			first = cmpErr(first, err)
		case <-timeout.C:
			return errors.Join(first, fmt.Errorf("graceful stop took longer than %s", cfg.ShutdownTimeout))
		}
	}
	log.Info("disco stopped")
	return first
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// apiReloadZones reloads the zones for the admin API: a zone file with an
// error is the client's problem (422), not the server's.
func apiReloadZones(ctx context.Context, reload func(context.Context) (zones.Report, error)) (zones.Report, error) {
	rep, err := reload(ctx)
	if ze := (*zones.Error)(nil); errors.As(err, &ze) {
		err = admin.Unprocessable(err)
	}
	return rep, err
}

// reloadOnHangup reloads the zones on every SIGHUP until ctx is done.
func reloadOnHangup(ctx context.Context, reload func(context.Context) (zones.Report, error), log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Info("SIGHUP: reloading zones")
			if _, err := reload(ctx); err != nil {
				log.Error("zone reload failed; previous versions keep serving", "err", err)
			}
		}
	}
}

// execCheckers returns the checker of exec checks the flags ask for: one
// that runs them, with the server's environment less its own DISCO_
// variables (the admin token among them), or one that reports them
// disabled.
func execCheckers(cfg serveConfig) map[registry.CheckType]health.Checker {
	if !cfg.ExecChecks {
		return map[registry.CheckType]health.Checker{registry.CheckExec: health.Disabled(
			"exec checks are not enabled on this server (disco serve --enable-exec-checks)")}
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DISCO_") {
			env = append(env, kv)
		}
	}
	return map[registry.CheckType]health.Checker{registry.CheckExec: health.NewExecChecker(health.ExecConfig{
		MaxProcs: cfg.MaxExecChecks, Env: env})}
}
