package main

import "github.com/urfave/cli/v2"

// clientCommands returns the commands that talk to a running server's admin API.
func clientCommands() []*cli.Command { return nil }
