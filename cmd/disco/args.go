package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
)

// The command line is read here, against the command tree, before the CLI
// library parses it. The library stops reading flags at the first
// positional argument (the rule of the standard flag package), while users
// type flags anywhere: "disco register web web-1 10.0.0.1:80 --tag v2".
// Everything is derived from the commands' own flag definitions (which
// flags take a value), so commands and flags added later need nothing here.

// commandLine is a command line read against the command tree.
type commandLine struct {
	prog string
	// head is everything up to the command's name: the application's
	// flags, the command names as typed and the flags of parent commands.
	head []string
	// path is the command named and its parents; empty for the application.
	path  []*cli.Command
	flags []string // the command's flags with their values, in order
	args  []string // positional arguments; "--" and what follows it included
	// dangling is a value flag typed last without its value. It is passed
	// on last, with no positional argument after it, so that the parser
	// reports the missing value rather than taking an argument as it.
	dangling string
	// help is set by "help", -h or --help anywhere before "--".
	help bool
}

// unknownCommandError is a command name that is not in the command tree.
type unknownCommandError struct {
	name    string // as typed, after the parent commands: "zone chek"
	suggest string // the nearest command, or ""
}

func (e *unknownCommandError) Error() string {
	msg := fmt.Sprintf("unknown command %q", e.name)
	if e.suggest != "" {
		msg += fmt.Sprintf("; did you mean %q?", e.suggest)
	}
	return msg + " (disco help lists the commands)"
}

// parseCommandLine reads argv (program name first) against app's command
// tree. It fails on an unknown command and on a flag value that cannot be
// parsed (naming the flag), and never changes argv.
func parseCommandLine(app *cli.App, argv []string) (*commandLine, error) {
	l := &commandLine{prog: "disco"}
	if len(argv) > 0 {
		l.prog = argv[0]
	}
	var rest []string
	if len(argv) > 1 {
		rest = argv[1:]
	}
	cmds, flags := app.Commands, app.Flags
	var typed []string // the command names as typed
	// Down the tree: flags of each level, then a command name, until a
	// command without subcommands.
	for len(rest) > 0 && (len(l.path) == 0 || len(cmds) > 0) {
		a := rest[0]
		switch {
		case isHelpFlag(a):
			l.help = true
			rest = rest[1:]
		case isFlag(a):
			w, err := takeFlag(flags, rest)
			if err != nil {
				return nil, err
			}
			if w > len(rest) {
				l.dangling = a
				return l, nil
			}
			l.head = append(l.head, rest[:w]...)
			rest = rest[w:]
		case a == "--":
			// Nothing names a command after "--": leave it to the parser.
			l.args = append(l.args, rest...)
			return l, nil
		case a == "help" && !l.help:
			l.help = true
			rest = rest[1:]
		default:
			cmd := findCommand(cmds, a)
			if cmd == nil {
				return nil, unknownCommand(typed, a, cmds)
			}
			l.path = append(l.path, cmd)
			l.head = append(l.head, a)
			typed = append(typed, a)
			cmds, flags = cmd.Subcommands, cmd.Flags
			rest = rest[1:]
		}
	}
	// The command's flags and arguments, in any order.
	for len(rest) > 0 {
		a := rest[0]
		switch {
		case a == "--":
			l.args = append(l.args, rest...)
			return l, nil
		case isHelpFlag(a):
			l.help = true
			rest = rest[1:]
		case isFlag(a):
			w, err := takeFlag(flags, rest)
			if err != nil {
				return nil, err
			}
			if w > len(rest) {
				l.dangling = a
				return l, nil
			}
			l.flags = append(l.flags, rest[:w]...)
			rest = rest[w:]
		default:
			l.args = append(l.args, a)
			rest = rest[1:]
		}
	}
	return l, nil
}

// argv returns the command line in the order the CLI library reads:
// program, global flags, command names, the command's flags, positional
// arguments. Help drops everything but the command names.
func (l *commandLine) argv() []string {
	out := []string{l.prog}
	if l.help {
		for _, c := range l.path {
			out = append(out, c.Name)
		}
		return append(out, "--help")
	}
	out = append(out, l.head...)
	out = append(out, l.flags...)
	if l.dangling != "" {
		return append(out, l.dangling)
	}
	return append(out, l.args...)
}

// runApp runs app on the command line argv (program name first) as users
// type it.
func runApp(ctx context.Context, app *cli.App, argv []string) error {
	l, err := parseCommandLine(app, argv)
	if err != nil {
		return err
	}
	return app.RunContext(ctx, l.argv())
}

// isFlag reports whether a looks like a flag: "-x", "--name", "--name=v".
func isFlag(a string) bool {
	return strings.HasPrefix(a, "-") && a != "-" && a != "--"
}

// isHelpFlag reports whether a asks for help: -h, --help (and the single-
// and double-dash forms the flag package accepts).
func isHelpFlag(a string) bool {
	if !isFlag(a) || strings.HasPrefix(a, "---") {
		return false
	}
	name := strings.TrimLeft(a, "-")
	return name == "h" || name == "help"
}

// takeFlag returns how many arguments the flag at args[0] takes up: one
// for a boolean flag, an unknown flag (the parser reports it) or
// "--name=value"; two for a flag followed by its value. The width may
// exceed len(args) when the value is missing. A value that the flag's type
// cannot hold is an error naming the flag.
func takeFlag(flags []cli.Flag, args []string) (int, error) {
	a := args[0]
	name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
	f := lookupFlag(flags, name)
	if f == nil {
		return 1, nil
	}
	if !takesValue(f) {
		return 1, nil
	}
	w := 1
	if !hasValue {
		if len(args) < 2 {
			return 2, nil
		}
		value, w = args[1], 2
	}
	if err := checkFlagValue(f, value); err != nil {
		return 0, fmt.Errorf("--%s %q: %w", name, value, err)
	}
	return w, nil
}

// lookupFlag returns the flag with the given name or alias.
func lookupFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

// takesValue reports whether f is written with a value (all but booleans).
func takesValue(f cli.Flag) bool {
	if v, ok := f.(interface{ TakesValue() bool }); ok {
		return v.TakesValue()
	}
	return true
}

// checkFlagValue checks a value typed for a flag of a numeric or duration
// type, so that the error names the flag and says what it wants.
func checkFlagValue(f cli.Flag, value string) error {
	var err error
	switch f := f.(type) {
	case *cli.IntFlag:
		_, err = strconv.ParseInt(value, 0, strconv.IntSize)
	case *cli.Int64Flag:
		_, err = strconv.ParseInt(value, 0, 64)
	case *cli.UintFlag:
		_, err = strconv.ParseUint(value, 0, strconv.IntSize)
	case *cli.Uint64Flag:
		_, err = strconv.ParseUint(value, 0, 64)
	case *cli.Float64Flag:
		if _, perr := strconv.ParseFloat(value, 64); perr != nil {
			return fmt.Errorf("want a number")
		}
	case *cli.DurationFlag:
		_, err = parseSeconds(value)
		return err
	case *cli.GenericFlag:
		if _, ok := f.Value.(*secondsValue); ok {
			_, err = parseSeconds(value)
			return err
		}
	}
	if err != nil {
		return fmt.Errorf("want a whole number")
	}
	return nil
}

// findCommand returns the command with the given name or alias.
func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// unknownCommand is the error for name typed after the commands parents,
// with the nearest of cmds as a suggestion.
func unknownCommand(parents []string, name string, cmds []*cli.Command) error {
	full := strings.Join(append(append([]string(nil), parents...), name), " ")
	e := &unknownCommandError{name: full}
	best := 0
	for _, c := range cmds {
		if c.Hidden {
			continue
		}
		for _, n := range c.Names() {
			d := editDistance(strings.ToLower(name), n)
			limit := max(2, len(n)/3)
			if strings.HasPrefix(n, strings.ToLower(name)) && len(name) >= 2 {
				d = 0 // a prefix: "reg" for "register"
			}
			if d <= limit && (e.suggest == "" || d < best) {
				e.suggest = strings.Join(append(append([]string(nil), parents...), c.Name), " ")
				best = d
			}
		}
	}
	return e
}

// editDistance is the Damerau-Levenshtein (optimal string alignment)
// distance between a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// oneLine flattens an error to a single line for the terminal.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}
