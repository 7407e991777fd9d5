package etcdstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"disco/registry"
	"disco/store/etcdstore"
	"disco/store/etcdstore/etcdtest"
)

// benchNode is a registry on etcd, watching, for benchmarks.
func benchNode(b *testing.B, cli *clientv3.Client, member string) *registry.Registry {
	b.Helper()
	st := etcdstore.New(cli, etcdstore.Options{Prefix: "/bench/", Member: member})
	reg := registry.New(registry.Config{Store: st, MaxBatch: etcdstore.MaxBatch})
	if err := reg.Load(context.Background()); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { st.Watch(ctx, reg, nil); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return reg
}

// BenchmarkPropagation registers an instance through one server and waits
// for another server's registry to publish it: the time from the write's
// acknowledgement to the other server answering with it. It reports the
// median and 99th percentile of that delay.
func BenchmarkPropagation(b *testing.B) {
	b.ReportAllocs()
	ec := etcdtest.Start(b, 1)
	a, other := benchNode(b, ec.Client(), "a"), benchNode(b, ec.Client(), "b")
	var delays []time.Duration
	i := 0
	for b.Loop() {
		i++
		in, err := registry.NewInstance("web", fmt.Sprintf("i%d", i), registry.Registration{Address: "10.0.0.1", Port: 80})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := a.Register(context.Background(), in); err != nil {
			b.Fatal(err)
		}
		acked := time.Now()
		timeout := time.After(10 * time.Second)
		for {
			s := other.Snapshot()
			if _, ok := s.Instance("web", in.ID); ok {
				break
			}
			select {
			case <-s.Changed():
			case <-timeout:
				b.Fatalf("%s not propagated within 10s", in.ID)
			}
		}
		delays = append(delays, time.Since(acked))
	}
	slices.Sort(delays)
	b.ReportMetric(float64(delays[len(delays)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(delays[(len(delays)-1)*99/100].Microseconds()), "p99-µs")
}
