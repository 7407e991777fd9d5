package main

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/urfave/cli/v2"

	"disco/admin"
)

// finishApp gives the application and every command in its tree what all
// commands share, derived from their definitions so that commands and
// flags added later get it too:
//   - the help and completion commands and the --version flag;
//   - usage errors as one line that points at the command's help;
//   - every duration flag takes "10s" and bare seconds ("10");
//   - a command with --json has --output table|json as well;
//   - a command that talks to the admin API (it has --admin) says what
//     to do when the server cannot be reached or refuses the token.
func finishApp(app *cli.App) *cli.App {
	app.Commands = append(app.Commands, helpCommand(), completionCommand())
	// The library adds -h/--help only when it adds its own help command.
	app.Flags = append(app.Flags, cli.HelpFlag,
		&cli.BoolFlag{Name: "version", Usage: "print the version (the same as disco version)", DisableDefaultText: true})
	app.HideHelpCommand = true
	app.Action = func(c *cli.Context) error {
		switch {
		case c.Bool("version"):
			return printVersion(c.App.Writer)
		case c.NArg() > 0:
			return unknownCommand(nil, c.Args().First(), c.App.Commands)
		}
		return cli.ShowAppHelp(c)
	}
	app.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
		return fmt.Errorf("%w (see disco --help)", err)
	}
	acceptSeconds(app.Flags)
	walkCommands(app.Commands, nil, func(path []string, c *cli.Command) {
		c.HideHelpCommand = true // "disco help ..." and -h serve every level
		acceptSeconds(c.Flags)
		addOutputFlag(c)
		if c.OnUsageError == nil {
			name := strings.Join(append([]string{"disco"}, path...), " ")
			c.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
				return fmt.Errorf("%w (see %s --help)", err, name)
			}
		}
		if lookupFlag(c.Flags, "admin") != nil && c.Action != nil {
			action := c.Action
			c.Action = func(cc *cli.Context) error { return clientHint(cc, action(cc)) }
		}
	})
	return app
}

// walkCommands calls fn for every command of the tree, parents first, with
// the names leading to it (its own included).
func walkCommands(cmds []*cli.Command, parents []string, fn func(path []string, c *cli.Command)) {
	for _, c := range cmds {
		path := append(append([]string(nil), parents...), c.Name)
		fn(path, c)
		walkCommands(c.Subcommands, path, fn)
	}
}

// clientHint adds to an admin API error what the user can do about it.
func clientHint(c *cli.Context, err error) error {
	var ae *admin.APIError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, admin.ErrUnreachable):
		return fmt.Errorf("%w; is disco serve running there? Point --admin (or DISCO_ADMIN) at its admin API", err)
	case errors.As(err, &ae) && ae.StatusCode == http.StatusUnauthorized && c.String("token") != "":
		return fmt.Errorf("%w; give the server's --admin-token with --token (or DISCO_TOKEN)", err)
	case errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w (disco services lists the services, disco instances SERVICE their instances)", err)
	}
	return err
}
