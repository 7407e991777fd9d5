package tsig

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/miekg/dns"
)

// maxFileBytes bounds a key file: a key statement is about 100 bytes.
const maxFileBytes = 1 << 20

// ParseError is a problem in a key file, at a line.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// LoadFile reads the keys of a file in the BIND syntax tsig-keygen writes:
//
//	key "xfr" {
//		algorithm hmac-sha256;
//		secret "base64...";
//	};
//
// Comments (#, //, /* */) are allowed; anything but key statements, a key
// without an algorithm or a secret, an unsupported algorithm, a secret that
// is not base64 or a name used twice is a *ParseError naming the line.
func LoadFile(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tsig keys: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads keys from r as LoadFile does; file names the source in errors.
func Parse(r io.Reader, file string) (*Keyring, error) {
	src, err := io.ReadAll(io.LimitReader(r, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("tsig keys: read %s: %w", file, err)
	}
	if len(src) > maxFileBytes {
		return nil, &ParseError{File: file, Line: 1, Msg: fmt.Sprintf("file is larger than %d bytes", maxFileBytes)}
	}
	p := &parser{file: file, lx: lexer{src: src, line: 1}}
	keys, err := p.file_()
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, &ParseError{File: file, Line: p.lx.line, Msg: `no key statement (want: key "name" { algorithm hmac-sha256; secret "..."; };)`}
	}
	ring := &Keyring{keys: make(map[string]*Key, len(keys))}
	for _, k := range keys {
		if _, dup := ring.keys[k.key.Name]; dup {
			return nil, &ParseError{File: file, Line: k.line, Msg: fmt.Sprintf("key %q is defined twice", k.name)}
		}
		ring.keys[k.key.Name] = k.key
	}
	return ring, nil
}

type parsedKey struct {
	key  *Key
	name string
	line int
}

type parser struct {
	file string
	lx   lexer
}

func (p *parser) errorf(line int, format string, args ...any) error {
	return &ParseError{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// expect reads the next token and fails unless it is want.
func (p *parser) expect(want string) error {
	t, err := p.lx.next()
	if err != nil {
		return p.errorf(p.lx.line, "%s", err)
	}
	if t.eof {
		return p.errorf(t.line, "unexpected end of file, want %q", want)
	}
	if t.text != want || t.quoted {
		return p.errorf(t.line, "unexpected %q, want %q", t.text, want)
	}
	return nil
}

func (p *parser) file_() ([]parsedKey, error) {
	var keys []parsedKey
	for {
		t, err := p.lx.next()
		if err != nil {
			return nil, p.errorf(p.lx.line, "%s", err)
		}
		if t.eof {
			return keys, nil
		}
		if t.text != "key" || t.quoted {
			return nil, p.errorf(t.line, "unexpected %q: only key statements are allowed here", t.text)
		}
		k, err := p.key(t.line)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
}

// key reads the rest of a key statement after "key".
func (p *parser) key(line int) (parsedKey, error) {
	name, err := p.lx.next()
	if err != nil {
		return parsedKey{}, p.errorf(p.lx.line, "%s", err)
	}
	if name.eof || (!name.quoted && isPunct(name.text)) || name.text == "" {
		return parsedKey{}, p.errorf(name.line, "key statement without a name")
	}
	if err := p.expect("{"); err != nil {
		return parsedKey{}, err
	}
	var alg, secret string
	algLine, secretLine := 0, 0
	for {
		t, err := p.lx.next()
		if err != nil {
			return parsedKey{}, p.errorf(p.lx.line, "%s", err)
		}
		if t.eof {
			return parsedKey{}, p.errorf(t.line, "key %q is not closed with \"};\"", name.text)
		}
		if t.text == "}" && !t.quoted {
			break
		}
		v, err := p.lx.next()
		if err != nil {
			return parsedKey{}, p.errorf(p.lx.line, "%s", err)
		}
		if v.eof || (!v.quoted && isPunct(v.text)) {
			return parsedKey{}, p.errorf(t.line, "%q without a value", t.text)
		}
		switch {
		case t.text == "algorithm" && !t.quoted:
			if algLine != 0 {
				return parsedKey{}, p.errorf(t.line, "key %q has two algorithms", name.text)
			}
			alg, algLine = v.text, t.line
		case t.text == "secret" && !t.quoted:
			if secretLine != 0 {
				return parsedKey{}, p.errorf(t.line, "key %q has two secrets", name.text)
			}
			secret, secretLine = v.text, t.line
		default:
			return parsedKey{}, p.errorf(t.line, "unknown %q in key %q (want algorithm and secret)", t.text, name.text)
		}
		if err := p.expect(";"); err != nil {
			return parsedKey{}, err
		}
	}
	if err := p.expect(";"); err != nil {
		return parsedKey{}, err
	}
	switch {
	case algLine == 0:
		return parsedKey{}, p.errorf(line, "key %q has no algorithm (e.g. algorithm hmac-sha256;)", name.text)
	case secretLine == 0:
		return parsedKey{}, p.errorf(line, "key %q has no secret", name.text)
	}
	if err := checkName(name.text); err != nil {
		return parsedKey{}, p.errorf(name.line, "%s", err)
	}
	canon, h, err := algorithmOf(alg)
	if err != nil {
		return parsedKey{}, p.errorf(algLine, "key %q: %s", name.text, err)
	}
	raw, err := decodeSecret(secret)
	if err != nil {
		return parsedKey{}, p.errorf(secretLine, "key %q: %s", name.text, err)
	}
	k := &Key{Name: dns.CanonicalName(name.text), Algorithm: canon, secret: raw, hash: h}
	return parsedKey{key: k, name: name.text, line: line}, nil
}

func isPunct(s string) bool { return s == "{" || s == "}" || s == ";" }

// token is one word, quoted string or punctuation of a key file.
type token struct {
	text   string
	quoted bool
	eof    bool
	line   int
}

// lexer splits a key file into tokens, skipping blanks and comments.
type lexer struct {
	src  []byte
	off  int
	line int
	// last is the line of the last token, where the end of the file is
	// reported.
	last int
}

func (l *lexer) next() (token, error) {
	t, err := l.scan()
	if !t.eof {
		l.last = t.line
	} else if l.last > 0 {
		t.line = l.last
	}
	return t, err
}

func (l *lexer) scan() (token, error) {
	for l.off < len(l.src) {
		c := l.src[l.off]
		switch {
		case c == '\n':
			l.line++
			l.off++
		case c == ' ' || c == '\t' || c == '\r':
			l.off++
		case c == '#' || (c == '/' && l.peek(1) == '/'):
			for l.off < len(l.src) && l.src[l.off] != '\n' {
				l.off++
			}
		case c == '/' && l.peek(1) == '*':
			start := l.line
			end := bytes.Index(l.src[l.off+2:], []byte("*/"))
			if end < 0 {
				return token{}, fmt.Errorf("comment opened at line %d is not closed", start)
			}
			l.line += bytes.Count(l.src[l.off:l.off+2+end], []byte("\n"))
			l.off += 2 + end + 2
		case c == '{' || c == '}' || c == ';':
			l.off++
			return token{text: string(c), line: l.line}, nil
		case c == '"':
			start := l.line
			end := bytes.IndexByte(l.src[l.off+1:], '"')
			if end < 0 {
				return token{}, fmt.Errorf("string opened at line %d is not closed", start)
			}
			s := l.src[l.off+1 : l.off+1+end]
			if bytes.IndexByte(s, '\n') >= 0 {
				return token{}, fmt.Errorf("string opened at line %d runs past the end of the line", start)
			}
			l.off += end + 2
			return token{text: string(s), quoted: true, line: start}, nil
		default:
			start := l.off
			for l.off < len(l.src) && !isSpaceOrPunct(l.src[l.off]) {
				l.off++
			}
			return token{text: string(l.src[start:l.off]), line: l.line}, nil
		}
	}
	return token{eof: true, line: l.line}, nil
}

func (l *lexer) peek(n int) byte {
	if l.off+n < len(l.src) {
		return l.src[l.off+n]
	}
	return 0
}

func isSpaceOrPunct(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '{', '}', ';', '"', '#':
		return true
	}
	return false
}
