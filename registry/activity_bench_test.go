package registry

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkActivityMemory100k measures what the registry remembers of
// 100,000 instances (1,000 services of 100) beyond their snapshots: the last
// check run of each, then a full history of HistoryLen transitions each,
// every transition with its own check output of about 60 bytes, as real
// checks give. It reports bytes per instance of each and of the snapshot
// itself, for scale.
func BenchmarkActivityMemory100k(b *testing.B) {
	const services, per = 1000, 100
	const n = services * per
	var snapPer, runPer, histPer float64
	for b.Loop() {
		base := heapInUse()
		r := New(Config{})
		ctx := context.Background()
		for s := range services {
			var changes []Change
			for i := range per {
				in, err := NewInstance(fmt.Sprintf("svc-%d", s), fmt.Sprintf("i-%d", i), Registration{
					Address: fmt.Sprintf("10.%d.%d.%d", s/250, s%250, i+1), Port: 8080,
					Checks: []Check{{Type: CheckTCP, Address: fmt.Sprintf("10.%d.%d.%d:8080", s/250, s%250, i+1)}}})
				if err != nil {
					b.Fatal(err)
				}
				in.Revision = uint64(s*per + i + 1)
				changes = append(changes, Change{Op: OpPutInstance, Service: in.Service, Instance: in})
			}
			if _, err := r.write(ctx, func(*Snapshot) ([]Change, error) { return changes, nil }); err != nil {
				b.Fatal(err)
			}
		}
		snap := r.Snapshot()
		withSnap := heapInUse()

		now := time.Now()
		for _, svc := range snap.Services() {
			for _, in := range svc.Instances() {
				r.ObserveCheck(in.Key(), in.Revision, CheckRun{Time: now, Status: StatusPassing,
					Output: fmt.Sprintf("connected to %s:%d in 0.4ms", in.Address, in.Port), Failures: 0})
			}
		}
		withRuns := heapInUse()

		for _, svc := range snap.Services() {
			for _, in := range svc.Instances() {
				for j := range HistoryLen {
					from, to := StatusPassing, StatusCritical
					if j%2 == 1 {
						from, to = to, from
					}
					r.activity.record(in.Key(), transition{at: now.Add(time.Duration(j) * time.Second).UnixNano(),
						from: codeOf(from), to: codeOf(to),
						output: fmt.Sprintf("dial tcp %s:%d: connect: connection refused (%d)", in.Address, in.Port, j)})
				}
			}
		}
		withHistory := heapInUse()
		if a, _ := r.Activity(Key{"svc-7", "i-7"}); len(a.History) != HistoryLen {
			b.Fatalf("history of %d", len(a.History))
		}
		snapPer = float64(withSnap-base) / n
		runPer = float64(withRuns-withSnap) / n
		histPer = float64(withHistory-withRuns) / n
		runtime.KeepAlive(r)
	}
	b.ReportMetric(snapPer, "snapshot-B/instance")
	b.ReportMetric(runPer, "lastcheck-B/instance")
	b.ReportMetric(histPer, "history20-B/instance")
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// BenchmarkObserveCheck measures recording one check run that changes
// nothing, as the health checks do after every probe, among 100,000
// instances.
func BenchmarkObserveCheck(b *testing.B) {
	r := New(Config{})
	ctx := context.Background()
	var keys []Key
	for s := range 1000 {
		var changes []Change
		for i := range 100 {
			in, err := NewInstance(fmt.Sprintf("svc-%d", s), fmt.Sprintf("i-%d", i), Registration{Address: "10.0.0.1", Port: 80})
			if err != nil {
				b.Fatal(err)
			}
			in.Revision = 1
			changes = append(changes, Change{Op: OpPutInstance, Service: in.Service, Instance: in})
			keys = append(keys, in.Key())
		}
		if _, err := r.write(ctx, func(*Snapshot) ([]Change, error) { return changes, nil }); err != nil {
			b.Fatal(err)
		}
	}
	run := CheckRun{Time: time.Now(), Status: StatusPassing, Output: "HTTP 200 OK"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.ObserveCheck(keys[i%len(keys)], 1, run)
		i++
	}
}
