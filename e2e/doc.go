// Package e2e holds the end-to-end tests of one server: they drive the
// built disco binary as an operator would, a child process on loopback
// ports from :0, with the admin API, DNS clients (miekg/dns, Go's resolver,
// dig), the client commands, real resolvers (Unbound, dnsmasq) in front of
// it configured with the snippets of docs/forwarding.md, real secondaries
// (Knot, NSD, BIND) behind it configured with those of docs/transfers.md,
// health check targets, a browser on the status page, signals, SIGKILL,
// logs and metrics. Under go test -race the servers run a race-enabled
// build. A test that starts its own server and only waits on it runs in
// parallel with the others (t.Parallel); one that loads the machine or
// bounds a time runs alone. The tests of several servers on etcd are in e2e/cluster. The
// package has no code outside its tests.
package e2e
