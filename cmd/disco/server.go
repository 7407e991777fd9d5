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
	"golang.org/x/sync/errgroup"

	"disco/admin"
	"disco/cluster"
	"disco/dnsserver"
	"disco/health"
	"disco/notify"
	"disco/registry"
	"disco/zones"
)

// runServer runs disco until ctx is done, then stops gracefully: readiness
// goes false, listeners close, in-flight work finishes and the store is
// closed. started, if not nil, is called with the bound addresses once
// everything is up.
//
// It builds the server top to bottom, each part from those before it: the
// store, the registry loaded from it, the zones and the DNS server bound to
// its address, the admin listener, the cluster node (with etcd), the health
// monitor (which checks the node's share, and reports through it), and the
// admin API. Then it runs every part in one errgroup.
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
	metrics := newServerMetrics()

	// The store: a bbolt file of this server's own, or etcd.
	be, err := openBackend(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := be.close(); cerr != nil && err == nil {
			err = fmt.Errorf("close store: %w", cerr)
		}
	}()

	// The registry, loaded from the store.
	reg := registry.New(registry.Config{Store: be.store, MaxBatch: be.maxBatch, CommitDelay: cfg.CommitDelay, NextRevision: be.nextRevision,
		Logger: log, OnCommit: metrics.onCommit})
	if err := be.load(ctx, reg, log); err != nil {
		return err
	}

	// The zones and the DNS server, bound to its address.
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
		UDPBufferBytes: cfg.UDPBufferBytes, Hooks: handler.Hooks(),
	}, handler, log)
	if err := dnsSrv.Listen(); err != nil {
		return listenError("--dns-addr", cfg.DNSAddr, err)
	}

	// The admin listener: its address is part of this server's membership.
	adminLn, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		return listenError("--admin-addr", cfg.AdminAddr, err)
	}

	// The cluster node, when several servers share the registry in etcd.
	node, err := newNode(cfg, be, reg, dnsSrv.Addr(), adminLn.Addr(), log)
	if err != nil {
		return err
	}
	if node != nil {
		metrics.registerCluster(be.etcd.LastSync, func() int { return len(node.Members()) }, node.PendingHealth)
	}

	// The health monitor: it checks every instance, or in a cluster the
	// node's share, and reports through the node.
	monCfg := health.Config{Source: reg, Reporter: reg, Observer: reg, Logger: log,
		OnCheck: metrics.onCheck, OnLag: metrics.onLag, Checkers: execCheckers(cfg)}
	if node != nil {
		monCfg.Reporter, monCfg.Owns = node, node.Owns
	}
	mon := health.New(monCfg)
	// Heartbeats go to the monitor, or in a cluster to the node, which
	// routes them to the owner's monitor.
	heartbeat := mon.Heartbeat
	if node != nil {
		heartbeat = node.Heartbeat
	}

	// The admin API.
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

	// Run every part until ctx is done or one of them fails.
	g, gctx := errgroup.WithContext(ctx)
	run := func(name string, part func(context.Context) error) {
		g.Go(func() error {
			err := part(gctx)
			switch {
			case err != nil && !errors.Is(err, context.Canceled):
				return fmt.Errorf("%s: %w", name, err)
			case gctx.Err() == nil:
				return fmt.Errorf("%s stopped unexpectedly", name)
			}
			return nil
		})
	}
	run("dns", dnsSrv.Run)
	run("admin", func(ctx context.Context) error { return api.Serve(ctx, adminLn) })
	run("health", mon.Run)
	run("fail-open log", func(ctx context.Context) error {
		logFailOpen(ctx, reg, policy, log.With("component", "dns"))
		return nil
	})
	run("reloader", func(ctx context.Context) error { reloadOnHangup(ctx, reloadZones, log); return nil })
	run("zone serial", handler.Run)
	run("notify", notifier.Run)
	if node != nil {
		run("cluster", func(ctx context.Context) error { return node.Run(ctx, mon) })
	}
	ready.Store(true)
	log.Info("disco started", "dns", dnsSrv.Addr().String(), "admin", adminLn.Addr().String(),
		"domain", cfg.Domain, "data_dir", cfg.DataDir, "store", be.describe, "query_log", cfg.QueryLog)
	if started != nil {
		started(dnsSrv.Addr(), adminLn.Addr())
	}

	<-gctx.Done()
	var failure error
	if ctx.Err() != nil {
		log.Info("stopping")
	} else {
		failure = context.Cause(gctx)
		log.Error("stopping after a failure", "err", failure)
	}
	ready.Store(false)
	return waitStopped(g, failure, cfg.ShutdownTimeout, log)
}

// waitStopped waits up to timeout for the parts of g to end and returns
// the first failure.
func waitStopped(g *errgroup.Group, failure error, timeout time.Duration, log *slog.Logger) error {
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		log.Info("disco stopped")
		return err
	case <-t.C:
		return errors.Join(failure, fmt.Errorf("graceful stop took longer than %s", timeout))
	}
}

// newNode returns this server's cluster node when the registry is in etcd,
// and nil otherwise.
func newNode(cfg serveConfig, be *backend, reg *registry.Registry, dnsAddr, adminAddr net.Addr, log *slog.Logger) (*cluster.Node, error) {
	if be.etcd == nil {
		return nil, nil
	}
	return cluster.New(cluster.Config{
		Registry: reg, Store: be.etcd, Client: be.cli, TTL: cfg.MemberTTL, Timeout: cfg.EtcdTimeout, Logger: log,
		Self: cluster.Member{ID: be.member, Admin: adminAddr.String(), DNS: dnsAddr.String(), Started: time.Now().UTC()},
	})
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
