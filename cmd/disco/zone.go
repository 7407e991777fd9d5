package main

import "github.com/urfave/cli/v2"

// zoneCommand returns "disco zone" and its subcommands.
func zoneCommand() *cli.Command { return &cli.Command{Name: "zone", Usage: "work with zone files"} }
