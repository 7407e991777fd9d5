package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"disco/admin"
	"disco/registry"
)

// watchRetry is how long watch waits before asking again after a failure
// to reach the server.
const watchRetry = 2 * time.Second

func watchCommand() *cli.Command {
	return clientCommand(&cli.Command{
		Name:      "watch",
		Usage:     "print each change of the services, or of one service, as it happens",
		UsageText: "disco watch [<service>] [--json]",
		Description: `Follows the registry with blocking queries and prints a line for each
change as it happens: without <service>, each service that appears, changes
its counts or settings, or goes; with <service>, each instance that is
added, removed or changes status, address, tags or output. It starts with
the current state and runs until interrupted. If the server goes away
after the first answer (a restart, say), it says so and tries again.

With --json it prints every new answer of the API on one line instead.

Examples:
   disco watch
   disco watch web
   disco watch web --json | jq -c '.instances | map({id, status})'`,
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return fmt.Errorf("watch takes at most one service, got %d arguments; usage: %s (see disco watch --help)",
					c.NArg(), usageLine(c.Command))
			}
			hc, err := httpClient(c.String("ca-cert"))
			if err != nil {
				return err
			}
			hc.Timeout = admin.MaxWait + clientTimeout // the server answers within MaxWait
			cl := admin.NewClient(c.String("admin"), c.String("token"), hc)
			w := &watcher{out: c.App.Writer, errOut: c.App.ErrWriter, json: c.Bool("json")}
			var run func(context.Context) error
			if c.NArg() == 1 {
				name := registry.Fold(c.Args().First())
				run = func(ctx context.Context) error { return w.service(ctx, cl, name) }
			} else {
				run = func(ctx context.Context) error { return w.services(ctx, cl) }
			}
			if err := run(c.Context); err != nil && c.Context.Err() == nil {
				return err
			}
			return nil
		},
	})
}

// watcher prints changes.
type watcher struct {
	out, errOut io.Writer
	json        bool
	down        bool // the last query failed to reach the server
	seen        bool // the server answered once
}

// retry reports whether err is worth another try: the server answered
// before, and now cannot be reached or failed (it may be restarting). It
// says so once per outage and waits a little.
func (w *watcher) retry(ctx context.Context, err error) bool {
	var ae *admin.APIError
	if errors.As(err, &ae) && ae.StatusCode < 500 {
		return false
	}
	if ctx.Err() != nil || !w.seen {
		return false
	}
	if !w.down {
		fmt.Fprintf(w.errOut, "disco: %s; trying again\n", oneLine(err))
		w.down = true
	}
	select {
	case <-ctx.Done():
	case <-time.After(watchRetry):
	}
	return true
}

func (w *watcher) reached() {
	w.seen = true
	if w.down {
		fmt.Fprintln(w.errOut, "disco: reached the server again")
		w.down = false
	}
}

func (w *watcher) printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	_, err = w.out.Write(append(b, '\n'))
	return err
}

func stamp() string { return time.Now().UTC().Format("2006-01-02T15:04:05Z") }

// services follows GET /v1/services.
func (w *watcher) services(ctx context.Context, cl *admin.Client) error {
	var index uint64
	var prev map[string]admin.ServiceSummary
	for ctx.Err() == nil {
		list, n, err := cl.WatchServices(ctx, index, admin.MaxWait)
		if err != nil {
			if w.retry(ctx, err) {
				continue
			}
			return err
		}
		w.reached()
		if n == index && prev != nil {
			continue // the wait ended without a change
		}
		index = n
		cur := make(map[string]admin.ServiceSummary, len(list.Services))
		for _, s := range list.Services {
			cur[s.Name] = s
		}
		if w.json {
			if err := w.printJSON(list); err != nil {
				return err
			}
			prev = cur
			continue
		}
		if prev == nil {
			fmt.Fprintf(w.out, "%s index %d: %d services\n", stamp(), index, len(list.Services))
		}
		for _, s := range list.Services {
			old, ok := prev[s.Name]
			switch {
			case prev == nil, !ok:
				fmt.Fprintf(w.out, "%s + %s %s\n", stamp(), s.Name, summaryLine(s))
			case old.Index != s.Index && (old.Counts != s.Counts || old.FailOpen != s.FailOpen || !sameSettings(old.Settings, s.Settings)):
				fmt.Fprintf(w.out, "%s ~ %s %s\n", stamp(), s.Name, summaryLine(s))
			}
		}
		for name := range prev {
			if _, ok := cur[name]; !ok {
				fmt.Fprintf(w.out, "%s - %s removed\n", stamp(), name)
			}
		}
		prev = cur
	}
	return nil
}

func summaryLine(s admin.ServiceSummary) string {
	c := s.Counts
	line := fmt.Sprintf("%d instances: %d passing, %d warning, %d critical, %d maintenance", s.Instances, c.Passing, c.Warning, c.Critical, c.Maintenance)
	if s.FailOpen {
		line += " (fail open)"
	}
	return line
}

func sameSettings(a, b registry.Settings) bool {
	eq := func(x, y *int) bool { return x == nil && y == nil || x != nil && y != nil && *x == *y }
	return eq(a.DNSTTL, b.DNSTTL) && eq(a.MinHealthyPercent, b.MinHealthyPercent)
}

// service follows GET /v1/services/{name}.
func (w *watcher) service(ctx context.Context, cl *admin.Client, name string) error {
	var index uint64
	var prev map[string]admin.InstanceView
	first, missing := true, false
	for ctx.Err() == nil {
		svc, n, err := cl.WatchService(ctx, name, index, admin.MaxWait)
		var ae *admin.APIError
		if errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound && n > 0 {
			w.reached()
			if !missing {
				fmt.Fprintf(w.out, "%s %s is not registered; waiting for it\n", stamp(), name)
				if !first {
					prev = map[string]admin.InstanceView{}
				}
			}
			missing, first, index = true, false, n
			continue
		}
		if err != nil {
			if w.retry(ctx, err) {
				continue
			}
			return err
		}
		w.reached()
		if n == index && !first {
			continue // the wait ended without a change
		}
		index, missing = n, false
		if w.json {
			if err := w.printJSON(svc); err != nil {
				return err
			}
			first = false
			continue
		}
		cur := make(map[string]admin.InstanceView, len(svc.Instances))
		if first {
			fmt.Fprintf(w.out, "%s index %d: %s has %d instances\n", stamp(), index, name, len(svc.Instances))
		}
		for _, in := range svc.Instances {
			cur[in.ID] = in
			old, ok := prev[in.ID]
			switch {
			case !ok:
				fmt.Fprintf(w.out, "%s + %s\n", stamp(), instanceLine(in))
			case old.Status != in.Status:
				fmt.Fprintf(w.out, "%s ~ %s (was %s)\n", stamp(), instanceLine(in), old.Status)
			case !sameInstance(old, in):
				fmt.Fprintf(w.out, "%s ~ %s\n", stamp(), instanceLine(in))
			}
		}
		for id := range prev {
			if _, ok := cur[id]; !ok {
				fmt.Fprintf(w.out, "%s - %s removed\n", stamp(), id)
			}
		}
		if svc.FailOpen && (first || prev != nil) {
			fmt.Fprintf(w.out, "%s ! %s fails open: DNS serves every instance not in maintenance\n", stamp(), name)
		}
		prev, first = cur, false
	}
	return nil
}

func instanceLine(in admin.InstanceView) string {
	tags := ""
	if len(in.Tags) > 0 {
		tags = " [" + strings.Join(in.Tags, ",") + "]"
	}
	return fmt.Sprintf("%s %s %s%s: %s", in.ID, joinHostPort(in.Address, in.Port), in.Status, tags, outputOf(in))
}

func sameInstance(a, b admin.InstanceView) bool {
	return a.Address == b.Address && a.Port == b.Port && strings.Join(a.Tags, ",") == strings.Join(b.Tags, ",") &&
		a.Health == b.Health && a.Output == b.Output && a.Weight == b.Weight && a.Priority == b.Priority &&
		(a.Maintenance == nil) == (b.Maintenance == nil) && (a.Maintenance == nil || a.Maintenance.Reason == b.Maintenance.Reason)
}
