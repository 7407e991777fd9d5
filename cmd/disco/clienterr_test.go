package main

import (
	"bytes"
	"context"
	"net"
	"slices"
	"strings"
	"testing"
)

// clientCase says how to call one client command for
// TestEveryClientCommandFailsCleanly.
type clientCase struct {
	// ok are arguments that succeed against the populated server.
	ok []string
	// bad are arguments refused before any request is sent.
	bad [][]string
	// rejected are arguments the server answers with a 4xx (none when the
	// command cannot be refused but for the token).
	rejected [][]string
	// follows is set for a command that runs until interrupted (it
	// follows changes): its good arguments are not run to the end.
	follows bool
}

// clientCases has an entry for every command that talks to the admin API.
var clientCases = map[string]clientCase{
	"register": {
		ok: []string{"web", "web-9", "10.0.0.9:80", "--tag", "v2"},
		bad: [][]string{{"web", "web-9"}, {"web", "web-9", "10.0.0.9"}, {"web", "web-9", "10.0.0.9:80", "--weight", "x"},
			{"web", "web-9", "10.0.0.9:80", "--interval", "5s"}, {"web", "web-9", "10.0.0.9:80", "--meta", "k"}},
		rejected: [][]string{{"web_app", "x", "10.0.0.1:80"}, {"web", "web-9", "10.0.0.9:80", "--weight", "70000"},
			{"web", "web-9", "10.0.0.9:80", "--check-http", "ftp://x/"}},
	},
	"deregister": {
		ok:       []string{"web", "web-1"},
		bad:      [][]string{{"web"}, {"web", "web-1", "extra"}},
		rejected: [][]string{{"web", "Bad_Id"}},
	},
	"services": {
		ok:  []string{},
		bad: [][]string{{"web"}, {"--output", "yaml"}, {"--admin", "ftp://x"}, {"--admin", "127.0.0.1:99999"}, {"--ca-cert", "/nonexistent.pem"}},
	},
	"instances": {
		ok:       []string{"web", "--output", "json"},
		bad:      [][]string{{}, {"web", "--output", "xml"}},
		rejected: [][]string{{"mail"}, {"bad_name"}},
	},
	"heartbeat": {
		ok:       []string{"web", "web-2"},
		bad:      [][]string{{"web"}},
		rejected: [][]string{{"web", "web-9"}},
	},
	"maintenance": {
		ok:       []string{"web", "web-1", "on", "--reason", "upgrade"},
		bad:      [][]string{{"web", "web-1"}, {"web", "web-1", "maybe"}, {"web", "web-1", "off", "--reason", "x"}},
		rejected: [][]string{{"web", "web-9", "on"}},
	},
	"settings": {
		ok:       []string{"web", "--dns-ttl", "30"},
		bad:      [][]string{{}, {"web", "--dns-ttl", "1.5s"}, {"web", "--dns-ttl", "banana"}},
		rejected: [][]string{{"mail"}, {"web", "--min-healthy-percent", "500"}},
	},
}

// TestEveryClientCommandFailsCleanly runs every command that talks to the
// admin API with bad arguments, against an unreachable server, with a
// wrong token and with arguments the server refuses: each time it exits
// non-zero after exactly one line on stderr that says what to do, prints
// nothing on stdout, and the registry is unchanged. The good arguments of
// each command then succeed, so that the cases stay meaningful.
func TestEveryClientCommandFailsCleanly(t *testing.T) {
	const token = "right-token"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	for _, c := range everyCommand(t) {
		if lookupFlag(c.cmd.Flags, "admin") == nil {
			continue
		}
		name := strings.Join(c.path, " ")
		cc, ok := clientCases[name]
		if !ok {
			t.Errorf("client command %q has no entry in clientCases: add one", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			s := newServer(t, token)
			t.Setenv("DISCO_TOKEN", token)
			s.populate(t)

			fail := func(t *testing.T, args []string, sent bool, says ...string) {
				t.Helper()
				before, n := s.reg.Snapshot(), s.requests.Load()
				argv := slices.Concat([]string{"disco"}, c.path, args)
				if !slices.Contains(args, "--admin") {
					argv = append(argv, "--admin", s.url)
				}
				var stdout, stderr bytes.Buffer
				code := runMain(context.Background(), argv, &stdout, &stderr)
				msg := stderr.String()
				switch {
				case code == 0:
					t.Errorf("%q succeeded: %q", argv, stdout.String())
				case stdout.Len() > 0:
					t.Errorf("%q printed %q on stdout", argv, stdout.String())
				case !strings.HasPrefix(msg, "disco: ") || strings.Count(msg, "\n") != 1 || !strings.HasSuffix(msg, "\n"):
					t.Errorf("%q: stderr is not one line: %q", argv, msg)
				}
				for _, want := range says {
					if !strings.Contains(msg, want) {
						t.Errorf("%q: %q does not say %q", argv, msg, want)
					}
				}
				if got := s.requests.Load() > n; got != sent {
					t.Errorf("%q: request sent %v, want %v", argv, got, sent)
				}
				if s.reg.Snapshot() != before {
					t.Errorf("%q changed the registry", argv)
				}
			}
			for _, args := range cc.bad {
				fail(t, args, false)
			}
			fail(t, slices.Concat(cc.ok, []string{"--admin", closed}), false,
				"cannot reach the disco admin API at "+closed, "is disco serve running there? Point --admin (or DISCO_ADMIN)")
			fail(t, slices.Concat(cc.ok, []string{"--token", "wrong-token"}), true,
				"401 Unauthorized: wrong admin token", "with --token (or DISCO_TOKEN)")
			t.Setenv("DISCO_TOKEN", "")
			fail(t, cc.ok, true, "401 Unauthorized", "--token or DISCO_TOKEN")
			t.Setenv("DISCO_TOKEN", token)
			for _, args := range cc.rejected {
				fail(t, args, true, "server said 4")
			}

			if cc.follows {
				return
			}
			var stdout, stderr bytes.Buffer
			argv := slices.Concat([]string{"disco"}, c.path, cc.ok, []string{"--admin", s.url})
			if code := runMain(context.Background(), argv, &stdout, &stderr); code != 0 || stderr.Len() > 0 || stdout.Len() == 0 {
				t.Errorf("%q: exit %d, stdout %q, stderr %q", argv, code, stdout.String(), stderr.String())
			}
		})
	}
}
