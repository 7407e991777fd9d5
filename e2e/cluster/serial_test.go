package cluster_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"disco/store/etcdstore/etcdtest"
)

// serial asks the server for the discovery zone's SOA serial (0 when it
// does not answer).
func (s *server) serial() uint32 {
	m := new(dns.Msg)
	m.SetQuestion(domain, dns.TypeSOA)
	r, _, err := s.dnsc.Exchange(m, s.dns)
	if err != nil || len(r.Answer) != 1 {
		return 0
	}
	return r.Answer[0].(*dns.SOA).Serial
}

// serialAfter reports whether a comes after b (RFC 1982).
func serialAfter(a, b uint32) bool { return a != b && a-b < 1<<31 }

// TestSerialAcrossMembers: two servers sharing etcd answer each change with
// serials that only grow, on both and from one to the other: once both
// answer a change, both serials are past every serial either gave before
// it, so a secondary may take the zone from either. A restarted server
// does not go back.
func TestSerialAcrossMembers(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	s := []*server{startServer(t, "s1", ec.Endpoints()), startServer(t, "s2", ec.Endpoints())}
	var before uint32 // the highest serial either gave before the change
	for _, srv := range s {
		before = max(before, srv.serial())
	}
	for i := range 6 {
		from := s[i%2]
		svc := fmt.Sprintf("serial-%d", i)
		if i == 3 {
			// A deregistration, through the other server.
			if code, body := s[1].api(http.MethodDelete, "/v1/services/serial-1/instances/a", ""); code/100 != 2 {
				t.Fatalf("deregister: %d %s", code, body)
			}
			svc = ""
		} else {
			from.mustRegister(svc, "a", fmt.Sprintf("10.3.0.%d", i+1), 80, "")
		}
		var serials []uint32
		for _, srv := range s {
			waitFor(t, "the change on "+srv.name, 10*time.Second, func() bool {
				if svc != "" {
					return slices.Equal(srv.lookup(serviceName(svc)), []string{fmt.Sprintf("10.3.0.%d", i+1)})
				}
				return srv.lookup(serviceName("serial-1")) == nil
			})
			got := srv.serial()
			if !serialAfter(got, before) {
				t.Errorf("change %d: %s serves serial %d, not after %d given before the change", i, srv.name, got, before)
			}
			serials = append(serials, got)
		}
		t.Logf("change %d: serials %v", i, serials)
		before = max(serials[0], serials[1])
	}

	// A restarted server starts at or after what it served.
	last := s[1].serial()
	s[1].kill()
	s[1] = startServer(t, "s2 again", ec.Endpoints())
	if got := s[1].serial(); got != last && !serialAfter(got, last) {
		t.Errorf("after a restart s2 serves serial %d, before it served %d", got, last)
	}
}
