package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

// command is one command of the tree with the names leading to it.
type command struct {
	path []string
	cmd  *cli.Command
}

// everyCommand lists every command of the application, subcommands
// included.
func everyCommand(t *testing.T) []command {
	t.Helper()
	var out []command
	walkCommands(newApp(io.Discard, io.Discard).Commands, nil, func(path []string, c *cli.Command) {
		out = append(out, command{path, c})
	})
	if len(out) < 12 {
		t.Fatalf("found only %d commands", len(out))
	}
	return out
}

// flagValue returns a value that f accepts, or "" for a boolean flag.
func flagValue(t *testing.T, f cli.Flag) string {
	t.Helper()
	if !takesValue(f) {
		return ""
	}
	for _, v := range []string{"10s", "3", "k=v", "x"} {
		set := flag.NewFlagSet("probe", flag.ContinueOnError)
		set.SetOutput(io.Discard)
		if err := f.Apply(set); err != nil {
			t.Fatalf("apply --%s: %v", f.Names()[0], err)
		}
		if set.Set(f.Names()[0], v) == nil {
			return v
		}
	}
	t.Fatalf("no value found for --%s", f.Names()[0])
	return ""
}

// TestEveryFlagAnywhere: for every command without subcommands and every
// one of its flags, the flag is read wherever it stands among the
// positional arguments, with its value, and the arguments stay in order.
func TestEveryFlagAnywhere(t *testing.T) {
	for _, c := range everyCommand(t) {
		if len(c.cmd.Subcommands) > 0 {
			continue
		}
		for _, f := range c.cmd.Flags {
			name := f.Names()[0]
			value := flagValue(t, f)
			typed := []string{"--" + name}
			if value != "" {
				typed = append(typed, value)
			}
			lines := map[string][]string{
				"first":   slices.Concat(typed, []string{"a1", "a2"}),
				"between": slices.Concat([]string{"a1"}, typed, []string{"a2"}),
				"last":    slices.Concat([]string{"a1", "a2"}, typed),
			}
			for where, rest := range lines {
				t.Run(strings.Join(c.path, " ")+" --"+name+" "+where, func(t *testing.T) {
					argv := slices.Concat([]string{"disco"}, c.path, rest)
					l, err := parseCommandLine(newApp(io.Discard, io.Discard), argv)
					if err != nil {
						t.Fatalf("parse %q: %v", argv, err)
					}
					got := l.argv()
					want := slices.Concat([]string{"disco"}, c.path, typed, []string{"a1", "a2"})
					if !slices.Equal(got, want) {
						t.Fatalf("parse %q\n got %q\nwant %q", argv, got, want)
					}
					// The standard flag parser reads the result as meant.
					set := flag.NewFlagSet(c.path[len(c.path)-1], flag.ContinueOnError)
					set.SetOutput(io.Discard)
					for _, f := range c.cmd.Flags {
						if err := f.Apply(set); err != nil {
							t.Fatal(err)
						}
					}
					if err := set.Parse(got[1+len(c.path):]); err != nil {
						t.Fatalf("flag parser: %v", err)
					}
					if !slices.Equal(set.Args(), []string{"a1", "a2"}) {
						t.Errorf("arguments %q, want [a1 a2]", set.Args())
					}
					seen := false
					set.Visit(func(fl *flag.Flag) { seen = seen || fl.Name == name })
					if !seen {
						t.Errorf("--%s was not set", name)
					}
				})
			}
		}
	}
}

// TestHelpEverywhere: "disco help CMD", "disco CMD --help" and -h
// anywhere print the command's help, exit 0 and do nothing else: client
// commands send no request.
func TestHelpEverywhere(t *testing.T) {
	s := newServer(t, "")
	t.Setenv("DISCO_ADMIN", s.url)
	for _, c := range everyCommand(t) {
		title := "disco " + strings.Join(c.path, " ") + " - "
		if c.cmd.Name == "help" {
			// The library shows the application's help for its help command.
			title = "disco - "
		}
		var want string
		for _, h := range []string{"--help", "-h"} {
			lines := [][]string{
				slices.Concat([]string{"help"}, c.path),
				slices.Concat(c.path, []string{h}),
				slices.Concat([]string{h}, c.path),
			}
			if len(c.cmd.Subcommands) == 0 && c.cmd.Name != "help" {
				// Arguments and flags around the help flag do not matter (the
				// arguments of "help" are command names).
				lines = append(lines,
					slices.Concat(c.path, []string{"web", "web-1", h}),
					slices.Concat(c.path, []string{h, "web", "--admin"}),
					slices.Concat([]string{h}, c.path, []string{"web"}))
			}
			for _, args := range lines {
				t.Run(strings.Join(args, " "), func(t *testing.T) {
					var stdout, stderr bytes.Buffer
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					code := runMain(ctx, append([]string{"disco"}, args...), &stdout, &stderr)
					if code != 0 || stderr.Len() > 0 {
						t.Fatalf("exit %d, stderr %q", code, stderr.String())
					}
					if !strings.Contains(stdout.String(), title) {
						t.Errorf("help does not start with %q:\n%s", title, stdout.String())
					}
					if want == "" {
						want = stdout.String()
					} else if stdout.String() != want {
						t.Errorf("help differs from the first form:\n%s\nwant:\n%s", stdout.String(), want)
					}
				})
			}
		}
	}
	if n := s.requests.Load(); n != 0 {
		t.Errorf("help sent %d requests to the server", n)
	}
}

// durationName matches the names of flags that hold a duration or a TTL.
var durationName = regexp.MustCompile(`(^|-)(ttl|timeout|interval|delay|after|wait|period)$`)

// TestEveryDurationFlagTakesSeconds: every flag that holds a duration
// (by its type, its name or its usage) takes Go durations and bare
// seconds, on the command line and in its environment variable.
func TestEveryDurationFlagTakesSeconds(t *testing.T) {
	found := 0
	for _, c := range everyCommand(t) {
		for _, f := range c.cmd.Flags {
			name := f.Names()[0]
			usage := ""
			if df, ok := f.(cli.DocGenerationFlag); ok {
				usage = df.GetUsage()
			}
			_, isDuration := f.(*cli.GenericFlag)
			isDuration = isDuration && f.(*cli.GenericFlag).Value != nil
			if isDuration {
				_, isDuration = f.(*cli.GenericFlag).Value.(*secondsValue)
			}
			looksLike := durationName.MatchString(name) || strings.Contains(usage, "`DUR`") || strings.Contains(usage, "DUR ")
			if !isDuration && !looksLike {
				continue
			}
			found++
			t.Run(strings.Join(c.path, " ")+" --"+name, func(t *testing.T) {
				if !isDuration {
					t.Fatalf("--%s looks like a duration but is a %T: make it a cli.DurationFlag", name, f)
				}
				for in, want := range map[string]time.Duration{"10s": 10 * time.Second, "10": 10 * time.Second, "1m30s": 90 * time.Second, "500ms": 500 * time.Millisecond} {
					set := flag.NewFlagSet("probe", flag.ContinueOnError)
					if err := f.Apply(set); err != nil {
						t.Fatal(err)
					}
					if err := set.Set(name, in); err != nil {
						t.Errorf("--%s %s: %v", name, in, err)
						continue
					}
					if got := set.Lookup(name).Value.String(); got != want.String() {
						t.Errorf("--%s %s reads as %s, want %s", name, in, got, want)
					}
				}
				if _, err := takeFlag(c.cmd.Flags, []string{"--" + name, "banana"}); err == nil || !strings.Contains(err.Error(), "--"+name) {
					t.Errorf("--%s banana: error %v does not name the flag", name, err)
				}
			})
		}
	}
	if found < 10 {
		t.Errorf("found only %d duration flags", found)
	}
}

// TestDurationFlagFromEnvironment: the environment variable of a duration
// flag takes bare seconds too.
func TestDurationFlagFromEnvironment(t *testing.T) {
	t.Setenv("DISCO_TCP_IDLE_TIMEOUT", "7")
	var got time.Duration
	app := newApp(io.Discard, io.Discard)
	for _, c := range app.Commands {
		if c.Name == "serve" {
			c.Action = func(c *cli.Context) error { got = c.Duration("tcp-idle-timeout"); return nil }
		}
	}
	if err := runApp(context.Background(), app, []string{"disco", "serve"}); err != nil || got != 7*time.Second {
		t.Errorf("DISCO_TCP_IDLE_TIMEOUT=7: %v, %v", got, err)
	}
}

// TestUnknownCommand: a mistyped command is named with the nearest one.
func TestUnknownCommand(t *testing.T) {
	cases := map[string]string{
		"registr":     `unknown command "registr"; did you mean "register"?`,
		"regsiter":    `unknown command "regsiter"; did you mean "register"?`,
		"instance":    `unknown command "instance"; did you mean "instances"?`,
		"serv":        `unknown command "serv"; did you mean "serve"?`,
		"zone chekc":  `unknown command "zone chekc"; did you mean "zone check"?`,
		"help regstr": `unknown command "regstr"; did you mean "register"?`,
		"xyzzy":       `unknown command "xyzzy" (disco help lists the commands)`,
	}
	for in, want := range cases {
		var stdout, stderr bytes.Buffer
		code := runMain(context.Background(), append([]string{"disco"}, strings.Fields(in)...), &stdout, &stderr)
		if code == 0 || !strings.HasPrefix(stderr.String(), "disco: "+want) || strings.Count(stderr.String(), "\n") != 1 || stdout.Len() > 0 {
			t.Errorf("disco %s: exit %d, stdout %q, stderr %q; want %q", in, code, stdout.String(), stderr.String(), want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"abc", "abc", 0}, {"registr", "register", 1}, {"regsiter", "register", 1}, {"", "ab", 2}, {"kitten", "sitting", 3}} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
