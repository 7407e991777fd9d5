package main

import (
	"slices"
	"strings"
	"testing"
)

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{"/usr/lib/nagios/plugins/check_disk -w 10% -c 5%", []string{"/usr/lib/nagios/plugins/check_disk", "-w", "10%", "-c", "5%"}, ""},
		{"  check   a\tb\n c ", []string{"check", "a", "b", "c"}, ""},
		{`check 'two words' "and more" mixed'quo'"ted"`, []string{"check", "two words", "and more", "mixedquoted"}, ""},
		{`check '' ""`, []string{"check", "", ""}, ""},
		{`check 'it''s' "a \"b\" \\ \$x" \$HOME a\ b`, []string{"check", "its", `a "b" \ $x`, "$HOME", "a b"}, ""},
		{`check "keep \n and \a"`, []string{"check", `keep \n and \a`}, ""},
		{`check '$HOME | * ~ #'`, []string{"check", "$HOME | * ~ #"}, ""},
		{"check a\\\nb", []string{"check", "ab"}, ""},
		{`check x#y a~b`, []string{"check", "x#y", "a~b"}, ""},
		{"", nil, ""},
		{"   ", nil, ""},
		{`check 'open`, nil, "a ' quote is not closed"},
		{`check "open`, nil, `a " quote is not closed`},
		{`check \`, nil, `the line ends with a \`},
		{`check | grep ok`, nil, "| is for a shell, and the command runs without one"},
		{`check; rm -rf /`, nil, "; is for a shell"},
		{`check $HOME`, nil, "$ is for a shell"},
		{`check "$HOME"`, nil, "$ inside double quotes would be expanded by a shell"},
		{"check `id`", nil, "` is for a shell"},
		{`check > out`, nil, "> is for a shell"},
		{`check ~/x`, nil, "a word starting with ~ is for a shell"},
		{`check # note`, nil, "a word starting with # is for a shell"},
		{`check *.conf`, nil, "* would be a pattern for a shell"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := splitWords(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("got %q, %v; want an error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// FuzzSplitWords checks that splitting never panics, and that words
// quoted back with single quotes split to the same words.
func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{`a 'b c' "d \" e" f\ g`, `'`, `"\`, "a\\\n", `x"$"`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := splitWords(s)
		if err != nil {
			return
		}
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		again, err := splitWords(strings.Join(quoted, " "))
		if err != nil || !slices.Equal(again, words) {
			t.Fatalf("%q split to %q; quoted back %q split to %q, %v", s, words, quoted, again, err)
		}
	})
}
