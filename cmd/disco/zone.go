package main

import (
	"errors"
	"fmt"
	"io"

	"disco/zones"

	"github.com/miekg/dns"
	"github.com/urfave/cli/v2"
)

// defaultDomain is the discovery domain when none is given.
const defaultDomain = "disco.internal."

// zoneCommand returns "disco zone" and its subcommands.
func zoneCommand() *cli.Command {
	return &cli.Command{
		Name:  "zone",
		Usage: "work with zone files",
		Description: `Commands for the static zone files "disco serve --zones-dir" serves.
A running server reloads its zones on SIGHUP or POST /v1/zones/reload.

Examples:
   disco zone check /etc/disco/zones/*.zone
   disco zone check example.com.zone && systemctl reload disco`,
		Subcommands: []*cli.Command{zoneCheckCommand()},
	}
}

func zoneCheckCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "validate zone files without a server",
		ArgsUsage: "FILE...",
		Description: `Loads each zone file the way "disco serve --zones-dir" does and reports
"FILE: ok (ORIGIN, N records)" for a good file, or one "FILE:LINE: problem"
line per problem. Exits non-zero if any file has a problem.

A zone's origin is its $ORIGIN line before the first record, or else the
file name without ".zone" (example.com.zone holds example.com.). Zone files
may not define names under service., addr. or instance. of the discovery
domain (--domain); a zone for the domain itself may supply its SOA, NS and
other static names. $INCLUDE is not supported.

Examples:
   disco zone check /etc/disco/zones/example.com.zone
   disco zone check /etc/disco/zones/*.zone
   disco zone check --domain corp.internal. corp.internal.zone`,
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:    "domain",
				Value:   defaultDomain,
				EnvVars: []string{"DISCO_DOMAIN"},
				Usage:   "discovery `DOMAIN`, whose service, addr and instance names zone files may not define",
			},
		},
		Action: func(c *cli.Context) error {
			return zoneCheck(c.App.Writer, c.App.ErrWriter, c.String("domain"), c.Args().Slice())
		},
	}
}

// zoneCheck validates files, printing a line per good file to stdout and a
// line per problem to stderr.
func zoneCheck(stdout, stderr io.Writer, domain string, files []string) error {
	if len(files) == 0 {
		return errors.New("zone check: name at least one zone file (disco zone check FILE...)")
	}
	reserved, err := discoveryReserved(domain)
	if err != nil {
		return fmt.Errorf("zone check: %w", err)
	}
	opts := zones.Options{Reserved: reserved}
	failed := 0
	origins := make(map[string]string) // origin -> first file holding it
	for _, f := range files {
		z, err := zones.ParseFile(f, opts)
		if err == nil {
			if prev, dup := origins[z.Origin()]; dup {
				err = &zones.Error{File: f, Msg: fmt.Sprintf("zone %s is already defined in %s", z.Origin(), prev)}
			}
		}
		if err != nil {
			failed++
			fmt.Fprintln(stderr, err)
			continue
		}
		origins[z.Origin()] = f
		fmt.Fprintf(stdout, "%s: ok (%s, %d records)\n", f, z.Origin(), z.Records())
	}
	if failed > 0 {
		return fmt.Errorf("zone check: %d of %d zone files have problems", failed, len(files))
	}
	return nil
}

// discoveryReserved returns the names under the discovery domain that the
// server answers itself, which zone files may not define.
func discoveryReserved(domain string) ([]string, error) {
	d := dns.CanonicalName(domain)
	if _, ok := dns.IsDomainName(d); !ok || d == "." {
		return nil, fmt.Errorf("domain %q is not a domain name", domain)
	}
	return []string{"service." + d, "addr." + d, "instance." + d, "b._dns-sd._udp." + d}, nil
}
