package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestEveryCommandHasExamples runs "disco ... --help" for the application
// and every command and subcommand, and wants an Examples section whose
// first example is a disco command line.
func TestEveryCommandHasExamples(t *testing.T) {
	paths := [][]string{{}}
	var walk func(prefix []string, cmds []*cli.Command)
	walk = func(prefix []string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Hidden || c.Name == "help" {
				continue
			}
			p := append(append([]string(nil), prefix...), c.Name)
			paths = append(paths, p)
			walk(p, c.Subcommands)
		}
	}
	walk(nil, newApp(nil, nil).Commands)
	if len(paths) < 10 {
		t.Fatalf("found only %d commands: %v", len(paths), paths)
	}
	for _, p := range paths {
		name := strings.Join(append([]string{"disco"}, p...), " ")
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append(append([]string{"disco"}, p...), "--help")
			if err := newApp(&stdout, &stderr).Run(args); err != nil {
				t.Fatalf("%s --help: %v\n%s", name, err, stderr.String())
			}
			help := stdout.String()
			_, examples, ok := strings.Cut(help, "Examples:\n")
			if !ok {
				t.Fatalf("%s --help has no Examples section:\n%s", name, help)
			}
			first := strings.TrimSpace(strings.SplitN(examples, "\n", 2)[0])
			if !strings.HasPrefix(first, name) {
				t.Errorf("%s --help: first example %q does not run %s", name, first, name)
			}
		})
	}
}
