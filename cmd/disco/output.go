package main

import (
	"fmt"
	"slices"

	"github.com/urfave/cli/v2"
)

// Output formats of the read commands.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// addOutputFlag gives a command that has a --json flag the flag
// --output table|json too; --json is --output json. The command's action
// keeps reading c.Bool("json").
func addOutputFlag(c *cli.Command) {
	i := slices.IndexFunc(c.Flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), "json") })
	if i < 0 || lookupFlag(c.Flags, "output") != nil {
		return
	}
	out := &cli.StringFlag{Name: "output", Value: outputTable,
		Usage: "print `FORMAT`: table (aligned columns) or json (the API's JSON, for scripts; --json is the same)"}
	c.Flags = slices.Insert(c.Flags, i+1, cli.Flag(out))
	before := c.Before
	c.Before = func(cc *cli.Context) error {
		if err := applyOutput(cc); err != nil {
			return err
		}
		if before != nil {
			return before(cc)
		}
		return nil
	}
}

// applyOutput checks --output and turns --output json into --json.
func applyOutput(c *cli.Context) error {
	switch out := c.String("output"); out {
	case outputJSON:
		if c.IsSet("json") && !c.Bool("json") {
			return fmt.Errorf("--output json and --json=false disagree: give one")
		}
		return c.Set("json", "true")
	case outputTable:
		if c.IsSet("output") && c.Bool("json") {
			return fmt.Errorf("--output table and --json disagree: give one")
		}
		return nil
	default:
		return fmt.Errorf("--output %q: want table or json", out)
	}
}
