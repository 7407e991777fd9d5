package main

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// reorder is what runApp hands to the CLI library for the command line in.
func reorder(app *cli.App, in []string) ([]string, error) {
	l, err := parseCommandLine(app, in)
	if err != nil {
		return nil, err
	}
	return l.argv(), nil
}

func TestParseCommandLine(t *testing.T) {
	// A small app with the shapes the reader must handle: a global flag,
	// a command with value and boolean flags and an alias, and a command
	// with subcommands.
	custom := &cli.App{
		Name:  "disco",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "debug"}, &cli.StringFlag{Name: "config"}},
		Commands: []*cli.Command{
			{Name: "register", Aliases: []string{"reg"}, Flags: []cli.Flag{
				&cli.StringSliceFlag{Name: "tag", Aliases: []string{"t"}},
				&cli.IntFlag{Name: "weight"},
				&cli.BoolFlag{Name: "json"},
				&cli.DurationFlag{Name: "interval"},
			}},
			{Name: "zone", Subcommands: []*cli.Command{
				{Name: "check", Flags: []cli.Flag{&cli.StringFlag{Name: "origin"}, &cli.BoolFlag{Name: "strict"}}},
			}},
		},
	}
	discoApp := newApp(io.Discard, io.Discard)
	cases := []struct {
		name string
		app  *cli.App
		in   string
		want string // or the error
	}{
		{"program only", custom, "disco", "disco"},
		{"no flags", custom, "disco register web web-1 10.0.0.1:80", "disco register web web-1 10.0.0.1:80"},
		{"flags already first", custom, "disco register --tag v2 web web-1 10.0.0.1:80", "disco register --tag v2 web web-1 10.0.0.1:80"},
		{"flags after positionals", custom, "disco register web web-1 10.0.0.1:80 --tag v2 --weight 5",
			"disco register --tag v2 --weight 5 web web-1 10.0.0.1:80"},
		{"flags between positionals", custom, "disco register web --tag v2 web-1 --json 10.0.0.1:80",
			"disco register --tag v2 --json web web-1 10.0.0.1:80"},
		{"boolean flag takes no value", custom, "disco register web --json web-1",
			"disco register --json web web-1"},
		{"name=value form", custom, "disco register web --tag=v2 web-1 --weight=3",
			"disco register --tag=v2 --weight=3 web web-1"},
		{"single dash and alias", custom, "disco register web -t v2 web-1", "disco register -t v2 web web-1"},
		{"value that looks like a flag", custom, "disco register web web-1 --weight -1",
			"disco register --weight -1 web web-1"},
		{"help as a flag value is a value", custom, "disco register web web-1 --tag -h",
			"disco register --tag -h web web-1"},
		{"lone dash is positional", custom, "disco register - --json", "disco register --json -"},
		{"double dash ends flags", custom, "disco register web --json -- --tag x -h",
			"disco register --json web -- --tag x -h"},
		{"help after positionals", custom, "disco register web -h", "disco register --help"},
		{"help anywhere", custom, "disco register web --tag v2 --help web-1", "disco register --help"},
		{"help with a dangling flag", custom, "disco register web -h --tag", "disco register --help"},
		{"help command", custom, "disco help", "disco --help"},
		{"help command for a command", custom, "disco help reg", "disco register --help"},
		{"help command for a subcommand", custom, "disco help zone check", "disco zone check --help"},
		{"help flag for a subcommand", custom, "disco zone check x.zone -h", "disco zone check --help"},
		{"help flag before the command", custom, "disco -h register", "disco register --help"},
		{"unknown flag counts as boolean", custom, "disco register web --frob web-1",
			"disco register --frob web web-1"},
		{"command alias", custom, "disco reg web --tag v2", "disco reg --tag v2 web"},
		{"global flags stay in front", custom, "disco --debug --config c.toml register web --tag v2",
			"disco --debug --config c.toml register --tag v2 web"},
		{"subcommand", custom, "disco zone check example.com.zone --origin example.com. --strict",
			"disco zone check --origin example.com. --strict example.com.zone"},
		{"dangling value flag", custom, "disco register web web-1 --tag", "disco register --tag"},
		{"dangling global flag", custom, "disco --config", "disco --config"},
		{"duration in seconds", custom, "disco register web --interval 10", "disco register --interval 10 web"},
		{"unknown command", custom, "disco registr web", `unknown command "registr"; did you mean "register"? (disco help lists the commands)`},
		{"unknown command far from all", custom, "disco frobnicate web --tag v2", `unknown command "frobnicate" (disco help lists the commands)`},
		{"unknown subcommand", custom, "disco zone chek x", `unknown command "zone chek"; did you mean "zone check"? (disco help lists the commands)`},
		{"help for an unknown command", custom, "disco help nosuch", `unknown command "nosuch" (disco help lists the commands)`},
		{"bad int value", custom, "disco register web --weight heavy", `--weight "heavy": want a whole number`},
		{"bad duration value", custom, "disco register web --interval=soon", `--interval "soon": ` + errDuration.Error()},
		{"real app: register", discoApp, "disco register web web-1 [fd00::1]:80 --tag v2 --meta k=a,b --check-ttl 30s --admin http://127.0.0.1:1",
			"disco register --tag v2 --meta k=a,b --check-ttl 30s --admin http://127.0.0.1:1 web web-1 [fd00::1]:80"},
		{"real app: instances --json", discoApp, "disco instances web --json --token t",
			"disco instances --json --token t web"},
		{"real app: maintenance reason with spaces", discoApp, "disco maintenance web web-1 on --reason kernel\x00upgrade",
			"disco maintenance --reason kernel\x00upgrade web web-1 on"},
		{"real app: --version", discoApp, "disco --version", "disco --version"},
		{"real app: settings ttl", discoApp, "disco settings web --dns-ttl banana", `--dns-ttl "banana": ` + errDuration.Error()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Fields(tc.in)
			for i := range in {
				in[i] = strings.ReplaceAll(in[i], "\x00", " ")
			}
			orig := slices.Clone(in)
			got, err := reorder(tc.app, in)
			if err != nil {
				if err.Error() != tc.want {
					t.Errorf("parse %q: error %q\nwant %q", in, err, tc.want)
				}
			} else {
				want := strings.Fields(tc.want)
				for i := range want {
					want[i] = strings.ReplaceAll(want[i], "\x00", " ")
				}
				if !slices.Equal(got, want) {
					t.Errorf("parse %q\n got %q\nwant %q", in, got, want)
				}
			}
			if !slices.Equal(in, orig) {
				t.Errorf("parseCommandLine modified its input: %q", in)
			}
		})
	}
}

func TestOneLine(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{errors.New("plain"), "plain"},
		{errors.Join(errors.New("address bad"), errors.New("port bad")), "address bad; port bad"},
		{errors.New("load zone:\n  line 3:  bad\tTTL "), "load zone:; line 3: bad TTL"},
	}
	for _, tc := range cases {
		if got := oneLine(tc.err); got != tc.want {
			t.Errorf("oneLine(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestDanglingValueFlag(t *testing.T) {
	for _, args := range [][]string{
		{"disco", "instances", "web", "--admin"},
		{"disco", "register", "web", "web-1", "10.0.0.1:80", "--tag"},
	} {
		var out, errOut strings.Builder
		err := runApp(context.Background(), newApp(&out, &errOut), args)
		if err == nil || !strings.Contains(err.Error(), "flag needs an argument") {
			t.Errorf("%v: error %v, want the missing flag value reported", args, err)
		}
	}
}

// FuzzParseCommandLine: any command line is read without a panic and
// without changing it; what is handed on holds the same words (unless
// help drops them or a value is missing), and reading it again hands on
// the same.
func FuzzParseCommandLine(f *testing.F) {
	for _, seed := range []string{
		"register\x00web\x00web-1\x0010.0.0.1:80\x00--tag\x00v2", "help\x00zone\x00check", "--\x00-h",
		"zone\x00chek", "settings\x00web\x00--dns-ttl=1.5s", "instances\x00--admin", "-h\x00register\x00web",
		"register\x00--weight\x00-1\x00web\x00--json=false", "--version", "maintenance\x00web\x00web-1\x00on\x00--reason\x00-h",
	} {
		f.Add(seed)
	}
	app := newApp(io.Discard, io.Discard)
	f.Fuzz(func(t *testing.T, s string) {
		args := append([]string{"disco"}, strings.Split(s, "\x00")...)
		orig := slices.Clone(args)
		l, err := parseCommandLine(app, args)
		if !slices.Equal(args, orig) {
			t.Fatalf("input changed: %q", args)
		}
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error of more than one line: %q", err)
			}
			return
		}
		out := l.argv()
		if !l.help && l.dangling == "" {
			a, b := slices.Clone(args), slices.Clone(out)
			slices.Sort(a)
			slices.Sort(b)
			if !slices.Equal(a, b) {
				t.Fatalf("%q handed on as %q", args, out)
			}
		}
		l2, err := parseCommandLine(app, out)
		if err != nil || !slices.Equal(l2.argv(), out) {
			t.Fatalf("%q handed on as %q, read again as %v %v", args, out, l2, err)
		}
	})
}
