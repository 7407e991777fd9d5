// Package e2e holds end-to-end tests that drive the built disco binary as
// an operator would: a child process on loopback ports, real resolvers
// (Unbound, dnsmasq) in front of it configured with the snippets of
// docs/forwarding.md, real secondaries (Knot, NSD, BIND) behind it
// configured with those of docs/transfers.md, signals, logs and metrics.
// The package has no code outside its tests.
package e2e
