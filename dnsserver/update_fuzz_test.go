package dnsserver

import (
	"context"
	"testing"

	"github.com/miekg/dns"

	"disco/registry"
)

// FuzzUpdate feeds UPDATE messages, as if signed with an allowed key, to
// the UPDATE core (checkUpdate, planUpdate) over a registry holding the
// fixture, and applies what it plans. Nothing may panic; a refusal has an
// rcode other than NOERROR and a text; a planned batch is accepted by the
// registry whole; and what lands is only instances with one address and
// one port, each at a valid instance name. Seeds are the UPDATEs of
// TestUpdate's kinds.
func FuzzUpdate(f *testing.F) {
	I := instanceZone
	for _, build := range []func(m *dns.Msg){
		func(m *dns.Msg) {
			m.Insert(rrs(f, "db-1.db."+I+" 60 A 10.0.0.21", "db-1.db."+I+" 60 SRV 2 7 5432 db-1.db."+I, "db-1.db."+I+` 60 TXT "role=primary"`))
		},
		func(m *dns.Msg) { m.RemoveName([]dns.RR{at("web-1.web."+I, dns.TypeANY)}) },
		func(m *dns.Msg) {
			m.NameNotUsed([]dns.RR{at("web-1.web."+I, dns.TypeANY)})
			m.Used(rrs(f, "web.service.disco.internal. 0 A 10.0.0.1"))
			m.RemoveRRset([]dns.RR{at("web-3.web."+I, dns.TypeA)})
			m.Remove(rrs(f, "web-3.web."+I+` 0 TXT "zone=a"`))
			m.Insert(rrs(f, "web-3.web."+I+" 60 AAAA fd00::3"))
		},
		func(m *dns.Msg) { m.Insert(rrs(f, "x.service.disco.internal. 60 A 10.0.0.9")) },
	} {
		m := new(dns.Msg)
		m.SetUpdate(testZone)
		build(m)
		wire, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wire)
	}
	reg := testRegistry(f, fixture, fixtureSettings)
	h := NewHandler(reverseConfig("10.0.0.0/8"), reg, nil, nil)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		req := new(dns.Msg)
		if err := req.Unpack(pkt); err != nil {
			return
		}
		if e := h.cfg.checkUpdate(req, updKey, []string{updKey}, nil); e != nil {
			if e.rcode == dns.RcodeSuccess || e.text == "" {
				t.Fatalf("refusal without rcode or text: %+v", e)
			}
			return
		}
		// A registry of its own per input, so inputs do not interact.
		r := registry.New(registry.Config{})
		for _, svc := range reg.Snapshot().Services() {
			for _, in := range svc.Instances() {
				if _, err := r.Register(context.Background(), in); err != nil {
					t.Fatal(err)
				}
			}
		}
		var refused *updateError
		snap, err := r.Apply(context.Background(), func(head *registry.Snapshot) (registry.Batch, error) {
			b, e := h.cfg.planUpdate(req, head, nil)
			if e != nil {
				refused = e
				return b, e
			}
			return b, nil
		})
		switch {
		case refused != nil:
			if refused.rcode == dns.RcodeSuccess || refused.text == "" {
				t.Fatalf("refusal without rcode or text: %+v", refused)
			}
			return
		case err != nil:
			t.Fatalf("the registry refused a planned batch: %v", err)
		}
		for _, svc := range snap.Services() {
			for _, in := range svc.Instances() {
				if !registry.ValidName(in.Service) || !registry.ValidName(in.ID) || !in.Address.IsValid() || in.Port == 0 {
					t.Fatalf("stored an invalid instance %+v", in)
				}
			}
		}
	})
}
