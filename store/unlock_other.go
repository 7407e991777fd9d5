//go:build !unix

package store

import "os"

// unlock does nothing where bbolt does not use flock; closing f releases
// its lock.
func unlock(*os.File) {}
