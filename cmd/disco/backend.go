package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"disco/registry"
	"disco/store"
	"disco/store/etcdstore"
)

// backend is where the registry lives: a bbolt file of this server's own,
// or etcd shared with other servers.
type backend struct {
	store    registry.Store
	maxBatch int
	close    func() error
	describe string

	// With etcd:
	cli    *clientv3.Client
	etcd   *etcdstore.Store
	member string
	// onHeartbeat receives the heartbeats recorded in etcd; set before the
	// watch starts.
	onHeartbeat func(registry.Key)
}

// openBackend opens the store cfg names. It does not wait for etcd.
func openBackend(cfg serveConfig, log *slog.Logger) (*backend, error) {
	if cfg.Store != "etcd" {
		st, err := store.Open(cfg.DataDir, store.Options{})
		if err != nil {
			return nil, err
		}
		return &backend{store: st, close: st.Close, describe: "bolt " + st.Path()}, nil
	}
	cli, err := etcdstore.NewClient(cfg.Etcd)
	if err != nil {
		return nil, err
	}
	be := &backend{cli: cli, member: memberID(), maxBatch: etcdstore.MaxBatch, close: cli.Close}
	be.etcd = etcdstore.New(cli, etcdstore.Options{
		Prefix: cfg.EtcdPrefix, Timeout: cfg.EtcdTimeout, Member: be.member, Logger: log,
		OnHeartbeat: func(k registry.Key) {
			if be.onHeartbeat != nil {
				be.onHeartbeat(k)
			}
		},
	})
	be.store = be.etcd
	be.describe = fmt.Sprintf("etcd %s prefix %s member %s", cli.Endpoints(), be.etcd.Prefix(), be.member)
	return be, nil
}

// load loads reg from the store. With etcd it waits for etcd to answer,
// retrying (and logging) until ctx is done: a server may start before its
// etcd cluster.
func (b *backend) load(ctx context.Context, reg *registry.Registry, log *slog.Logger) error {
	wait := time.Second
	for {
		err := reg.Load(ctx)
		if err == nil || b.etcd == nil || !errors.Is(err, etcdstore.ErrUnreachable) {
			return err
		}
		log.Error("cannot read the registry from etcd; retrying", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return fmt.Errorf("load registry: %w", ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// memberID names this server in the cluster: the host name and a random
// suffix, new at every start.
func memberID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "disco"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}
