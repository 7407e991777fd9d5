// Package disco is the root of the disco module: a DNS-based service
// discovery server. The binary is cmd/disco; docs/architecture.md shows how
// its packages fit together. This package holds no code, only the test that
// keeps the packages' import graph pointing one way (layering_test.go).
package disco
