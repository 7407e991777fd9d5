package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// The journal makes commits cheap: a commit appends one framed record to
// the current journal file and syncs it (one sequential write and one
// fdatasync, whatever the number of changes), and a checkpoint later copies
// the journaled changes into the bbolt file in one synced transaction and
// deletes the journal files it covered. On Open, journal files left by a
// crash are replayed into the bbolt file first. Replaying is idempotent,
// since every change is a whole record put or deleted by key.
//
// A record is: length (4 bytes, big endian) | CRC-32C of the payload (4) |
// payload. The payload is a sequence of operations: kind (1 byte: 0 put
// instance, 1 delete instance, 2 put service) | key length (2) | key |
// value length (4) | value.

const (
	journalPrefix = "journal-"
	journalSuffix = ".log"
	// maxRecord bounds one record so that a damaged length cannot make
	// replay allocate without limit.
	maxRecord = 256 << 20
)

const (
	kindPutInstance byte = iota
	kindDeleteInstance
	kindPutService
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// op is one change in the form the bbolt file stores it.
type op struct {
	bucket, key, val []byte // val nil: delete
}

func (o op) kind() byte {
	switch {
	case string(o.bucket) == string(bucketServices):
		return kindPutService
	case o.val == nil:
		return kindDeleteInstance
	}
	return kindPutInstance
}

// appendRecord frames ops as one journal record.
func appendRecord(dst []byte, ops []op) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, 8)...)
	for _, o := range ops {
		dst = append(dst, o.kind())
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(o.key)))
		dst = append(dst, o.key...)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(o.val)))
		dst = append(dst, o.val...)
	}
	payload := dst[start+8:]
	binary.BigEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, castagnoli))
	return dst
}

// parseRecord decodes one record's payload.
func parseRecord(payload []byte) ([]op, error) {
	var ops []op
	for len(payload) > 0 {
		if len(payload) < 3 {
			return nil, errors.New("operation header cut short")
		}
		kind, klen := payload[0], int(binary.BigEndian.Uint16(payload[1:]))
		payload = payload[3:]
		if len(payload) < klen+4 {
			return nil, errors.New("operation key cut short")
		}
		key := payload[:klen]
		vlen := int(binary.BigEndian.Uint32(payload[klen:]))
		payload = payload[klen+4:]
		if len(payload) < vlen {
			return nil, errors.New("operation value cut short")
		}
		val := payload[:vlen]
		payload = payload[vlen:]
		switch kind {
		case kindPutInstance:
			if _, err := decodeInstance(key, val); err != nil {
				return nil, fmt.Errorf("instance %q: %w", key, err)
			}
			ops = append(ops, op{bucketInstances, key, val})
		case kindDeleteInstance:
			ops = append(ops, op{bucketInstances, key, nil})
		case kindPutService:
			if _, err := decodeSettings(key, val); err != nil {
				return nil, fmt.Errorf("service %q: %w", key, err)
			}
			ops = append(ops, op{bucketServices, key, val})
		default:
			return nil, fmt.Errorf("unknown operation kind %d", kind)
		}
	}
	return ops, nil
}

func journalName(dir string, seq uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%s%016x%s", journalPrefix, seq, journalSuffix))
}

// journalFiles lists the journal files in dir by sequence number.
func journalFiles(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list data dir %s: %w", dir, err)
	}
	var seqs []uint64
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, journalPrefix) || !strings.HasSuffix(name, journalSuffix) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, journalPrefix), journalSuffix), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("data dir %s: unexpected file %s", dir, name)
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs, nil
}

// readJournal returns the operations of every whole record in the journal
// file path. A record cut short or failing its checksum ends a file that
// was being written when the process stopped (last): its writer was never
// told the write succeeded, so it is dropped and reported in torn. Anywhere
// else it is corruption.
func readJournal(path string, last bool) (ops []op, torn int64, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, fmt.Errorf("read journal %s: %w", path, err)
	}
	off := 0
	for off < len(data) {
		bad := ""
		var payload []byte
		switch {
		case len(data)-off < 8:
			bad = "record header cut short"
		default:
			n := int(binary.BigEndian.Uint32(data[off:]))
			switch {
			case n > maxRecord || n > len(data)-off-8:
				bad = "record cut short"
			default:
				payload = data[off+8 : off+8+n]
				if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(data[off+4:]) {
					bad = "record checksum mismatch"
				}
			}
		}
		if bad != "" {
			if last {
				return ops, int64(len(data) - off), nil
			}
			return nil, 0, corrupt(path, fmt.Errorf("offset %d: %s", off, bad))
		}
		recOps, err := parseRecord(payload)
		if err != nil {
			return nil, 0, corrupt(path, fmt.Errorf("offset %d: %w", off, err))
		}
		ops = append(ops, recOps...)
		off += 8 + len(payload)
	}
	return ops, 0, nil
}

// applyOps writes ops into the bbolt file in one synced transaction.
func applyOps(db *bolt.DB, ops []op) error {
	return db.Update(func(tx *bolt.Tx) error {
		for _, o := range ops {
			bk := tx.Bucket(o.bucket)
			var err error
			if o.val == nil {
				err = bk.Delete(o.key)
			} else {
				err = bk.Put(o.key, o.val)
			}
			if err != nil {
				return fmt.Errorf("bucket %q, key %q: %w", o.bucket, o.key, err)
			}
		}
		return nil
	})
}

// journal is the open, current journal file.
type journal struct {
	dir  string
	seq  uint64
	f    *os.File
	size int64
	buf  []byte
	sync flusher
}

// flusher makes a file's written data durable.
type flusher interface {
	sync(f *os.File) error
}

// createJournal creates journal file seq and makes its directory entry
// durable.
func createJournal(dir string, seq uint64, s flusher) (*journal, error) {
	path := journalName(dir, seq)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create journal %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return &journal{dir: dir, seq: seq, f: f, sync: s}, nil
}

// append writes ops as one record and syncs it. On failure the file is cut
// back to its last whole record; if even that fails the journal must not be
// written again (broken).
func (j *journal) append(ops []op) (broken bool, err error) {
	j.buf = appendRecord(j.buf[:0], ops)
	if _, err = j.f.Write(j.buf); err == nil {
		err = j.sync.sync(j.f)
		if err != nil {
			// After a failed sync the page cache cannot be trusted.
			return true, fmt.Errorf("sync journal %s: %w", j.f.Name(), err)
		}
		j.size += int64(len(j.buf))
		if cap(j.buf) > 1<<20 {
			j.buf = nil // don't keep a huge buffer after a huge batch
		}
		return false, nil
	}
	err = fmt.Errorf("write journal %s: %w", j.f.Name(), err)
	if terr := j.f.Truncate(j.size); terr != nil {
		return true, errors.Join(err, terr)
	}
	if _, serr := j.f.Seek(0, io.SeekEnd); serr != nil {
		return true, errors.Join(err, serr)
	}
	return false, err
}

func (j *journal) close() error { return j.f.Close() }

func (j *journal) remove() error {
	if err := os.Remove(j.f.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
