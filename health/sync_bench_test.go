package health

import (
	"context"
	"fmt"
	"testing"
	"time"

	"disco/registry"
)

// BenchmarkSync measures reconciling the targets after one instance's
// health changed (not counting the registry's write), among 10,000
// instances: from the snapshot's Touched list
// (the version follows the last one seen) and by a full rescan (versions
// were skipped).
func BenchmarkSync(b *testing.B) {
	for _, shape := range []struct{ services, perService int }{{100, 100}, {10000, 1}} {
		for _, full := range []bool{false, true} {
			mode := "touched"
			if full {
				mode = "rescan"
			}
			b.Run(fmt.Sprintf("%dx%d/%s", shape.services, shape.perService, mode), func(b *testing.B) {
				b.ReportAllocs()
				reg := registry.New(registry.Config{})
				c := registry.Check{Type: registry.CheckHTTP, URL: "http://10.0.0.1/health"}
				var keys []registry.Key
				for s := range shape.services {
					for i := range shape.perService {
						in, err := registry.NewInstance(fmt.Sprintf("svc-%d", s), fmt.Sprintf("i-%d", i),
							registry.Registration{Address: "10.0.0.1", Port: 80, Checks: []registry.Check{c}})
						if err != nil {
							b.Fatal(err)
						}
						st, err := reg.Register(context.Background(), in)
						if err != nil {
							b.Fatal(err)
						}
						keys = append(keys, st.Key())
					}
				}
				m := New(Config{Source: reg, Reporter: reg})
				m.services = make(map[string]*watched)
				m.sync(time.Now())
				status := []registry.Status{registry.StatusPassing, registry.StatusCritical}
				b.ResetTimer()
				for i := range b.N {
					b.StopTimer()
					k := keys[i%len(keys)]
					in, _ := reg.Snapshot().Instance(k.Service, k.ID)
					reg.SetHealth(k, in.Revision, registry.Health{Status: status[i%2]})
					if full {
						m.snap = nil
					}
					b.StartTimer()
					m.sync(time.Now())
				}
			})
		}
	}
}
