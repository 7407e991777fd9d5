package main

import (
	"github.com/urfave/cli/v2"
)

// helpCommand is "disco help [COMMAND...]". The command line reader turns
// "disco help register" into "disco register --help" before the commands
// run (see parseCommandLine); the action does the same for a "help" that
// reaches it.
func helpCommand() *cli.Command {
	return &cli.Command{
		Name:      "help",
		Usage:     "show the commands, or the help of one command",
		ArgsUsage: "[COMMAND [SUBCOMMAND]]",
		Description: `Without a command, lists the commands and the global options. With one,
shows its usage, description, examples and flags; -h and --help anywhere on a
command line do the same and run nothing.

Examples:
   disco help
   disco help register
   disco help zone check
   disco register web web-1 10.0.0.1:8080 --help     # the same as disco help register`,
		Action: func(c *cli.Context) error {
			return runApp(c.Context, c.App, append([]string{c.App.Name, "help"}, c.Args().Slice()...))
		},
	}
}
