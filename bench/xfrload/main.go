// Command xfrload measures disco as a primary, for bench/transfer.sh.
//
//	xfrload axfr -dns 127.0.0.1:8053 -key hmac-sha256:xfr:SECRET -n 3
//	xfrload axfr ... -duration 12s        # back to back until the time is up
//	xfrload latency -dns ... -admin http://127.0.0.1:8054 -token T -secondary 127.0.0.1:5300 -n 10
//
// axfr transfers the discovery zone with TSIG and throws it away, reading
// the messages only far enough to find the zone's end, so that the client
// costs little next to the server (it shares a core with dnsperf). It
// prints one line per transfer and a summary.
//
// latency registers an instance after a quiet spell (longer than NOTIFY's
// one-second coalescing), then times: the API's answer, the new SOA serial
// at disco right after it, and the new serial at the secondary (asked every
// millisecond), and prints the medians.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: xfrload axfr|latency [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	addr := fs.String("dns", "127.0.0.1:8053", "disco's DNS address")
	key := fs.String("key", "", "TSIG key as alg:name:base64secret")
	zone := fs.String("zone", "disco.internal.", "zone")
	n := fs.Int("n", 3, "transfers (axfr) or writes (latency)")
	duration := fs.Duration("duration", 0, "axfr: transfer back to back for this long instead of -n times")
	admin := fs.String("admin", "http://127.0.0.1:8054", "latency: admin API")
	token := fs.String("token", "", "latency: bearer token")
	secondary := fs.String("secondary", "", "latency: the secondary's DNS address")
	quiet := fs.Duration("quiet", 1200*time.Millisecond, "latency: pause before each write")
	_ = fs.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "axfr":
		err = axfrLoop(*addr, *zone, *key, *n, *duration)
	case "latency":
		err = latency(*addr, *zone, *admin, *token, *secondary, *n, *quiet)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "xfrload:", err)
		os.Exit(1)
	}
}

func axfrLoop(addr, zone, key string, n int, duration time.Duration) error {
	parts := strings.SplitN(key, ":", 3)
	if len(parts) != 3 {
		return errors.New("-key: want alg:name:secret")
	}
	end := time.Now().Add(duration)
	var took []time.Duration
	var records, bytes int
	for i := 0; duration > 0 && time.Now().Before(end) || duration == 0 && i < n; i++ {
		start := time.Now()
		rr, b, err := axfr(addr, zone, parts[0], parts[1], parts[2])
		if err != nil {
			return err
		}
		d := time.Since(start)
		took = append(took, d)
		records, bytes = rr, b
		fmt.Printf("axfr %d: %d records, %.1f MB, %.3f s\n", i+1, rr, float64(b)/1e6, d.Seconds())
	}
	if len(took) == 0 {
		return errors.New("no transfer completed")
	}
	slices.Sort(took)
	fmt.Printf("transfers=%d records=%d mb=%.1f median_s=%.3f\n", len(took), records, float64(bytes)/1e6, took[len(took)/2].Seconds())
	return nil
}

// axfr transfers zone once and returns the records and bytes received.
func axfr(addr, zone, alg, name, secret string) (records, total int, err error) {
	m := new(dns.Msg)
	m.SetAxfr(zone)
	m.SetTsig(dns.Fqdn(name), dns.Fqdn(alg), 300, time.Now().Unix())
	wire, _, err := dns.TsigGenerate(m, secret, "", false)
	if err != nil {
		return 0, 0, err
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(wire))), wire...)); err != nil {
		return 0, 0, err
	}
	r := bufio.NewReaderSize(c, 1<<16)
	buf := make([]byte, 1<<16)
	soas := 0
	for soas < 2 {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return records, total, fmt.Errorf("after %d records: %w", records, err)
		}
		msg := buf[:binary.BigEndian.Uint16(l[:])]
		if _, err := io.ReadFull(r, msg); err != nil {
			return records, total, err
		}
		total += 2 + len(msg)
		types, rcode, err := answerTypes(msg)
		if err != nil {
			return records, total, err
		}
		if rcode != dns.RcodeSuccess {
			return records, total, fmt.Errorf("rcode %s", dns.RcodeToString[rcode])
		}
		for _, t := range types {
			if t == dns.TypeSOA {
				soas++
			}
		}
		records += len(types)
	}
	return records, total, nil
}

// answerTypes walks a message's header, question and answer section and
// returns the answer records' types, without decoding them.
func answerTypes(msg []byte) ([]uint16, int, error) {
	if len(msg) < 12 {
		return nil, 0, errors.New("short message")
	}
	rcode := int(msg[3] & 0x0f)
	qd, an := int(binary.BigEndian.Uint16(msg[4:])), int(binary.BigEndian.Uint16(msg[6:]))
	off := 12
	skipName := func() error {
		for off < len(msg) {
			l := int(msg[off])
			switch {
			case l == 0:
				off++
				return nil
			case l&0xc0 == 0xc0:
				off += 2
				return nil
			default:
				off += 1 + l
			}
		}
		return errors.New("name runs past the message")
	}
	for range qd {
		if err := skipName(); err != nil {
			return nil, 0, err
		}
		off += 4
	}
	types := make([]uint16, 0, an)
	for range an {
		if err := skipName(); err != nil {
			return nil, 0, err
		}
		if off+10 > len(msg) {
			return nil, 0, errors.New("record runs past the message")
		}
		types = append(types, binary.BigEndian.Uint16(msg[off:]))
		off += 10 + int(binary.BigEndian.Uint16(msg[off+8:]))
	}
	return types, rcode, nil
}

func latency(addr, zone, admin, token, secondary string, n int, quiet time.Duration) error {
	if secondary == "" {
		return errors.New("-secondary is required")
	}
	c := &dns.Client{Timeout: time.Second}
	serialAt := func(server string) (uint32, error) {
		q := new(dns.Msg)
		q.SetQuestion(zone, dns.TypeSOA)
		q.RecursionDesired = false
		r, _, err := c.Exchange(q, server)
		if err != nil {
			return 0, err
		}
		if len(r.Answer) == 0 {
			return 0, fmt.Errorf("%s: no SOA (%s)", server, dns.RcodeToString[r.Rcode])
		}
		return r.Answer[0].(*dns.SOA).Serial, nil
	}
	var api, visible, propagated []time.Duration
	for i := range n {
		time.Sleep(quiet)
		before, err := serialAt(addr)
		if err != nil {
			return err
		}
		body := fmt.Sprintf(`{"address":"10.250.%d.%d","port":8080}`, i/250, i%250+1)
		req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/v1/services/latency/instances/l-%d", admin, i), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("register: HTTP %d", resp.StatusCode)
		}
		t1 := time.Now()
		after, err := serialAt(addr)
		if err != nil {
			return err
		}
		t2 := time.Now()
		if after == before {
			return fmt.Errorf("write %d: serial %d did not move right after the API answered", i, after)
		}
		for {
			s, err := serialAt(secondary)
			if err == nil && s-after < 1<<31 {
				break
			}
			if time.Since(t1) > 10*time.Second {
				return fmt.Errorf("write %d: the secondary did not reach serial %d in 10 s", i, after)
			}
			time.Sleep(time.Millisecond)
		}
		t3 := time.Now()
		api, visible, propagated = append(api, t1.Sub(t0)), append(visible, t2.Sub(t1)), append(propagated, t3.Sub(t1))
		fmt.Printf("write %d: api %.1f ms, serial %d at disco %.2f ms later, at the secondary %.1f ms later\n",
			i+1, ms(t1.Sub(t0)), after, ms(t2.Sub(t1)), ms(t3.Sub(t1)))
	}
	fmt.Printf("writes=%d api_ms=%.1f serial_visible_ms=%.2f secondary_ms=%.1f\n", n, ms(median(api)), ms(median(visible)), ms(median(propagated)))
	return nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
