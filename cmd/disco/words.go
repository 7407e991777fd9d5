package main

import (
	"errors"
	"fmt"
	"strings"
)

// splitWords splits a command line into words as a POSIX shell splits
// them, without running one: blanks separate words; 'single quotes' keep
// everything inside; "double quotes" keep everything but \ before $ ` " \
// or a newline; a \ outside quotes keeps the next character. Nothing is
// expanded, so the characters a shell would act on ($ ` | & ; < > ( ) and
// a leading ~, * ? [ in a word) are refused unless quoted, rather than
// passed on as arguments the user did not mean.
func splitWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("a ' quote is not closed")
			}
			w.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0 {
					i++
					if s[i] == '\n' {
						continue
					}
				} else if s[i] == '$' || s[i] == '`' {
					return nil, fmt.Errorf("%c inside double quotes would be expanded by a shell; there is none: use single quotes", s[i])
				}
				w.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New(`a " quote is not closed`)
			}
			inWord = true
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New(`the line ends with a \`)
			}
			i++
			if s[i] != '\n' {
				w.WriteByte(s[i])
				inWord = true
			}
		case strings.IndexByte("$`|&;<>()", c) >= 0:
			return nil, fmt.Errorf("%c is for a shell, and the command runs without one; quote it to pass it on, or run a shell yourself: sh -c '...'", c)
		case !inWord && (c == '~' || c == '#'):
			return nil, fmt.Errorf("a word starting with %c is for a shell, and the command runs without one; quote it to pass it on", c)
		case c == '*' || c == '?' || c == '[':
			return nil, fmt.Errorf("%c would be a pattern for a shell, and the command runs without one; quote it to pass it on", c)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}
