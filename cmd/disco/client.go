package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"disco/admin"
	"disco/registry"
)

// clientTimeout bounds one request of a client command.
const clientTimeout = 30 * time.Second

// clientCommands returns the commands that talk to a running server's admin API.
func clientCommands() []*cli.Command {
	return []*cli.Command{
		registerCommand(),
		deregisterCommand(),
		servicesCommand(),
		instancesCommand(),
		heartbeatCommand(),
		maintenanceCommand(),
		settingsCommand(),
	}
}

// connFlags are the flags every client command has.
func connFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "admin", Value: "http://127.0.0.1:8054", EnvVars: []string{"DISCO_ADMIN"},
			Usage: "`URL` of the disco server's admin API"},
		&cli.StringFlag{Name: "token", EnvVars: []string{"DISCO_TOKEN"},
			Usage: "admin API bearer `TOKEN` (the server's --admin-token)"},
		&cli.StringFlag{Name: "ca-cert", EnvVars: []string{"DISCO_CA_CERT"},
			Usage: "PEM `FILE` of the CA certificates to trust (instead of the system's) for an https:// --admin"},
	}
}

// jsonFlag is --json of the read commands; every command with it also
// gets --output table|json (see addOutputFlag).
func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print the API's JSON instead of a table (for scripts; the same as --output json)"}
}

// clientCommand fills in what every client command shares: the connection
// flags and usage errors that say the usage instead of printing the help.
func clientCommand(c *cli.Command) *cli.Command {
	c.Flags = append(c.Flags, connFlags()...)
	c.Before = func(cc *cli.Context) error {
		if err := checkAdminURL(cc.String("admin")); err != nil {
			return err
		}
		_, err := httpClient(cc.String("ca-cert"))
		return err
	}
	c.OnUsageError = func(cc *cli.Context, err error, _ bool) error {
		return fmt.Errorf("%w; usage: %s (see disco %s --help)", err, usageLine(c), c.Name)
	}
	return c
}

// checkAdminURL checks --admin: http:// or https://, a host and a port
// (without a scheme, http:// is meant).
func checkAdminURL(s string) error {
	raw := strings.TrimSpace(s)
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	bad := err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == ""
	if !bad && u.Port() != "" {
		p, err := strconv.Atoi(u.Port())
		bad = err != nil || p < 1 || p > 65535
	}
	if bad {
		return fmt.Errorf("--admin %q: want the admin API's URL, such as http://127.0.0.1:8054", s)
	}
	return nil
}

// usageLine is the first line of a command's UsageText, or else its name
// and ArgsUsage.
func usageLine(c *cli.Command) string {
	if c.UsageText == "" {
		return strings.TrimSpace(c.HelpName + " " + c.ArgsUsage)
	}
	line, _, _ := strings.Cut(c.UsageText, "\n")
	return line
}

// wantArgs checks the number of positional arguments.
func wantArgs(c *cli.Context, n int) error {
	if c.NArg() == n {
		return nil
	}
	return fmt.Errorf("%s takes %d argument%s, got %d; usage: %s (see disco %s --help)",
		c.Command.Name, n, plural(n), c.NArg(), usageLine(c.Command), c.Command.Name)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// newClient returns the admin API client the flags describe. The
// command's Before has checked --ca-cert.
func newClient(c *cli.Context) *admin.Client {
	hc, err := httpClient(c.String("ca-cert"))
	if err != nil {
		hc = &http.Client{Transport: failingTransport{err}}
	}
	return admin.NewClient(c.String("admin"), c.String("token"), hc)
}

// httpClient returns the HTTP client of the client commands, trusting
// only the CA certificates in the PEM file caFile when it is not empty.
func httpClient(caFile string) (*http.Client, error) {
	hc := &http.Client{Timeout: clientTimeout}
	if caFile == "" {
		return hc, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-cert: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca-cert %s: no PEM certificate in it", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	hc.Transport = tr
	return hc, nil
}

// failingTransport fails every request with err.
type failingTransport struct{ err error }

func (t failingTransport) RoundTrip(*http.Request) (*http.Response, error) { return nil, t.err }

func registerCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "register",
		Usage:     "register or replace an instance of a service",
		UsageText: `disco register <service> <id> <address>:<port> [--tag T]... [--meta k=v]... [--weight N] [--priority N] [--check-http URL | --check-tcp HOST:PORT | --check-ttl DUR] [--interval DUR] [--timeout DUR]`,
		Description: `Registers instance <id> of <service> at <address>:<port>, replacing an
instance with the same id. The address is an IPv4 or IPv6 literal; write IPv6
in brackets. An instance with a check starts critical and is served by DNS
once its first check passes; one without checks is served at once.

Examples:
   disco register web web-1 10.0.0.1:8080
   disco register web web-2 10.0.0.2:8080 --tag v2 --meta version=2.1 --check-http http://10.0.0.2:8080/health
   disco register db db-1 [fd00::5]:5432 --check-tcp [fd00::5]:5432 --interval 5s --timeout 1s
   disco register batch worker-1 10.0.0.9:9000 --check-ttl 30s   # then: disco heartbeat batch worker-1`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "tag", Usage: "tag the instance with `T` (repeatable)"},
			&cli.GenericFlag{Name: "meta", Value: &multiValue{}, Usage: "metadata `k=v`, shown as TXT (repeatable)"},
			&cli.IntFlag{Name: "weight", Usage: "SRV weight `N` (0-65535)", DefaultText: "1"},
			&cli.IntFlag{Name: "priority", Usage: "SRV priority `N` (0-65535)", DefaultText: "1"},
			&cli.StringFlag{Name: "check-http", Usage: "check with a GET of `URL`: 2xx passing, 429 warning"},
			&cli.StringFlag{Name: "check-tcp", Usage: "check by connecting to `HOST:PORT`"},
			&cli.DurationFlag{Name: "check-ttl", Usage: "expect a heartbeat at least every `DUR`"},
			&cli.DurationFlag{Name: "interval", Usage: "run the check every `DUR`", DefaultText: registry.DefaultInterval.String()},
			&cli.DurationFlag{Name: "timeout", Usage: "give the check `DUR` to answer", DefaultText: registry.DefaultTimeout.String() + ", at most half the interval"},
		},
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 3); err != nil {
				return err
			}
			service, id := c.Args().Get(0), c.Args().Get(1)
			addr, port, err := parseAddrPort(c.Args().Get(2))
			if err != nil {
				return fmt.Errorf("%w; usage: %s", err, usageLine(c.Command))
			}
			reg := registry.Registration{Address: addr, Port: port, Tags: c.StringSlice("tag")}
			if reg.Meta, err = parseMeta(c.Generic("meta").(*multiValue).values); err != nil {
				return err
			}
			if c.IsSet("weight") {
				reg.Weight = new(c.Int("weight"))
			}
			if c.IsSet("priority") {
				reg.Priority = new(c.Int("priority"))
			}
			if reg.Checks, err = checkFlags(c); err != nil {
				return err
			}
			in, err := newClient(c).Register(c.Context, service, id, reg)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.App.Writer, "registered %s/%s at %s: %s (%s)\n",
				in.Service, in.ID, joinHostPort(in.Address, in.Port), in.Status, in.Output)
			return err
		},
	})
}

// parseAddrPort splits "10.0.0.1:80" or "[fd00::1]:80".
func parseAddrPort(s string) (string, int, error) {
	host, ps, err := net.SplitHostPort(s)
	if err != nil {
		if strings.Count(s, ":") > 1 && !strings.HasPrefix(s, "[") {
			return "", 0, fmt.Errorf("%q is not <address>:<port>: write an IPv6 address in brackets, as in [fd00::1]:5432", s)
		}
		return "", 0, fmt.Errorf("%q is not <address>:<port>, as in 10.0.0.1:8080", s)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return "", 0, fmt.Errorf("address %q in %q is not an IPv4 or IPv6 literal", host, s)
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("port %q in %q must be a number 1-65535", ps, s)
	}
	return host, port, nil
}

func joinHostPort(addr string, port int) string {
	return net.JoinHostPort(addr, strconv.Itoa(port))
}

// multiValue collects every value of a repeated flag, commas included.
type multiValue struct{ values []string }

func (m *multiValue) Set(v string) error {
	m.values = append(m.values, v)
	return nil
}

func (m *multiValue) String() string { return strings.Join(m.values, " ") }

func parseMeta(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	meta := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--meta %q: want key=value", kv)
		}
		if _, dup := meta[k]; dup {
			return nil, fmt.Errorf("--meta %q: key %q given twice", kv, k)
		}
		meta[k] = v
	}
	return meta, nil
}

// checkFlags builds the check the register flags describe, if any.
func checkFlags(c *cli.Context) ([]registry.Check, error) {
	var kinds []string
	for _, name := range []string{"check-http", "check-tcp", "check-ttl"} {
		if c.IsSet(name) {
			kinds = append(kinds, "--"+name)
		}
	}
	switch len(kinds) {
	case 0:
		if c.IsSet("interval") || c.IsSet("timeout") {
			return nil, errors.New("--interval and --timeout apply to a check: add --check-http, --check-tcp or --check-ttl")
		}
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("%s are mutually exclusive: give one check", strings.Join(kinds, " and "))
	}
	var ch registry.Check
	var err error
	if ch.Interval, err = durationFlag(c, "interval"); err != nil {
		return nil, err
	}
	if ch.Timeout, err = durationFlag(c, "timeout"); err != nil {
		return nil, err
	}
	switch kinds[0] {
	case "--check-http":
		ch.Type, ch.URL = registry.CheckHTTP, c.String("check-http")
	case "--check-tcp":
		ch.Type, ch.Address = registry.CheckTCP, c.String("check-tcp")
	case "--check-ttl":
		ch.Type = registry.CheckTTL
		if ch.TTL, err = durationFlag(c, "check-ttl"); err != nil {
			return nil, err
		}
	}
	return []registry.Check{ch}, nil
}

// durationFlag reads a duration flag; unset is 0 (the server's default).
func durationFlag(c *cli.Context, name string) (registry.Duration, error) {
	if !c.IsSet(name) {
		return 0, nil
	}
	d := c.Duration(name)
	if d <= 0 {
		return 0, fmt.Errorf("--%s %s: want a positive duration such as 10s or 500ms", name, d)
	}
	return registry.Duration(d), nil
}

func deregisterCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "deregister",
		Usage:     "remove an instance",
		UsageText: "disco deregister <service> <id>",
		Description: `Removes instance <id> of <service>; DNS stops serving it at once.
Deregistering is idempotent: an instance that is not registered (already
deregistered, or never registered) is no error, and nothing changes.

Examples:
   disco deregister web web-1`,
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 2); err != nil {
				return err
			}
			d, err := newClient(c).Deregister(c.Context, c.Args().Get(0), c.Args().Get(1))
			if err != nil {
				return err
			}
			if !d.Removed {
				_, err = fmt.Fprintf(c.App.Writer, "%s/%s is not registered; nothing to deregister\n", d.Service, d.ID)
				return err
			}
			_, err = fmt.Fprintf(c.App.Writer, "deregistered %s/%s; DNS no longer serves it\n", d.Service, d.ID)
			return err
		},
	})
}

func servicesCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "services",
		Usage:     "list services with their instance counts by status",
		UsageText: "disco services [--json]",
		Description: `Lists every service with how many of its instances are passing, warning,
critical and in maintenance.

Examples:
   disco services
   disco services --json | jq -r '.services[].name'`,
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 0); err != nil {
				return err
			}
			list, err := newClient(c).Services(c.Context)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, list)
			}
			tw := newTable(c.App.Writer, "SERVICE", "INSTANCES", "PASSING", "WARNING", "CRITICAL", "MAINT")
			for _, s := range list.Services {
				tw.row(s.Name, s.Instances, s.Counts.Passing, s.Counts.Warning, s.Counts.Critical, s.Counts.Maintenance)
			}
			return tw.Flush()
		},
	})
}

func instancesCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "instances",
		Usage:     "list a service's instances with their status and last check output",
		UsageText: "disco instances <service> [--json]",
		Description: `Lists the instances of <service>: address, status (maintenance wins over
what the checks say), tags, when the status began (UTC) and the last check's
output.

Examples:
   disco instances web
   disco instances web --json | jq -r '.instances[] | select(.status=="critical") | .id'`,
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 1); err != nil {
				return err
			}
			svc, err := newClient(c).Service(c.Context, c.Args().First())
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, svc)
			}
			tw := newTable(c.App.Writer, "ID", "ADDRESS", "PORT", "STATUS", "TAGS", "SINCE", "OUTPUT")
			for _, in := range svc.Instances {
				tags := strings.Join(in.Tags, ",")
				if tags == "" {
					tags = "-"
				}
				tw.row(in.ID, in.Address, in.Port, in.Status, tags, in.Since.UTC().Format(time.RFC3339), outputOf(in))
			}
			return tw.Flush()
		},
	})
}

// outputOf is what the OUTPUT column shows: the last check output, or the
// drain reason and the checks' verdict while in maintenance.
func outputOf(in admin.InstanceView) string {
	out := in.Output
	if m := in.Maintenance; m != nil {
		out = "drained"
		if m.Reason != "" {
			out += ": " + m.Reason
		}
		out += " (checks: " + string(in.Health) + ")"
	}
	return cell(out, 80)
}

// cell makes s safe for one table cell: no control characters, at most
// max runes.
func cell(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > max {
		s = string(r[:max-1]) + "…"
	}
	if s == "" {
		s = "-"
	}
	return s
}

func heartbeatCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "heartbeat",
		Usage:     "renew an instance's ttl check",
		UsageText: "disco heartbeat <service> <id>",
		Description: `Tells the server that instance <id> of <service> is alive, renewing its ttl
check (registered with --check-ttl). Send one more often than the ttl.

Examples:
   disco heartbeat batch worker-1
   while sleep 10; do disco heartbeat batch worker-1; done`,
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 2); err != nil {
				return err
			}
			in, err := newClient(c).Heartbeat(c.Context, c.Args().Get(0), c.Args().Get(1))
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.App.Writer, "heartbeat recorded for %s/%s: %s\n", in.Service, in.ID, in.Status)
			return err
		},
	})
}

func maintenanceCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "maintenance",
		Usage:     "drain (on) or undrain (off) an instance",
		UsageText: "disco maintenance <service> <id> on|off [--reason R]",
		Description: `Puts instance <id> of <service> in maintenance (on): DNS stops serving it,
whatever its checks say, until it is taken out again (off). Maintenance
survives restarts of the server.

Examples:
   disco maintenance web web-1 on --reason "kernel upgrade"
   disco maintenance web web-1 off`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "reason", Usage: "why the instance is drained, shown to operators (`R`)"},
		},
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 3); err != nil {
				return err
			}
			var enabled bool
			switch mode := strings.ToLower(c.Args().Get(2)); mode {
			case "on":
				enabled = true
			case "off":
				if c.IsSet("reason") {
					return errors.New("--reason applies to maintenance on, not off")
				}
			default:
				return fmt.Errorf("%q is neither on nor off; usage: %s", c.Args().Get(2), usageLine(c.Command))
			}
			in, err := newClient(c).Maintenance(c.Context, c.Args().Get(0), c.Args().Get(1), enabled, c.String("reason"))
			if err != nil {
				return err
			}
			if enabled {
				_, err = fmt.Fprintf(c.App.Writer, "%s/%s is in maintenance; DNS no longer serves it\n", in.Service, in.ID)
			} else {
				_, err = fmt.Fprintf(c.App.Writer, "%s/%s is out of maintenance: %s\n", in.Service, in.ID, in.Status)
			}
			return err
		},
	})
}

func settingsCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "settings",
		Usage:     "show or change a service's settings",
		UsageText: "disco settings <service> [--dns-ttl DUR] [--min-healthy-percent N] [--reset]",
		Description: `Without flags, shows the settings of <service>. With flags, changes the
given settings and keeps the others; --reset first returns every setting to
the server's defaults. Setting a service that has no instances creates it.

Examples:
   disco settings web
   disco settings web --dns-ttl 30s
   disco settings web --min-healthy-percent 50 --output json
   disco settings web --reset`,
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "dns-ttl", Usage: "TTL of the service's DNS records, `DUR` in whole seconds"},
			&cli.IntFlag{Name: "min-healthy-percent", Usage: "serve every instance when fewer than `N` percent pass (fail open)"},
			&cli.BoolFlag{Name: "reset", Usage: "return every setting to the server's default first"},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 1); err != nil {
				return err
			}
			service := c.Args().First()
			var ttl *int
			if c.IsSet("dns-ttl") {
				s, err := ttlSeconds(c, "dns-ttl")
				if err != nil {
					return err
				}
				ttl = &s
			}
			cl := newClient(c)
			change := c.IsSet("dns-ttl") || c.IsSet("min-healthy-percent") || c.Bool("reset")
			var set registry.Settings
			if !change || !c.Bool("reset") {
				svc, err := cl.Service(c.Context, service)
				var ae *admin.APIError
				switch {
				case err == nil:
					set = svc.Settings
				case change && errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound:
				default:
					return err
				}
				if !change {
					return printSettings(c, svc)
				}
			}
			if ttl != nil {
				set.DNSTTL = ttl
			}
			if c.IsSet("min-healthy-percent") {
				set.MinHealthyPercent = new(c.Int("min-healthy-percent"))
			}
			svc, err := cl.SetSettings(c.Context, service, set)
			if err != nil {
				return err
			}
			return printSettings(c, svc)
		},
	})
}

// ttlSeconds reads a TTL flag, which must be whole seconds.
func ttlSeconds(c *cli.Context, name string) (int, error) {
	d := c.Duration(name)
	if d < 0 || d%time.Second != 0 || d > math.MaxInt32*time.Second {
		return 0, fmt.Errorf("--%s %s: want whole seconds, such as 30s or 30", name, d)
	}
	return int(d / time.Second), nil
}

func printSettings(c *cli.Context, svc *admin.ServiceView) error {
	if c.Bool("json") {
		return printJSON(c.App.Writer, svc)
	}
	opt := func(p *int, unit string) string {
		if p == nil {
			return "default"
		}
		return strconv.Itoa(*p) + unit
	}
	tw := newTable(c.App.Writer, "SERVICE", "DNS_TTL", "MIN_HEALTHY")
	tw.row(svc.Name, opt(svc.Settings.DNSTTL, "s"), opt(svc.Settings.MinHealthyPercent, "%"))
	return tw.Flush()
}

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// table writes aligned columns.
type table struct{ *tabwriter.Writer }

func newTable(w io.Writer, header ...any) table {
	t := table{tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t table) row(cells ...any) {
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(t, "\t")
		}
		fmt.Fprint(t, c)
	}
	fmt.Fprintln(t)
}
