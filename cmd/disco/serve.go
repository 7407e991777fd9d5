package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the disco server",
		Action: func(*cli.Context) error {
			return errors.New("serve: not wired yet")
		},
	}
}
