package main

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
	"github.com/urfave/cli/v2"

	"disco/dnsserver"
	"disco/tsig"
)

// updateFlags are the flags of DNS UPDATE and the reverse zones.
func updateFlags(env func(string) []string) []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "update-allow", Usage: "key:NAME of a --tsig-keys key whose signed DNS UPDATEs (RFC 2136) register and deregister instances; repeatable, comma-separated in the environment (default: nobody)", EnvVars: env("update-allow")},
		&cli.StringSliceFlag{Name: "reverse-zone", Usage: "CIDR on an octet (IPv4) or nibble (IPv6) boundary whose in-addr.arpa./ip6.arpa. zone to serve, with a PTR for every registered address; repeatable, comma-separated in the environment", EnvVars: env("reverse-zone")},
	}
}

// updateConfig is what those flags say.
type updateConfig struct {
	// Allow names the keys (canonical) that may update.
	Allow        []string
	ReverseZones []netip.Prefix
}

// updateConfigFrom reads and checks the update flags against the keys
// loaded from keysFile (keys is nil when none loaded), reporting every
// problem.
func updateConfigFrom(c *cli.Context, keys *tsig.Keyring, keysFile string) (updateConfig, error) {
	var cfg updateConfig
	var errs []error
	for _, s := range splitItems(c.StringSlice("update-allow")) {
		name, ok := strings.CutPrefix(s, "key:")
		if _, valid := dns.IsDomainName(name); !ok || !valid || name == "" || name == "." {
			errs = append(errs, fmt.Errorf("--update-allow %q: want key:NAME, the name of a key in --tsig-keys", s))
			continue
		}
		name = dns.CanonicalName(name)
		if _, ok := keys.Key(name); !ok && (keysFile == "" || keys != nil) {
			errs = append(errs, fmt.Errorf("--update-allow %s: no key %q in --tsig-keys %s", s, strings.TrimSuffix(name, "."), keysName(keysFile)))
		}
		if !slices.Contains(cfg.Allow, name) {
			cfg.Allow = append(cfg.Allow, name)
		}
	}
	for _, s := range splitItems(c.StringSlice("reverse-zone")) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("--reverse-zone %q: want a CIDR prefix such as 10.0.0.0/8 or 2001:db8::/32", s))
			continue
		}
		if _, err := dnsserver.ReverseZoneName(p); err != nil {
			errs = append(errs, fmt.Errorf("--reverse-zone %s: %w", s, err))
			continue
		}
		cfg.ReverseZones = append(cfg.ReverseZones, p)
	}
	return cfg, errors.Join(errs...)
}
