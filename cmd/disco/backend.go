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
	// nextRevision allocates instance revisions (registry.Config).
	nextRevision func(last uint64) uint64
	close        func() error
	describe     string

	// With etcd: the client, the store and this server's member id, with
	// which the store marks what it writes.
	cli    *clientv3.Client
	etcd   *etcdstore.Store
	member string
}

// openBackend opens the store cfg names. It waits for etcd only when it
// must authenticate (--etcd-username), retrying until ctx is done.
func openBackend(ctx context.Context, cfg serveConfig, log *slog.Logger) (*backend, error) {
	if cfg.Store != "etcd" {
		st, err := store.Open(cfg.DataDir, store.Options{Logger: log})
		if err != nil {
			return nil, err
		}
		return &backend{store: st, maxBatch: cfg.CommitBatch, close: st.Close, describe: "bolt " + st.Path()}, nil
	}
	cli, err := etcdstore.NewClient(cfg.Etcd)
	for wait := time.Second; errors.Is(err, context.DeadlineExceeded); wait = min(2*wait, 10*time.Second) {
		log.Error("cannot reach etcd; retrying", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to etcd: %w", ctx.Err())
		case <-time.After(wait):
		}
		cli, err = etcdstore.NewClient(cfg.Etcd)
	}
	if err != nil {
		return nil, err
	}
	member := memberID()
	st := etcdstore.New(cli, etcdstore.Options{Prefix: cfg.EtcdPrefix, Timeout: cfg.EtcdTimeout, Member: member, Logger: log})
	return &backend{
		store: st, maxBatch: etcdstore.MaxBatch, nextRevision: revisionAllocator(), close: cli.Close,
		describe: fmt.Sprintf("etcd %s prefix %s member %s", cli.Endpoints(), st.Prefix(), member),
		cli:      cli, etcd: st, member: member,
	}, nil
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

// revisionAllocator returns a registry.Config.NextRevision for a server
// sharing its registry: revisions advance in steps of 2^16 and carry a
// random low part of this server's, so that two servers re-registering the
// same instance at once (before either saw the other's write) do not give
// it the same revision for different checks.
func revisionAllocator() func(last uint64) uint64 {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	salt := uint64(b[0])<<8 | uint64(b[1])
	return func(last uint64) uint64 { return (last>>16+1)<<16 | salt }
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
