// Package store keeps disco's registry durable in a bbolt file. It
// implements registry.Store: the registry commits its writes through Commit
// and reads them back with Load when the server starts.
//
// The data file, <data dir>/disco.db, has three buckets: "meta" holds
// "schema_version" (a decimal string, now "1"); "instances" maps
// "service/id" to the JSON of a registry.Instance (health is not stored);
// "services" maps a service name to the JSON of its registry.Settings, for
// the services whose settings were written. A change of layout or meaning
// raises the schema version, which older servers refuse; fields added within
// one version are ignored by servers that do not know them.
//
// Every record is checked on the way in and on the way out against the
// registry's own validation, so a record that would not load is never
// written, and one that does not load stops the server instead of being
// dropped.
package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"disco/registry"
)

// FileName is the name of the data file inside the data directory.
const FileName = "disco.db"

// SchemaVersion is the layout version this package writes. A data file of a
// newer version is refused rather than misread.
const SchemaVersion = 1

// DefaultLockTimeout is how long Open waits for the data file's lock when
// Options.LockTimeout is zero.
const DefaultLockTimeout = 100 * time.Millisecond

// Errors that callers tell apart with errors.Is.
var (
	// ErrInUse marks a data directory another process holds open.
	ErrInUse = errors.New("in use by another disco server")
	// ErrCorrupt marks a data file that cannot be read back as a registry.
	ErrCorrupt = errors.New("corrupt")
	// ErrSchema marks a data file written with a newer schema version.
	ErrSchema = errors.New("unsupported schema version")
)

// The layout of the data file: one bucket per kind of record.
var (
	// bucketMeta holds keySchema, the schema version as a decimal string.
	bucketMeta = []byte("meta")
	// bucketServices maps a service name to the JSON of its
	// registry.Settings; only services whose settings were written have one.
	bucketServices = []byte("services")
	// bucketInstances maps "service/id" to the JSON of a registry.Instance
	// (which leaves out Health).
	bucketInstances = []byte("instances")
	keySchema       = []byte("schema_version")
)

// Checkpoint defaults: the journal is copied into the bbolt file when it
// holds this much, or this long after its first record.
const (
	DefaultCheckpointBytes    = 16 << 20
	DefaultCheckpointInterval = 10 * time.Second
)

// Options configure Open.
type Options struct {
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// LockTimeout is how long Open waits for another process to release the
	// data file; 0 means DefaultLockTimeout.
	LockTimeout time.Duration
	// CheckpointBytes and CheckpointInterval set when the journal is copied
	// into the bbolt file; 0 means the defaults.
	CheckpointBytes    int64
	CheckpointInterval time.Duration
}

// Bolt keeps the registry in a bbolt file (go.etcd.io/bbolt) in a data
// directory, with a journal in front of it: every Commit is one record
// appended to the journal and synced before it returns, and a background
// checkpoint copies the journal into the bbolt file. Its methods are safe
// for concurrent use.
type Bolt struct {
	db   *bolt.DB
	dir  string
	path string
	log  *slog.Logger

	ckptBytes    int64
	ckptInterval time.Duration
	kick         chan struct{}
	syncer       *syncer // flushes the journal
	stop         chan struct{}
	stopped      chan struct{}

	mu      sync.Mutex
	j       *journal
	pending []op  // journaled since the last checkpoint began
	broken  error // set when the journal or a checkpoint failed
	closed  bool
}

var _ registry.Store = (*Bolt)(nil)

// Open opens the data file dir/disco.db, creating dir (mode 0700) and the
// file if they are missing. It fails at once if another process has the file
// open, and with an error naming the file if the file is unreadable,
// corrupt, or of a newer schema version.
func Open(dir string, opts Options) (*Bolt, error) {
	if dir == "" {
		return nil, errors.New("open store: data dir is empty")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "store")
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}

	_, err := os.Stat(dir)
	newDir := errors.Is(err, fs.ErrNotExist)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	_, err = os.Lstat(path)
	newFile := errors.Is(err, fs.ErrNotExist)

	var (
		db   *bolt.DB
		file *os.File
	)
	err = guard(path, func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{
			Timeout: timeout,
			OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
				file, err = os.OpenFile(name, flag, perm)
				return file, err
			},
		})
		return err
	})
	if err != nil && db == nil && file != nil {
		// bbolt panicked halfway through opening: release the lock and the
		// file, which it could not. (Its memory map stays; the lock must be
		// dropped explicitly because the map keeps the open file alive.)
		unlock(file)
		_ = file.Close()
	}
	switch {
	case err == nil:
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("data dir %s is %w (lock on %s)", dir, ErrInUse, path)
	case errors.Is(err, ErrCorrupt):
		return nil, err
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch):
		return nil, corrupt(path, err)
	case tooShort(path):
		// bbolt reports a file shorter than its two meta pages with an
		// error of no type of its own.
		return nil, corrupt(path, fmt.Errorf("truncated below its two meta pages: %w", err))
	default:
		return nil, fmt.Errorf("open data file %s: %w", path, err)
	}
	b := &Bolt{db: db, dir: dir, path: path, log: log,
		ckptBytes: opts.CheckpointBytes, ckptInterval: opts.CheckpointInterval,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{}), syncer: newSyncer()}
	if b.ckptBytes <= 0 {
		b.ckptBytes = DefaultCheckpointBytes
	}
	if b.ckptInterval <= 0 {
		b.ckptInterval = DefaultCheckpointInterval
	}
	if err := b.initSchema(); err != nil {
		_ = db.Close()
		_ = b.syncer.close()
		return nil, err
	}
	if err := b.recover(); err != nil {
		_ = db.Close()
		_ = b.syncer.close()
		return nil, err
	}
	if newFile {
		// Make the new file's directory entry durable too, or a crash could
		// lose the file with every write acknowledged in it.
		err := syncDir(dir)
		if err == nil && newDir {
			err = syncDir(filepath.Dir(dir))
		}
		if err != nil {
			_ = db.Close()
			_ = b.syncer.close()
			return nil, fmt.Errorf("create data file %s: %w", path, err)
		}
	}
	go b.checkpointer()
	log.Info("data file opened", "path", path, "created", newFile, "journal_flush", b.syncer.describe())
	return b, nil
}

// recover replays the journal files a previous process left into the bbolt
// file, removes them, and starts a new journal.
func (b *Bolt) recover() error {
	seqs, err := journalFiles(b.dir)
	if err != nil {
		return err
	}
	next := uint64(1)
	if len(seqs) > 0 {
		var ops []op
		for i, seq := range seqs {
			path := journalName(b.dir, seq)
			fileOps, torn, err := readJournal(path, i == len(seqs)-1)
			if err != nil {
				return err
			}
			if torn > 0 {
				b.log.Warn("dropped the incomplete last record of the journal: a write that was never acknowledged",
					"path", path, "bytes", torn)
			}
			ops = append(ops, fileOps...)
		}
		if err := guard(b.path, func() error { return applyOps(b.db, ops) }); err != nil {
			return fmt.Errorf("replay journal into %s: %w", b.path, err)
		}
		for _, seq := range seqs {
			if err := os.Remove(journalName(b.dir, seq)); err != nil {
				return fmt.Errorf("remove replayed journal: %w", err)
			}
		}
		b.log.Info("journal replayed", "files", len(seqs), "changes", len(ops))
		next = seqs[len(seqs)-1] + 1
	}
	b.j, err = createJournal(b.dir, next, b.syncer)
	return err
}

// checkpointer copies the journal into the bbolt file when it grows past
// the threshold, and at the interval, until Close.
func (b *Bolt) checkpointer() {
	defer close(b.stopped)
	tick := time.NewTicker(b.ckptInterval)
	defer tick.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-b.kick:
		case <-tick.C:
		}
		if err := b.checkpoint(); err != nil {
			b.log.Error("checkpoint failed; writes are refused until a restart replays the journal", "err", err)
		}
	}
}

// checkpoint starts a new journal file, copies the changes of the previous
// one into the bbolt file in one synced transaction, and removes it. Only
// the checkpointer and Close call it.
func (b *Bolt) checkpoint() error {
	b.mu.Lock()
	if b.broken != nil || len(b.pending) == 0 {
		b.mu.Unlock()
		return nil
	}
	old, ops := b.j, b.pending
	j, err := createJournal(b.dir, old.seq+1, b.syncer)
	if err != nil {
		b.mu.Unlock()
		return err // keep appending to the old journal; try again later
	}
	b.j, b.pending = j, nil
	b.mu.Unlock()

	start := time.Now()
	err = guard(b.path, func() error { return applyOps(b.db, ops) })
	if err == nil {
		err = old.close()
	}
	if err == nil {
		err = old.remove()
	}
	if err != nil {
		err = fmt.Errorf("checkpoint %d changes into %s: %w", len(ops), b.path, err)
		b.mu.Lock()
		// Journal files replay in order over the bbolt file, so a later
		// checkpoint must not overtake this failed one: stop here.
		b.broken = err
		b.mu.Unlock()
		return err
	}
	b.log.Debug("checkpoint", "changes", len(ops), "took", time.Since(start))
	return nil
}

// Path returns the data file's path.
func (b *Bolt) Path() string { return b.path }

// initSchema checks the schema version of an existing file, or lays out a
// new one.
func (b *Bolt) initSchema() error {
	fresh := false
	err := guard(b.path, func() error {
		return b.db.View(func(tx *bolt.Tx) error {
			// bbolt does not notice a file cut short past its meta pages.
			if fi, err := os.Stat(b.path); err == nil && fi.Size() < tx.Size() {
				return corrupt(b.path, fmt.Errorf("truncated: %d bytes, its pages reach %d", fi.Size(), tx.Size()))
			}
			meta := tx.Bucket(bucketMeta)
			if meta == nil {
				empty := true
				_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
				if !empty {
					return corrupt(b.path, errors.New("no schema version: not a disco data file"))
				}
				fresh = true
				return nil
			}
			raw := meta.Get(keySchema)
			v, err := strconv.ParseUint(string(raw), 10, 32)
			switch {
			case err != nil || v == 0:
				return corrupt(b.path, fmt.Errorf("bucket %q, key %q: bad schema version %q", bucketMeta, keySchema, raw))
			case v > SchemaVersion:
				return fmt.Errorf("data file %s has schema version %d, newer than the %d this disco reads: %w (run a newer disco)",
					b.path, v, SchemaVersion, ErrSchema)
			}
			for _, name := range [][]byte{bucketServices, bucketInstances} {
				if tx.Bucket(name) == nil {
					return corrupt(b.path, fmt.Errorf("bucket %q is missing", name))
				}
			}
			return nil
		})
	})
	if err != nil || !fresh {
		return err
	}
	err = guard(b.path, func() error {
		return b.db.Update(func(tx *bolt.Tx) error {
			for _, name := range [][]byte{bucketMeta, bucketServices, bucketInstances} {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return err
				}
			}
			return tx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(SchemaVersion)))
		})
	})
	if err != nil {
		return fmt.Errorf("initialise data file %s: %w", b.path, err)
	}
	return nil
}

// Load reads every stored service setting and instance. A record that does
// not decode, or that the registry would refuse, is an error naming the
// file, bucket and key: the store never silently drops what it was given.
func (b *Bolt) Load(ctx context.Context) (*registry.State, error) {
	if err := b.checkpoint(); err != nil {
		return nil, err
	}
	st := &registry.State{Services: make(map[string]registry.Settings)}
	err := guard(b.path, func() error {
		return b.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketServices).Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				s, err := decodeSettings(k, v)
				if err != nil {
					return b.badRecord(bucketServices, k, err)
				}
				st.Services[string(k)] = s
			}
			// Gather the instance records, then decode them in parallel:
			// decoding is most of the start-up time. The slices point into
			// the memory map, valid until the transaction ends.
			var keys, vals [][]byte
			c = tx.Bucket(bucketInstances).Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				keys, vals = append(keys, k), append(vals, v)
			}
			var err error
			st.Instances, err = b.decodeInstances(ctx, keys, vals)
			return err
		})
	})
	switch {
	case err == nil:
		return st, nil
	case errors.Is(err, ErrCorrupt):
		return nil, err
	}
	return nil, fmt.Errorf("read data file %s: %w", b.path, err)
}

// decodeInstances decodes instance records on every CPU. On failure it
// returns the error of the first bad record in key order.
func (b *Bolt) decodeInstances(ctx context.Context, keys, vals [][]byte) ([]*registry.Instance, error) {
	out := make([]*registry.Instance, len(keys))
	workers := min(runtime.GOMAXPROCS(0), 1+len(keys)/1024)
	per := (len(keys) + workers - 1) / workers
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*per, min((w+1)*per, len(keys))
		wg.Go(func() {
			errs[w] = guard(b.path, func() error {
				for i := lo; i < hi; i++ {
					if (i-lo)%4096 == 4095 {
						if err := ctx.Err(); err != nil {
							return err
						}
					}
					in, err := decodeInstance(keys[i], vals[i])
					if err != nil {
						return b.badRecord(bucketInstances, keys[i], err)
					}
					out[i] = in
				}
				return nil
			})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Commit stores changes, in order, as one journal record, and returns once
// the record is synced to disk. Either all changes are stored or none.
func (b *Bolt) Commit(ctx context.Context, changes []registry.Change) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if len(changes) == 0 {
		return nil
	}
	// Encode first: a bad change fails the commit before the write lock is
	// taken, and the transaction holds it only for the puts.
	ops := make([]op, 0, len(changes))
	for i, c := range changes {
		o, err := func() (op, error) {
			switch c.Op {
			case registry.OpPutInstance:
				if c.Instance == nil || c.Instance.Service != c.Service {
					return op{}, errors.New("instance does not belong to the change's service")
				}
				v, err := encodeInstance(c.Instance)
				return op{bucketInstances, instanceKey(c.Service, c.Instance.ID), v}, err
			case registry.OpDeleteInstance:
				if !registry.ValidName(c.Service) || !registry.ValidName(c.ID) {
					return op{}, fmt.Errorf("bad instance name %q", instanceKey(c.Service, c.ID))
				}
				return op{bucketInstances, instanceKey(c.Service, c.ID), nil}, nil
			case registry.OpPutService:
				v, err := encodeSettings(c.Service, c.Settings)
				return op{bucketServices, []byte(c.Service), v}, err
			}
			return op{}, fmt.Errorf("unknown op %d", c.Op)
		}()
		if err != nil {
			return fmt.Errorf("commit: change %d (%s %s): %w", i+1, c.Op, c.Service, err)
		}
		ops = append(ops, o)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return fmt.Errorf("commit to %s: store is closed", b.path)
	case b.broken != nil:
		return fmt.Errorf("commit to %s: %w", b.path, b.broken)
	}
	broken, err := b.j.append(ops)
	if err != nil {
		if broken {
			b.broken = err
		}
		return fmt.Errorf("commit %d changes to %s: %w", len(changes), b.path, err)
	}
	b.pending = append(b.pending, ops...)
	if b.j.size >= b.ckptBytes {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// Close checkpoints the journal and closes the data file, waiting for a
// Commit in progress. Commits after Close fail.
func (b *Bolt) Close() error {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return fmt.Errorf("close data file %s: already closed", b.path)
	}
	close(b.stop)
	<-b.stopped
	cerr := b.checkpoint()
	b.mu.Lock()
	b.closed = true
	j, clean := b.j, b.broken == nil && cerr == nil && len(b.pending) == 0
	b.mu.Unlock()
	if err := j.close(); err != nil && cerr == nil {
		cerr = fmt.Errorf("close journal: %w", err)
	}
	if clean {
		// Everything is in the bbolt file; the empty journal can go.
		if err := j.remove(); err != nil && cerr == nil {
			cerr = fmt.Errorf("remove journal: %w", err)
		}
	}
	if err := b.syncer.close(); err != nil && cerr == nil {
		cerr = fmt.Errorf("close journal: %w", err)
	}
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("close data file %s: %w", b.path, err)
	}
	b.log.Info("data file closed", "path", b.path)
	return cerr
}

func (b *Bolt) badRecord(bucket, key []byte, err error) error {
	return corrupt(b.path, fmt.Errorf("bucket %q, key %q: %w", bucket, key, err))
}

func corrupt(path string, err error) error {
	return fmt.Errorf("data file %s is %w: %w (restore it from a backup, or move it aside to start with an empty registry)",
		path, ErrCorrupt, err)
}

// tooShort reports whether the file at path is shorter than the two meta
// pages every bbolt file starts with (a new file is created with four).
func tooShort(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Size() < 2*int64(os.Getpagesize())
}

// guard runs f, turning a panic or a fault on the memory-mapped file (a
// truncated or damaged file) into an error instead of a crash.
func guard(path string, f func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = corrupt(path, fmt.Errorf("cannot be read, it may be truncated or damaged: %v", p))
		}
	}()
	return f()
}

// syncDir makes the entries of directory dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
