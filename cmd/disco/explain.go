package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"disco/admin"
	"disco/dnsserver"
)

// dnsExplainer lets the admin API explain answers with the DNS handler's
// own code.
type dnsExplainer struct{ h *dnsserver.Handler }

func (e dnsExplainer) Explain(name string, qtype uint16) admin.DNSAnswer {
	x := e.h.Explain(name, qtype)
	return admin.DNSAnswer{Msg: x.Msg, Version: x.Version, Zone: x.Zone, Reason: x.Reason, TTL: x.TTL, TTLSource: x.TTLSource,
		Service: x.Service, Selection: x.Selection, Instance: x.Instance}
}

func explainCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "explain",
		Usage:     "show what DNS answers a name now, and why",
		UsageText: "disco explain <name> [<type>] [--json]",
		Description: `Asks the server what DNS answers <name> (type A unless <type> is given)
right now, computed by the same code that answers queries: the response
code, the records, their TTL and where it comes from, the Extended DNS Error,
the zone that answered (or why the name is REFUSED). For a service name it
lists every instance of the service, whether the answer holds it and why
(status since when and check output, maintenance reason, tag filter), and
the serving policy in force.

Examples:
   disco explain web.service.disco.internal
   disco explain _web._tcp.service.disco.internal SRV
   disco explain v2.web.service.disco.internal AAAA --json`,
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 || c.NArg() > 2 {
				return fmt.Errorf("explain takes a name and an optional type, got %d arguments; usage: %s (see disco explain --help)",
					c.NArg(), usageLine(c.Command))
			}
			qtype := "A"
			if c.NArg() == 2 {
				qtype = c.Args().Get(1)
			}
			e, err := newClient(c).Explain(c.Context, c.Args().First(), qtype)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, e)
			}
			return printExplanation(c.App.Writer, e)
		},
	})
}

// printExplanation writes an explanation for people.
func printExplanation(w io.Writer, e *admin.Explanation) error {
	var b strings.Builder
	aa := ""
	if e.Authoritative {
		aa = ", authoritative"
	}
	zone := "no zone"
	if e.Zone != "" {
		zone = "zone " + e.Zone
	}
	fmt.Fprintf(&b, "%s %s: %s (%s%s)\n", e.Name, e.Type, e.Rcode, zone, aa)
	fmt.Fprintf(&b, "why: %s\n", cell(e.Reason, 400))
	for _, sec := range []struct {
		name string
		rrs  []string
	}{{"answer", e.Answer}, {"authority", e.Authority}, {"additional", e.Additional}} {
		if len(sec.rrs) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s:\n", sec.name)
		for _, rr := range sec.rrs {
			fmt.Fprintf(&b, "  %s\n", strings.ReplaceAll(rr, "\t", " "))
		}
	}
	if e.TTL != nil {
		fmt.Fprintf(&b, "ttl: %ds, from %s\n", *e.TTL, e.TTLSource)
	}
	if e.EDE != "" {
		fmt.Fprintf(&b, "extended error: %s\n", cell(e.EDE, 400))
	}
	if s := e.Service; s != nil {
		p := s.Policy
		served := "passing instances"
		if p.ServeWarning {
			served = "passing and warning instances"
		}
		open := "not failing open"
		if p.FailOpen {
			open = "FAILING OPEN: every instance not in maintenance is served"
		}
		fmt.Fprintf(&b, "policy: %s; min_healthy_percent %d (%s); %s\n", served, p.MinHealthyPercent, p.MinHealthyFrom, open)
		fmt.Fprintf(&b, "instances of %s:\n", s.Name)
		if _, err := io.WriteString(w, b.String()); err != nil {
			return err
		}
		b.Reset()
		tw := newTable(w, "  ID", "ADDRESS", "STATUS", "ANSWER", "WHY")
		for _, in := range s.Instances {
			verdict := "served"
			if !in.Served {
				verdict = "left out"
			}
			tw.row("  "+in.ID, joinHostPort(in.Address, in.Port), in.Status, verdict, cell(in.Reason, 120))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if in := e.Instance; in != nil {
		fmt.Fprintf(&b, "instance %s/%s: %s since %s: %s\n", in.Service, in.ID, in.Status, in.Since.Format("2006-01-02T15:04:05Z07:00"), outputOf(*in))
	}
	fmt.Fprintf(&b, "note: %s\n", e.Note)
	_, err := io.WriteString(w, b.String())
	return err
}
