// Package cluster holds the end-to-end tests of several disco servers
// sharing one registry in etcd: real etcd servers and disco processes on
// loopback, driven over the admin API and DNS. The tests are skipped when
// etcd (Debian package etcd-server) is not installed.
package cluster
