package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/urfave/cli/v2"

	"disco/cluster"
	"disco/dnsserver"
	"disco/store/etcdstore"
)

// serveConfig is everything "disco serve" is told by flags and environment.
type serveConfig struct {
	DNSAddr           string
	AdminAddr         string
	Domain            string
	DataDir           string
	ZonesDir          string
	AdminToken        string
	DNSTTL            uint32
	NegativeTTL       uint32
	NSAddrs           []netip.Addr
	ServeWarning      bool
	MinHealthyPercent int
	LogLevel          slog.Level
	LogFormat         string
	TCPIdleTimeout    time.Duration
	MaxTCPConns       int
	ShutdownTimeout   time.Duration
	QueryLog          bool
	// CommitBatch caps the writes per durable commit (0: no cap). One
	// commit per write (1) is only for measuring what group commit buys.
	CommitBatch int
	// UDPBufferBytes is dnsserver.ServerConfig.UDPBufferBytes.
	UDPBufferBytes int
	// CommitDelay is registry.Config.CommitDelay.
	CommitDelay  time.Duration
	RRL          dnsserver.RRLConfig
	AdminTLSCert string
	AdminTLSKey  string

	// Store is "bolt" (the default; "" means it too) or "etcd".
	Store string
	// Etcd says how to reach etcd with Store "etcd".
	Etcd        etcdstore.ClientConfig
	EtcdPrefix  string
	EtcdTimeout time.Duration
	// MemberTTL is how long a server that stopped renewing its membership
	// keeps its share of the health checks.
	MemberTTL time.Duration
}

// DefaultCommitDelay is the default of --commit-delay: on a disk whose
// sync takes a millisecond, about one more write per commit at 1,000
// writes per second, for half the syncs.
const DefaultCommitDelay = 2 * time.Millisecond

func serveFlags() []cli.Flag {
	env := func(name string) []string {
		return []string{"DISCO_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
	}
	str := func(name, value, usage string) cli.Flag {
		return &cli.StringFlag{Name: name, Value: value, Usage: usage, EnvVars: env(name)}
	}
	return []cli.Flag{
		str("dns-addr", "127.0.0.1:8053", "UDP and TCP address to answer DNS on"),
		str("admin-addr", "127.0.0.1:8054", "address of the admin HTTP API"),
		str("domain", "disco.internal.", "the discovery domain"),
		str("data-dir", "./disco-data", "directory of the durable registry"),
		str("zones-dir", "", "directory of *.zone files to serve beside the discovery domain"),
		str("admin-token", "", "bearer token required by the admin API (required off loopback)"),
		&cli.DurationFlag{Name: "dns-ttl", Value: 5 * time.Second, Usage: "TTL of answers for services that set none (whole seconds)", EnvVars: env("dns-ttl")},
		&cli.DurationFlag{Name: "negative-ttl", Value: 5 * time.Second, Usage: "SOA minimum: how long resolvers cache NXDOMAIN and NODATA", EnvVars: env("negative-ttl")},
		str("ns-addr", "", "comma-separated addresses published for the apex NS ns1.<domain> (default: the DNS listen address, or 127.0.0.1)"),
		&cli.BoolFlag{Name: "serve-warning", Usage: "serve instances in warning next to passing ones", EnvVars: env("serve-warning")},
		&cli.IntFlag{Name: "min-healthy-percent", Usage: "fail open: when fewer than this share of a service's instances pass, serve them all (0: off)", EnvVars: env("min-healthy-percent")},
		str("log-level", "info", "debug, info, warn or error"),
		str("log-format", "text", "text or json"),
		&cli.DurationFlag{Name: "tcp-idle-timeout", Value: 10 * time.Second, Usage: "close DNS TCP connections idle this long", EnvVars: env("tcp-idle-timeout")},
		&cli.IntFlag{Name: "max-tcp-conns", Value: 1000, Usage: "most concurrent DNS TCP connections", EnvVars: env("max-tcp-conns")},
		&cli.IntFlag{Name: "udp-buffer", Value: 4 << 20, Usage: "receive and send buffer of each DNS UDP socket, in bytes (above net.core.rmem_max only with CAP_NET_ADMIN)", EnvVars: env("udp-buffer")},
		&cli.DurationFlag{Name: "commit-delay", Value: DefaultCommitDelay, Usage: "longest a durable commit waits for concurrent writes to share it (never more than a commit takes; a lone writer never waits; 0: never)", EnvVars: env("commit-delay")},
		&cli.DurationFlag{Name: "shutdown-timeout", Value: 10 * time.Second, Usage: "longest graceful stop on SIGTERM", EnvVars: env("shutdown-timeout")},
		&cli.BoolFlag{Name: "query-log", Usage: "log every answered DNS query at info (component=query), whatever --log-level says", EnvVars: env("query-log")},
		&cli.IntFlag{Name: "rrl-rate", Usage: "response rate limiting: UDP responses per second per client prefix", DefaultText: "0, off", EnvVars: env("rrl-rate")},
		&cli.IntFlag{Name: "rrl-burst", Usage: "responses a client prefix may get at once", DefaultText: "the rate", EnvVars: env("rrl-burst")},
		&cli.IntFlag{Name: "rrl-slip", Value: dnsserver.DefaultRRLSlip, Usage: "send every Nth rate-limited response truncated so real clients retry over TCP (0: drop all)", EnvVars: env("rrl-slip")},
		&cli.IntFlag{Name: "rrl-ipv4-prefix", Value: dnsserver.DefaultRRLIPv4PrefixLen, Usage: "IPv4 clients in one prefix of this length share a rate limit", EnvVars: env("rrl-ipv4-prefix")},
		&cli.IntFlag{Name: "rrl-ipv6-prefix", Value: dnsserver.DefaultRRLIPv6PrefixLen, Usage: "IPv6 clients in one prefix of this length share a rate limit", EnvVars: env("rrl-ipv6-prefix")},
		str("admin-tls-cert", "", "PEM certificate (chain) file: serve the admin API over HTTPS (with --admin-tls-key)"),
		str("admin-tls-key", "", "PEM private key file of --admin-tls-cert"),
		str("store", "bolt", "where the registry lives: bolt (a file in --data-dir) or etcd (shared by several disco servers)"),
		str("etcd-endpoints", "", "comma-separated etcd client URLs, e.g. http://10.0.0.1:2379 (with --store etcd)"),
		str("etcd-prefix", etcdstore.DefaultPrefix, "etcd key prefix of the registry; servers sharing it share the registry"),
		str("etcd-ca", "", "PEM file of the CAs of the etcd members' certificates"),
		str("etcd-cert", "", "PEM client certificate for etcd"),
		str("etcd-key", "", "PEM key of --etcd-cert"),
		str("etcd-username", "", "etcd user, when etcd auth is enabled"),
		str("etcd-password", "", "password of --etcd-username"),
		&cli.DurationFlag{Name: "etcd-timeout", Value: etcdstore.DefaultTimeout, Usage: "longest wait for etcd per write; a write that takes longer fails with 503", EnvVars: env("etcd-timeout")},
		&cli.DurationFlag{Name: "member-ttl", Value: cluster.DefaultTTL, Usage: "with --store etcd: how soon the other servers take over the health checks of a server that died", EnvVars: env("member-ttl")},
	}
}

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the disco server",
		Description: `Serves DNS for the discovery domain (and any zone files) and the admin API.
Every flag can also be set with an environment variable DISCO_<FLAG>,
e.g. DISCO_DNS_ADDR for --dns-addr.

Examples:
   disco serve
   disco serve --dns-addr 0.0.0.0:53 --admin-addr 10.0.0.2:8054 --admin-token "$TOKEN"
   disco serve --zones-dir /etc/disco/zones --dns-ttl 10s --log-format json
   disco serve --query-log --log-level warn      # only warnings and one line per query
   disco serve --rrl-rate 50 --admin-tls-cert admin.crt --admin-tls-key admin.key
   disco serve --store etcd --etcd-endpoints http://10.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379`,
		Flags: serveFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("serve takes no arguments, got %q (flags are written --name value; see disco serve --help)", c.Args().First())
			}
			cfg, err := serveConfigFrom(c)
			if err != nil {
				return err
			}
			log := newLogger(c.App.ErrWriter, cfg.LogLevel, cfg.LogFormat)
			return runServer(c.Context, cfg, log, nil)
		},
	}
}

// serveConfigFrom reads and checks the flags, reporting every problem.
func serveConfigFrom(c *cli.Context) (serveConfig, error) {
	cfg := serveConfig{
		DNSAddr:           c.String("dns-addr"),
		AdminAddr:         c.String("admin-addr"),
		Domain:            dns.CanonicalName(c.String("domain")),
		DataDir:           c.String("data-dir"),
		ZonesDir:          c.String("zones-dir"),
		AdminToken:        c.String("admin-token"),
		ServeWarning:      c.Bool("serve-warning"),
		MinHealthyPercent: c.Int("min-healthy-percent"),
		LogFormat:         c.String("log-format"),
		TCPIdleTimeout:    c.Duration("tcp-idle-timeout"),
		MaxTCPConns:       c.Int("max-tcp-conns"),
		ShutdownTimeout:   c.Duration("shutdown-timeout"),
		QueryLog:          c.Bool("query-log"),
		CommitDelay:       c.Duration("commit-delay"),
		UDPBufferBytes:    c.Int("udp-buffer"),
		RRL: dnsserver.RRLConfig{Rate: c.Int("rrl-rate"), Burst: c.Int("rrl-burst"), Slip: c.Int("rrl-slip"),
			IPv4PrefixLen: c.Int("rrl-ipv4-prefix"), IPv6PrefixLen: c.Int("rrl-ipv6-prefix")},
		AdminTLSCert: c.String("admin-tls-cert"),
		AdminTLSKey:  c.String("admin-tls-key"),
		Store:        c.String("store"),
		Etcd: etcdstore.ClientConfig{
			Endpoints: splitList(c.String("etcd-endpoints")),
			CAFile:    c.String("etcd-ca"), CertFile: c.String("etcd-cert"), KeyFile: c.String("etcd-key"),
			Username: c.String("etcd-username"), Password: c.String("etcd-password"),
		},
		EtcdPrefix:  c.String("etcd-prefix"),
		EtcdTimeout: c.Duration("etcd-timeout"),
		MemberTTL:   c.Duration("member-ttl"),
	}
	var errs []error
	var err error
	if cfg.DNSTTL, err = parseTTL(c.String("dns-ttl")); err != nil {
		errs = append(errs, fmt.Errorf("--dns-ttl: %w", err))
	}
	if cfg.NegativeTTL, err = parseTTL(c.String("negative-ttl")); err != nil {
		errs = append(errs, fmt.Errorf("--negative-ttl: %w", err))
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.String("log-level")))
	}
	if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", cfg.LogFormat))
	}
	if cfg.NSAddrs, err = nsAddrs(c.String("ns-addr"), cfg.DNSAddr); err != nil {
		errs = append(errs, err)
	}
	if err := cfg.validate(); err != nil {
		errs = append(errs, err)
	}
	return cfg, errors.Join(errs...)
}

// validate checks what the flags cannot check alone.
func (c *serveConfig) validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.DNSAddr); err != nil {
		errs = append(errs, fmt.Errorf("--dns-addr %q: want host:port", c.DNSAddr))
	}
	if _, _, err := net.SplitHostPort(c.AdminAddr); err != nil {
		errs = append(errs, fmt.Errorf("--admin-addr %q: want host:port", c.AdminAddr))
	}
	if _, ok := dns.IsDomainName(c.Domain); !ok || c.Domain == "." {
		errs = append(errs, fmt.Errorf("--domain %q is not a domain name", c.Domain))
	}
	switch c.Store {
	case "", "bolt":
		if c.DataDir == "" {
			errs = append(errs, errors.New("--data-dir is required"))
		}
	case "etcd":
		if len(c.Etcd.Endpoints) == 0 {
			errs = append(errs, errors.New("--store etcd needs --etcd-endpoints (e.g. http://127.0.0.1:2379)"))
		} else if err := c.Etcd.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--etcd-*: %w", err))
		}
		if c.EtcdPrefix == "" {
			errs = append(errs, errors.New("--etcd-prefix must not be empty"))
		}
		if c.EtcdTimeout <= 0 {
			errs = append(errs, errors.New("--etcd-timeout must be positive"))
		}
		if c.MemberTTL < time.Second {
			errs = append(errs, fmt.Errorf("--member-ttl %s: want at least 1s", c.MemberTTL))
		}
	default:
		errs = append(errs, fmt.Errorf("--store %q: want bolt or etcd", c.Store))
	}
	if c.ZonesDir != "" {
		if fi, err := os.Stat(c.ZonesDir); err != nil {
			errs = append(errs, fmt.Errorf("--zones-dir %s: %w", c.ZonesDir, pathErr(err)))
		} else if !fi.IsDir() {
			errs = append(errs, fmt.Errorf("--zones-dir %s is not a directory", c.ZonesDir))
		}
	}
	if c.MinHealthyPercent < 0 || c.MinHealthyPercent > 100 {
		errs = append(errs, fmt.Errorf("--min-healthy-percent %d: want 0-100", c.MinHealthyPercent))
	}
	if c.MaxTCPConns < 1 {
		errs = append(errs, fmt.Errorf("--max-tcp-conns %d: want at least 1", c.MaxTCPConns))
	}
	if c.UDPBufferBytes < 64<<10 || c.UDPBufferBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("--udp-buffer %d: want 65536 (64 KiB) to 1073741824 (1 GiB) bytes", c.UDPBufferBytes))
	}
	if c.CommitDelay < 0 || c.CommitDelay > time.Second {
		errs = append(errs, fmt.Errorf("--commit-delay %s: want 0 to 1s", c.CommitDelay))
	}
	if c.TCPIdleTimeout <= 0 || c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("--tcp-idle-timeout and --shutdown-timeout must be positive"))
	}
	if err := c.RRL.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("response rate limiting (--rrl-*): %w", err))
	}
	if (c.AdminTLSCert == "") != (c.AdminTLSKey == "") {
		errs = append(errs, errors.New("--admin-tls-cert and --admin-tls-key go together: give both or neither"))
	}
	return errors.Join(errs...)
}

// pathErr is the cause of a file system error, without the path that the
// caller names itself.
func pathErr(err error) error {
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// parseTTL reads a TTL given as seconds ("5") or a duration ("5s", "1m").
func parseTTL(s string) (uint32, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return uint32(n), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d%time.Second != 0 || d > 7*24*time.Hour {
		return 0, fmt.Errorf("%q: want whole seconds up to a week, e.g. \"5s\" or \"30\"", s)
	}
	return uint32(d / time.Second), nil
}

// nsAddrs returns the glue addresses of ns1.D: the list given, else the
// DNS listen address when it is a specific IP, else 127.0.0.1.
func nsAddrs(list, dnsAddr string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("--ns-addr %q is not an IP address", s)
		}
		out = append(out, a.Unmap())
	}
	if len(out) > 0 {
		return out, nil
	}
	if host, _, err := net.SplitHostPort(dnsAddr); err == nil {
		if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() {
			return []netip.Addr{a.Unmap()}, nil
		}
	}
	return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
}

// newLogger returns the process logger.
func newLogger(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// queryLogger returns the logger of the query log: log's output and format
// with component=query, at info whatever the level of log, so that
// --query-log alone turns it on.
func queryLogger(log *slog.Logger) *slog.Logger {
	return slog.New(infoHandler{log.Handler()}).With("component", "query")
}

// infoHandler passes records at info and above to its handler whatever
// that handler's own level.
type infoHandler struct{ slog.Handler }

func (h infoHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h infoHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return infoHandler{h.Handler.WithAttrs(as)}
}

func (h infoHandler) WithGroup(name string) slog.Handler {
	return infoHandler{h.Handler.WithGroup(name)}
}
