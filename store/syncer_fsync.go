//go:build !(linux && (amd64 || arm64))

package store

import "os"

// syncer makes a file durable with fsync(2).
type syncer struct{}

func newSyncer() *syncer { return &syncer{} }

func (*syncer) async() bool { return false }

// describe says how s flushes, for the start-up log.
func (*syncer) describe() string { return "fsync" }

// sync flushes f to stable storage.
func (*syncer) sync(f *os.File) error { return f.Sync() }

func (*syncer) close() error { return nil }
