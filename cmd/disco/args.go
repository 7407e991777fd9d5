package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// reorderArgs moves each command's flags ahead of its positional arguments,
// so that "disco register web web-1 10.0.0.1:80 --tag v2" parses as users
// expect: the standard flag parser stops at the first positional argument.
// Arguments after "--" are left as they are.
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	rest := args[1:]
	cmds := app.Commands
	var flags []cli.Flag = app.Flags
	for {
		// Leading flags of the current level stay in front.
		i := 0
		for i < len(rest) && strings.HasPrefix(rest[i], "-") && rest[i] != "--" {
			i += flagWidth(flags, rest[i:])
		}
		out = append(out, rest[:min(i, len(rest))]...)
		rest = rest[min(i, len(rest)):]
		if len(rest) == 0 {
			return out
		}
		cmd := findCommand(cmds, rest[0])
		if cmd == nil {
			return append(out, rest...)
		}
		out = append(out, rest[0])
		rest = rest[1:]
		if len(cmd.Subcommands) > 0 {
			cmds, flags = cmd.Subcommands, cmd.Flags
			continue
		}
		var fl, pos, dangling []string
		for j := 0; j < len(rest); {
			a := rest[j]
			switch {
			case a == "--":
				pos = append(pos, rest[j:]...)
				j = len(rest)
			case strings.HasPrefix(a, "-") && a != "-":
				w := flagWidth(cmd.Flags, rest[j:])
				if j+w > len(rest) {
					// A value flag typed last without its value: leave it
					// last with nothing after it, so the parser reports
					// the missing value instead of taking a positional.
					dangling = append(dangling, a)
				} else {
					fl = append(fl, rest[j:j+w]...)
				}
				j += w
			default:
				pos = append(pos, a)
				j++
			}
		}
		out = append(out, fl...)
		if len(dangling) > 0 {
			return append(out, dangling...)
		}
		return append(out, pos...)
	}
}

// flagWidth returns how many arguments the flag at args[0] takes up: one
// for a boolean flag or "--name=value", two for a flag followed by its value.
func flagWidth(flags []cli.Flag, args []string) int {
	a := args[0]
	if strings.Contains(a, "=") {
		return 1
	}
	name := strings.TrimLeft(a, "-")
	if name == "h" || name == "help" || name == "v" || name == "version" {
		return 1
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			if _, ok := f.(*cli.BoolFlag); ok {
				return 1
			}
			return 2
		}
	}
	return 1 // unknown flags are reported by the parser
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// oneLine flattens an error to a single line for the terminal.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}
