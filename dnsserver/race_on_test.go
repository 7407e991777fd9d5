//go:build race

package dnsserver

// raceEnabled is true when the tests run under the race detector.
const raceEnabled = true
