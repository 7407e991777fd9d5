// Command disco is a DNS-based service discovery server and its client.
//
// Run the server with "disco serve"; register, inspect and drain instances
// with the client commands, which talk to the server's admin API.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// runMain runs the command line argv (program name first) and returns the
// exit status: 0, or 1 after one line on stderr that says what went wrong.
func runMain(ctx context.Context, argv []string, stdout, stderr io.Writer) int {
	if err := runApp(ctx, newApp(stdout, stderr), argv); err != nil {
		fmt.Fprintln(stderr, "disco:", oneLine(err))
		return 1
	}
	return 0
}

// newApp builds the command-line application.
func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:  "disco",
		Usage: "DNS-based service discovery: register instances, find them with DNS",
		Description: `disco serves the healthy instances of registered services over plain DNS
(A, AAAA, SRV) and keeps them honest with active health checks.

Examples:
   disco serve                                  # DNS on 127.0.0.1:8053, admin API on 127.0.0.1:8054
   disco register web web-1 10.0.0.1:8080 --tag v2 --check-http http://10.0.0.1:8080/health
   dig @127.0.0.1 -p 8053 web.service.disco.internal SRV
   disco instances web`,
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {}, // main prints the one-line error
		Commands:        []*cli.Command{serveCommand(), versionCommand()},
	}
	app.Commands = append(app.Commands, clientCommands()...)
	app.Commands = append(app.Commands, zoneCommand())
	return finishApp(app)
}
