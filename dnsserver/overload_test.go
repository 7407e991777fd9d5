package dnsserver

import (
	"bufio"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// BenchmarkOverload measures the real server (UDP, default sockets) first
// at the rate it sustains with a window of queries in flight (peak), then
// offered three times that rate open-loop for a few seconds. It reports
// the share answered, the latency of answered queries, heap and RSS growth
// and the datagrams the kernel dropped: the UDP loop has no queue of its
// own, so the socket buffer is the queue and excess is dropped by the
// kernel. The load generator runs in the same process on the same cores.
// Run it once:
//
//	go test -run '^$' -bench Overload -benchtime 1x ./dnsserver
func BenchmarkOverload(b *testing.B) {
	const (
		clients  = 4
		window   = 64
		peakTime = 2 * time.Second
		blast    = 3 * time.Second
	)
	b.ReportAllocs()
	many := slices.Clone(fixture)
	for i := range 200 {
		many = append(many, fixtureInstance{service: "svc" + strconv.Itoa(i%50), id: "i" + strconv.Itoa(i),
			addr: "10.1." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250+1), port: 80})
	}
	reg := testRegistry(b, many, nil)
	// Queries for 50 services, A and SRV, with and without EDNS.
	var queries [][]byte
	for i := range 50 {
		for _, qt := range []uint16{dns.TypeA, dns.TypeSRV} {
			queries = append(queries, pack(b, 0, "svc"+strconv.Itoa(i)+".service.disco.internal.", qt, nil))
			queries = append(queries, pack(b, 0, "svc"+strconv.Itoa(i)+".service.disco.internal.", qt, func(m *dns.Msg) { m.SetEdns0(1232, false) }))
		}
	}
	conns := make([]*net.UDPConn, clients)
	for i := range conns {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		c.SetReadBuffer(4 << 20)
		c.SetWriteBuffer(4 << 20)
		defer c.Close()
		conns[i] = c
	}
	// The generator's own memory is taken and touched before measuring.
	bufs := newOfferBuffers(len(conns))

	// The socket buffer is the server's only queue: the default 4 MiB
	// holds thousands of queries (latency under overload), a small one
	// drops sooner.
	for _, sockBuf := range []int{4 << 20, 256 << 10} {
		b.Run("sockbuf="+strconv.Itoa(sockBuf>>10)+"KiB", func(b *testing.B) {
			b.ReportAllocs()
			h := NewHandler(testConfig(), reg, nil, nil)
			addr := startServer(b, ServerConfig{UDPBufferBytes: sockBuf}, h)
			server := netip.MustParseAddrPort(addr)
			for b.Loop() {
				peak := peakRate(conns, server, queries, window, peakTime)
				runtime.GC()
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				rssBefore := procStatus("VmRSS")
				dropsBefore := udpRcvbufErrors()
				r := offer(conns, server, queries, 3*peak, blast, bufs)
				runtime.GC() // what stays, not what awaits collection
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				drops := udpRcvbufErrors() - dropsBefore

				checkGood(b, "udp", addr) // still up and answering
				checkGood(b, "tcp", addr)

				b.ReportMetric(peak, "peak-qps")
				b.ReportMetric(r.offered, "offered-qps")
				b.ReportMetric(r.offered/peak, "offered/peak")
				b.ReportMetric(100*float64(r.answered)/float64(r.sent), "answered-%")
				b.ReportMetric(float64(r.answered)/blast.Seconds(), "answered-qps")
				b.ReportMetric(float64(r.p50.Microseconds()), "p50-µs")
				b.ReportMetric(float64(r.p99.Microseconds()), "p99-µs")
				b.ReportMetric(float64(drops), "kernel-drops")
				b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/(1<<20), "heap-growth-MiB")
				b.ReportMetric(float64(procStatus("VmRSS")-rssBefore)/1024, "rss-growth-MiB")
				b.ReportMetric(float64(procStatus("VmHWM"))/1024, "rss-peak-MiB")
			}
		})
	}
}

// peakRate returns the answers per second the server gives clients that
// each keep window queries in flight.
func peakRate(conns []*net.UDPConn, server netip.AddrPort, queries [][]byte, window int, d time.Duration) float64 {
	var answered atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for ci, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pkt := make([]byte, 0, 512)
			buf := make([]byte, 2048)
			send := func(seq int) {
				pkt = append(pkt[:0], queries[(seq+ci)%len(queries)]...)
				binary.BigEndian.PutUint16(pkt, uint16(seq))
				c.WriteToUDPAddrPort(pkt, server)
			}
			seq := 0
			for ; seq < window; seq++ {
				send(seq)
			}
			for time.Now().Before(deadline) {
				c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
					send(seq) // a lost datagram: keep the window full
					seq++
					continue
				}
				answered.Add(1)
				send(seq)
				seq++
			}
			// Drain what is still in flight.
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			for {
				if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
					break
				}
			}
		}()
	}
	wg.Wait()
	return float64(answered.Load()) / d.Seconds()
}

type overloadResult struct {
	offered        float64
	sent, answered int64
	p50, p99       time.Duration
}

// offerBuffers is the memory offer uses, taken beforehand so that it does
// not count as the server's growth.
type offerBuffers struct {
	sentAt  [][]int64 // per connection, by query ID: when it was sent
	samples [][]int64 // per connection: latencies seen
}

func newOfferBuffers(conns int) *offerBuffers {
	o := &offerBuffers{}
	for range conns {
		sentAt, samples := make([]int64, 1<<16), make([]int64, 1<<20)
		for i := range sentAt {
			sentAt[i] = -1
		}
		for i := range samples {
			samples[i] = -1
		}
		o.sentAt = append(o.sentAt, sentAt)
		o.samples = append(o.samples, samples[:0])
	}
	return o
}

// offer sends qps queries per second, open-loop, for d, over conns, and
// collects the answers and their latency.
func offer(conns []*net.UDPConn, server netip.AddrPort, queries [][]byte, qps float64, d time.Duration, bufs *offerBuffers) overloadResult {
	var res overloadResult
	var sent, answered atomic.Int64
	lat := make([][]int64, len(conns))
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(d)
	for ci, c := range conns {
		sentAt := bufs.sentAt[ci]
		clear(sentAt)
		wg.Add(2)
		go func() { // receiver
			defer wg.Done()
			buf := make([]byte, 2048)
			samples := bufs.samples[ci][:0]
			for {
				c.SetReadDeadline(stop.Add(500 * time.Millisecond))
				n, _, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					break
				}
				if n < 2 {
					continue
				}
				now := time.Since(start).Nanoseconds()
				answered.Add(1)
				if t := atomic.LoadInt64(&sentAt[binary.BigEndian.Uint16(buf)]); t > 0 && len(samples) < cap(samples) {
					samples = append(samples, now-t)
				}
			}
			lat[ci] = samples
		}()
		go func() { // paced sender
			defer wg.Done()
			per := qps / float64(len(conns))
			pkt := make([]byte, 0, 512)
			n := 0
			for {
				el := time.Since(start)
				if el >= d {
					break
				}
				for due := int(per * el.Seconds()); n < due; n++ {
					id := uint16(n)
					pkt = append(pkt[:0], queries[(n+ci)%len(queries)]...)
					binary.BigEndian.PutUint16(pkt, id)
					atomic.StoreInt64(&sentAt[id], time.Since(start).Nanoseconds())
					c.WriteToUDPAddrPort(pkt, server)
					sent.Add(1)
				}
				time.Sleep(200 * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	res.sent, res.answered = sent.Load(), answered.Load()
	res.offered = float64(res.sent) / d.Seconds()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		res.p50 = time.Duration(all[len(all)/2])
		res.p99 = time.Duration(all[len(all)*99/100])
	}
	return res
}

// procStatus returns a kB field of /proc/self/status (0 where there is
// none).
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// udpRcvbufErrors returns the kernel's count of UDP datagrams dropped for
// a full receive buffer (all sockets of the network namespace), or 0.
func udpRcvbufErrors() int64 {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = fields
			continue
		}
		for i, n := range names {
			if n == "RcvbufErrors" && i < len(fields) {
				v, _ := strconv.ParseInt(fields[i], 10, 64)
				return v
			}
		}
	}
	return 0
}
