package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"disco/dnsserver"
	"disco/store"
	"disco/tsig"
)

// transferFlags are the flags of TSIG, zone transfers and NOTIFY.
func transferFlags(env func(string) []string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "tsig-keys", Usage: "file of TSIG keys in BIND syntax, as tsig-keygen writes them: signed requests are verified and answered signed", EnvVars: env("tsig-keys")},
		&cli.StringSliceFlag{Name: "transfer-allow", Usage: "who may transfer (AXFR/IXFR) the zones: key:NAME (signed with that key) or a CIDR; repeatable, comma-separated in the environment (default: nobody)", EnvVars: env("transfer-allow")},
		&cli.StringSliceFlag{Name: "notify", Usage: "HOST:PORT of a secondary to send NOTIFY at start-up and after each zone change; repeatable, comma-separated in the environment", EnvVars: env("notify")},
		&cli.StringFlag{Name: "notify-key", Usage: "name of the --tsig-keys key that signs NOTIFY messages (default: unsigned)", EnvVars: env("notify-key")},
	}
}

// transferConfig is what those flags say.
type transferConfig struct {
	TSIGKeysFile  string
	Keys          *tsig.Keyring
	TransferAllow []dnsserver.TransferRule
	Notify        []string
	NotifyKey     *tsig.Key
}

// transferConfigFrom reads and checks the transfer flags, reporting every
// problem.
func transferConfigFrom(c *cli.Context) (transferConfig, error) {
	var cfg transferConfig
	var errs []error
	cfg.TSIGKeysFile = c.String("tsig-keys")
	if cfg.TSIGKeysFile != "" {
		keys, err := tsig.LoadFile(cfg.TSIGKeysFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("--tsig-keys: %w", err))
		} else {
			cfg.Keys = keys
		}
	}
	keysLoaded := cfg.TSIGKeysFile == "" || cfg.Keys != nil
	for _, s := range splitItems(c.StringSlice("transfer-allow")) {
		r, err := dnsserver.ParseTransferRule(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("--transfer-allow: %w", err))
			continue
		}
		if _, ok := cfg.Keys.Key(r.Key); r.Key != "" && !ok && keysLoaded {
			errs = append(errs, fmt.Errorf("--transfer-allow %s: no key %q in --tsig-keys %s", s, strings.TrimSuffix(r.Key, "."), keysName(cfg.TSIGKeysFile)))
		}
		cfg.TransferAllow = append(cfg.TransferAllow, r)
	}
	for _, t := range splitItems(c.StringSlice("notify")) {
		addr, err := notifyTarget(t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cfg.Notify = append(cfg.Notify, addr)
	}
	if name := c.String("notify-key"); name != "" {
		switch k, ok := cfg.Keys.Key(name); {
		case ok:
			cfg.NotifyKey = k
		case keysLoaded:
			errs = append(errs, fmt.Errorf("--notify-key %q: no such key in --tsig-keys %s", name, keysName(cfg.TSIGKeysFile)))
		}
	}
	return cfg, errors.Join(errs...)
}

func keysName(file string) string {
	if file == "" {
		return "(not given)"
	}
	return file
}

// splitItems splits the comma-separated items of a repeatable flag.
func splitItems(values []string) []string {
	var out []string
	for _, v := range values {
		out = append(out, splitList(v)...)
	}
	return out
}

// notifyTarget checks a --notify value: HOST:PORT, or an address alone for
// port 53.
func notifyTarget(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if ip := net.ParseIP(strings.Trim(s, "[]")); ip != nil {
			return net.JoinHostPort(ip.String(), "53"), nil
		}
		return "", fmt.Errorf("--notify %q: want HOST:PORT, e.g. 192.0.2.53:53", s)
	}
	if host == "" || port == "" {
		return "", fmt.Errorf("--notify %q: want HOST:PORT, e.g. 192.0.2.53:53", s)
	}
	if _, err := net.LookupPort("udp", port); err != nil {
		return "", fmt.Errorf("--notify %q: bad port %q", s, port)
	}
	return s, nil
}

// zoneSerials returns the allocator of the discovery zone's serials: kept
// in the data directory with bolt, following the etcd revision with etcd.
func zoneSerials(cfg serveConfig, be *backend) (*dnsserver.Serials, error) {
	if be.etcd != nil {
		return dnsserver.NewSerials(dnsserver.SerialConfig{Floor: func() uint32 { return uint32(be.etcd.Revision()) }})
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	return dnsserver.NewSerials(dnsserver.SerialConfig{Store: store.NewSerialFile(cfg.DataDir)})
}
