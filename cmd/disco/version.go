package main

import (
	"fmt"
	"io"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=..."; without
// it the module's build information is used.
var version = ""

// buildVersion returns the version and the VCS revision the binary was built from.
func buildVersion() (ver, rev string) {
	ver, rev = version, "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if ver == "" {
			ver = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	if ver == "" || ver == "(devel)" {
		ver = "devel"
	}
	return ver, rev
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version of disco",
		Description: `Prints the version and the VCS revision the binary was built from, as
"disco VERSION (revision REV)". The same values are in the metric
disco_build_info of a running server.

Examples:
   disco version
   disco --version                 # the same
   curl -s http://127.0.0.1:8054/metrics | grep disco_build_info`,
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 0); err != nil {
				return err
			}
			return printVersion(c.App.Writer)
		},
	}
}

// printVersion prints what "disco version" and "disco --version" print.
func printVersion(w io.Writer) error {
	ver, rev := buildVersion()
	_, err := fmt.Fprintf(w, "disco %s (revision %s)\n", ver, rev)
	return err
}
