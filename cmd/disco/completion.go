package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// completionCommand is "disco completion bash|zsh": a shell completion
// script generated from the command tree, so that it knows every command
// and flag of the binary that prints it.
func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash or zsh)",
		ArgsUsage: "bash|zsh",
		Description: `Prints a script that completes disco's commands and flags in bash or zsh.
It is generated from this binary's commands, so regenerate it after an
upgrade. In zsh, compinit must have run before the script is sourced.

Examples:
   disco completion bash > /etc/bash_completion.d/disco     # every new bash
   source <(disco completion bash)                          # this bash only
   disco completion zsh > "${fpath[1]}/_disco"               # zsh, then start a new shell
   source <(disco completion zsh)                           # this zsh only (after compinit)`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("completion takes one argument, bash or zsh, got %d (see disco completion --help)", c.NArg())
			}
			script, err := completionScript(c.App, c.Args().First())
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(c.App.Writer, script)
			return err
		},
	}
}

// completionNode is what the completion script knows of one command (or
// of the application, path ""): its subcommands and flags.
type completionNode struct {
	path       string
	commands   []string
	flags      []string // as typed: --name, or -x for one-letter names
	valueFlags []string // the flags that take a value
}

// completionNodes lists the application and every command in its tree.
func completionNodes(app *cli.App) []completionNode {
	root := completionNode{commands: commandNames(app.Commands)}
	root.flags, root.valueFlags = flagNames(app.Flags)
	nodes := []completionNode{root}
	walkCommands(app.Commands, nil, func(path []string, c *cli.Command) {
		if c.Hidden {
			return
		}
		n := completionNode{path: strings.Join(path, " "), commands: commandNames(c.Subcommands)}
		n.flags, n.valueFlags = flagNames(c.Flags)
		nodes = append(nodes, n)
	})
	return nodes
}

// commandNames returns the names and aliases of the visible commands.
func commandNames(cmds []*cli.Command) []string {
	var out []string
	for _, c := range cmds {
		if !c.Hidden {
			out = append(out, c.Names()...)
		}
	}
	return out
}

// flagNames returns the visible flags as typed, -h and --help included,
// and those of them that take a value.
func flagNames(flags []cli.Flag) (all, withValue []string) {
	all = []string{"--help", "-h"}
	for _, f := range flags {
		if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
			continue
		}
		for _, n := range f.Names() {
			typed := "--" + n
			if len(n) == 1 {
				typed = "-" + n
			}
			if slices.Contains(all, typed) {
				continue
			}
			all = append(all, typed)
			if takesValue(f) {
				withValue = append(withValue, typed)
			}
		}
	}
	return all, withValue
}

// completionScript returns the completion script for shell.
func completionScript(app *cli.App, shell string) (string, error) {
	var b strings.Builder
	switch shell {
	case "bash":
		b.WriteString("# bash completion for disco, printed by \"disco completion bash\".\n" +
			"# Load it with: source <(disco completion bash)\n\n")
	case "zsh":
		b.WriteString("#compdef disco\n# zsh completion for disco, printed by \"disco completion zsh\".\n" +
			"# Put it in a directory of $fpath as _disco, or after compinit: source <(disco completion zsh)\n\n")
	default:
		return "", fmt.Errorf("completion %q: want bash or zsh", shell)
	}
	nodes := completionNodes(app)
	table := func(fn string, list func(completionNode) []string) {
		fmt.Fprintf(&b, "%s() {\n\tcase $1 in\n", fn)
		for _, n := range nodes {
			if l := list(n); len(l) > 0 {
				fmt.Fprintf(&b, "\t%s) echo %s ;;\n", shellQuote(n.path), shellQuote(strings.Join(l, " ")))
			}
		}
		b.WriteString("\tesac\n}\n\n")
	}
	table("_disco_commands", func(n completionNode) []string { return n.commands })
	table("_disco_flags", func(n completionNode) []string { return n.flags })
	table("_disco_value_flags", func(n completionNode) []string { return n.valueFlags })
	b.WriteString(completionCandidates)
	if shell == "bash" {
		b.WriteString(bashCompletion)
	} else {
		b.WriteString(zshCompletion)
	}
	return b.String(), nil
}

// shellQuote quotes s for sh, bash and zsh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// completionCandidates is the part of the script that bash and zsh share:
// it follows the words typed so far down the command tree, skipping flags
// and their values, and prints what may come at the cursor: the flags of
// the command reached when the word starts with "-", else its
// subcommands. Nothing means files.
const completionCandidates = `# _disco_candidates WORD... CURRENT: the words after "disco" before the
# cursor, then the word at the cursor.
_disco_candidates() {
	local node= skip= w
	while [ $# -gt 1 ]; do
		w=$1
		shift
		if [ -n "$skip" ]; then
			skip=
			continue
		fi
		case $w in
		--) return 0 ;;
		-*=*) ;;
		-*)
			case " $(_disco_value_flags "$node") " in
			*" $w "*) skip=1 ;;
			esac
			;;
		*)
			if [ -z "$node" ] && [ "$w" = help ]; then
				continue
			fi
			case " $(_disco_commands "$node") " in
			*" $w "*) node=${node:+$node }$w ;;
			esac
			;;
		esac
	done
	[ -n "$skip" ] && return 0
	case $1 in
	-*) _disco_flags "$node" ;;
	*) _disco_commands "$node" ;;
	esac
}

`

const bashCompletion = `_disco() {
	local IFS=$' \t\n' list
	list=$(_disco_candidates "${COMP_WORDS[@]:1:COMP_CWORD}")
	COMPREPLY=($(compgen -W "$list" -- "${COMP_WORDS[COMP_CWORD]}"))
}

complete -o default -o bashdefault -F _disco disco
`

const zshCompletion = `_disco() {
	local list
	list=$(_disco_candidates "${(@)words[2,CURRENT]}")
	if [[ -n $list ]]; then
		compadd -- ${=list}
	else
		_files
	fi
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
	_disco "$@"
else
	compdef _disco disco
fi
`
