package main

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// errDuration says what a duration flag takes.
var errDuration = errors.New("want a duration such as 10s, 500ms or 1m30s, or whole seconds such as 10")

// parseSeconds reads a duration flag's value: a Go duration ("10s",
// "1m30s", "500ms") or a bare integer, which means seconds ("10").
func parseSeconds(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > math.MaxInt64/int64(time.Second) || n < math.MinInt64/int64(time.Second) {
			return 0, errDuration
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errDuration
	}
	return d, nil
}

// secondsValue is the value of every duration flag of disco: what
// parseSeconds reads. Its String is a Go duration, so that
// cli.Context.Duration and cli.Context.String read it as before.
type secondsValue struct {
	d    time.Duration
	set  bool           // Set was called
	dest *time.Duration // also set, when not nil
}

// Set parses s.
func (v *secondsValue) Set(s string) error {
	d, err := parseSeconds(s)
	if err != nil {
		return err
	}
	v.d, v.set = d, true
	if v.dest != nil {
		*v.dest = d
	}
	return nil
}

// String is the duration as Go writes it, or "" for a flag without a
// default that was not set (so that its help shows no default).
func (v *secondsValue) String() string {
	if v.d == 0 && !v.set {
		return ""
	}
	return v.d.String()
}

// acceptSeconds replaces every cli.DurationFlag in flags with a flag of the
// same names, usage, default and environment variables whose value is a
// secondsValue: the standard parser takes "10s" but not "10".
func acceptSeconds(flags []cli.Flag) {
	for i, f := range flags {
		df, ok := f.(*cli.DurationFlag)
		if !ok {
			continue
		}
		gf := &cli.GenericFlag{
			Name: df.Name, Aliases: df.Aliases, Usage: df.Usage, Category: df.Category,
			EnvVars: df.EnvVars, FilePath: df.FilePath, Required: df.Required, Hidden: df.Hidden,
			DefaultText: df.DefaultText, HasBeenSet: df.HasBeenSet,
			Value: &secondsValue{d: df.Value, dest: df.Destination},
		}
		if df.Action != nil {
			action := df.Action
			gf.Action = func(c *cli.Context, v any) error { return action(c, v.(*secondsValue).d) }
		}
		flags[i] = gf
	}
}
