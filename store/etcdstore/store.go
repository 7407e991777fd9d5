// Package etcdstore keeps disco's registry in etcd, so that several disco
// servers share one registry. It implements registry.Store — a write is
// acknowledged only once etcd committed it, one transaction per group
// commit — and Watch feeds each server's registry with what the others
// wrote. It also records the instances' health and ttl heartbeats in etcd
// (PutHealth, PutHeartbeat) and hands those of the other servers to a
// Cluster, which decides what to do with them (package cluster).
//
// The records are JSON, as the bbolt store writes them (see the store
// package's codec), under a key prefix; see keys.go for the layout.
package etcdstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"disco/registry"
	"disco/store"
)

// ErrUnreachable marks a Load that failed because etcd did not answer; a
// later attempt may succeed.
var ErrUnreachable = errors.New("etcd unreachable")

// Defaults of Options.
const (
	DefaultPrefix  = "/disco/"
	DefaultTimeout = 2 * time.Second
	// DefaultProgressInterval is how often Watch asks etcd to confirm that
	// it is caught up.
	DefaultProgressInterval = time.Second
)

// MaxBatch is the most registry writes one Commit should carry (the
// registry's Config.MaxBatch): etcd refuses transactions of more than 128
// operations by default, and a deregistration takes three.
const MaxBatch = 32

// maxTxnOps is etcd's default --max-txn-ops.
const maxTxnOps = 128

// Options configure a Store.
type Options struct {
	// Prefix is the key prefix of the registry; DefaultPrefix when empty.
	// It ends with a '/' (one is added if missing).
	Prefix string
	// Timeout bounds each request to etcd (a commit, a health write); a
	// request that takes longer fails. DefaultTimeout when zero.
	Timeout time.Duration
	// Member names this server in the records it writes (health results
	// and heartbeats), so that it can recognise its own.
	Member string
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// ProgressInterval is how often Watch asks etcd whether it is caught up
	// (which is what LastSync measures); DefaultProgressInterval when zero.
	ProgressInterval time.Duration
}

// Store is a registry.Store in etcd. Its methods are safe for concurrent
// use.
type Store struct {
	cli       *clientv3.Client
	prefix    string
	timeout   time.Duration
	progress  time.Duration
	member    string
	log       *slog.Logger
	endpoints string

	mu sync.Mutex
	// own maps the registry keys this server committed to the etcd
	// revision of the commit, until Watch has passed that revision: Watch
	// leaves out changes to them at that revision or older, which the
	// registry already reflects.
	own map[string]int64
	// loaded is the revision Load read.
	loaded int64

	lastSync atomic.Int64 // unix nanoseconds
	// revision is the newest etcd revision this server's registry
	// reflects: read by Load, delivered by Watch, or written by Commit.
	revision atomic.Int64
}

var _ registry.Store = (*Store)(nil)

// New returns a Store using cli. It starts nothing; the caller keeps and
// closes cli.
func New(cli *clientv3.Client, opts Options) *Store {
	s := &Store{cli: cli, prefix: opts.Prefix, timeout: opts.Timeout, progress: opts.ProgressInterval,
		member: opts.Member, log: opts.Logger, own: make(map[string]int64)}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if !strings.HasSuffix(s.prefix, "/") {
		s.prefix += "/"
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if s.progress <= 0 {
		s.progress = DefaultProgressInterval
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "etcd")
	s.endpoints = strings.Join(cli.Endpoints(), ",")
	return s
}

// Prefix returns the key prefix, ending with '/'.
func (s *Store) Prefix() string { return s.prefix }

// LastSync is when the store last knew it had seen everything etcd held:
// the last Load, watch event or confirmed watch progress. The zero time
// means never.
func (s *Store) LastSync() time.Time {
	n := s.lastSync.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func (s *Store) markSync() { s.lastSync.Store(time.Now().UnixNano()) }

// Revision returns the newest etcd revision the registry reflects (what
// Load read, what Watch delivered since, what Commit wrote). It only grows;
// servers sharing the prefix see the same revisions.
func (s *Store) Revision() int64 { return s.revision.Load() }

// reached records that the registry reflects revision rev.
func (s *Store) reached(rev int64) {
	for {
		cur := s.revision.Load()
		if rev <= cur || s.revision.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// Load reads the registry under the prefix, with the health recorded for
// each instance's current revision. A record that does not decode is an
// error naming its key. It writes the schema version if the prefix has
// none, and refuses a newer one.
func (s *Store) Load(ctx context.Context) (*registry.State, error) {
	// A small read first: an unreachable etcd is reported within the
	// timeout, and only the whole read gets longer.
	pctx, cancel := context.WithTimeout(ctx, s.timeout)
	_, err := s.cli.Get(pctx, s.prefix+keySchema)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, s.unavailable("answer", err))
	}
	ctx, cancel = context.WithTimeout(ctx, 10*s.timeout)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, s.unavailable("read the registry", err))
	}
	st, _, err := s.parse(resp.Kvs, true)
	if err != nil {
		return nil, err
	}
	if err := s.initSchema(ctx, resp.Kvs); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.loaded = resp.Header.Revision
	s.mu.Unlock()
	s.reached(resp.Header.Revision)
	s.markSync()
	s.log.Info("registry read from etcd", "prefix", s.prefix, "revision", resp.Header.Revision,
		"services", len(st.Services), "instances", len(st.Instances))
	return st, nil
}

// initSchema checks the schema version among kvs, or writes it.
func (s *Store) initSchema(ctx context.Context, kvs []*mvccpb.KeyValue) error {
	key := s.prefix + keySchema
	for _, kv := range kvs {
		if string(kv.Key) != key {
			continue
		}
		v, err := strconv.Atoi(string(kv.Value))
		switch {
		case err != nil || v < 1:
			return fmt.Errorf("etcd key %s: bad schema version %q", key, kv.Value)
		case v > SchemaVersion:
			return fmt.Errorf("etcd prefix %s has schema version %d, newer than the %d this disco reads (run a newer disco)", s.prefix, v, SchemaVersion)
		}
		return nil
	}
	_, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, strconv.Itoa(SchemaVersion))).Commit()
	if err != nil {
		return s.unavailable("write the schema version", err)
	}
	return nil
}

// record is one registry record read from etcd, with its revision.
type record struct {
	key    string // relative to the prefix
	rev    int64
	change registry.Change
}

// parse reads the registry and health records among kvs. Strict, a bad
// record is an error; otherwise it is logged and left out. Health records
// of the instances' current revisions become their Health; other servers'
// health records come back too.
func (s *Store) parse(kvs []*mvccpb.KeyValue, strict bool) (*registry.State, []record, error) {
	st := &registry.State{Services: make(map[string]registry.Settings)}
	var recs []record
	health := make(map[registry.Key]healthRecord)
	byKey := make(map[registry.Key]*registry.Instance)
	for _, kv := range kvs {
		rel := strings.TrimPrefix(string(kv.Key), s.prefix)
		err := func() error {
			switch {
			case strings.HasPrefix(rel, dirInstances):
				k, ok := splitKey(strings.TrimPrefix(rel, dirInstances))
				if !ok {
					return errors.New("not an instance key (service/id)")
				}
				in, err := store.DecodeInstance(k.Service, k.ID, kv.Value)
				if err != nil {
					return err
				}
				st.Instances = append(st.Instances, in)
				byKey[k] = in
				recs = append(recs, record{rel, kv.ModRevision, registry.Change{Op: registry.OpPutInstance, Service: k.Service, Instance: in}})
			case strings.HasPrefix(rel, dirServices):
				name := strings.TrimPrefix(rel, dirServices)
				set, err := store.DecodeSettings(name, kv.Value)
				if err != nil {
					return err
				}
				st.Services[name] = set
				recs = append(recs, record{rel, kv.ModRevision, registry.Change{Op: registry.OpPutService, Service: name, Settings: set}})
			case strings.HasPrefix(rel, dirHealth):
				k, ok := splitKey(strings.TrimPrefix(rel, dirHealth))
				if !ok {
					return errors.New("not a health key (service/id)")
				}
				h, err := decodeHealth(kv.Value)
				if err != nil {
					return err
				}
				health[k] = h
			}
			return nil
		}()
		if err == nil {
			continue
		}
		err = fmt.Errorf("etcd key %s: %w", kv.Key, err)
		if strict {
			return nil, nil, fmt.Errorf("%w (fix or delete the key)", err)
		}
		s.log.Error("bad record left out", "err", err)
	}
	for k, h := range health {
		if in, ok := byKey[k]; ok && in.Revision == h.Revision {
			in.Health = h.health()
		}
	}
	return st, recs, nil
}

// Commit stores changes in one etcd transaction and returns once etcd has
// committed it, or fails after the store's timeout. Deregistering an
// instance also removes its health and heartbeat records.
func (s *Store) Commit(ctx context.Context, changes []registry.Change) error {
	if len(changes) == 0 {
		return nil
	}
	// The last change to each key wins: etcd refuses a transaction that
	// names a key twice.
	ops := make(map[string]clientv3.Op)
	var order []string
	var written []string // registry keys, for own
	add := func(key string, op clientv3.Op) {
		if _, ok := ops[key]; !ok {
			order = append(order, key)
		}
		ops[key] = op
	}
	for i, c := range changes {
		err := func() error {
			switch c.Op {
			case registry.OpPutInstance:
				if c.Instance == nil || c.Instance.Service != c.Service {
					return errors.New("instance does not belong to the change's service")
				}
				v, err := store.EncodeInstance(c.Instance)
				if err != nil {
					return err
				}
				key := s.instanceKey(c.Instance.Key())
				add(key, clientv3.OpPut(key, string(v)))
				written = append(written, key)
			case registry.OpDeleteInstance:
				if !registry.ValidName(c.Service) || !registry.ValidName(c.ID) {
					return fmt.Errorf("bad instance name %q", c.Service+"/"+c.ID)
				}
				k := registry.Key{Service: c.Service, ID: c.ID}
				key := s.instanceKey(k)
				add(key, clientv3.OpDelete(key))
				add(s.healthKey(k), clientv3.OpDelete(s.healthKey(k)))
				add(s.heartbeatKey(k), clientv3.OpDelete(s.heartbeatKey(k)))
				written = append(written, key)
			case registry.OpPutService:
				v, err := store.EncodeSettings(c.Service, c.Settings)
				if err != nil {
					return err
				}
				key := s.serviceKey(c.Service)
				add(key, clientv3.OpPut(key, string(v)))
				written = append(written, key)
			default:
				return fmt.Errorf("unknown op %d", c.Op)
			}
			return nil
		}()
		if err != nil {
			return fmt.Errorf("commit: change %d (%s %s): %w", i+1, c.Op, c.Service, err)
		}
	}
	txn := make([]clientv3.Op, 0, len(order))
	for _, k := range order {
		txn = append(txn, ops[k])
	}
	var rev int64
	// A batch larger than etcd takes in one transaction (the registry's
	// MaxBatch keeps them smaller) goes in several, in order.
	for len(txn) > 0 {
		n := min(len(txn), maxTxnOps)
		r, err := s.txn(ctx, txn[:n])
		if err != nil {
			return fmt.Errorf("commit %d changes: %w", len(changes), err)
		}
		rev, txn = r, txn[n:]
	}
	s.mu.Lock()
	for _, k := range written {
		s.own[strings.TrimPrefix(k, s.prefix)] = rev
	}
	s.mu.Unlock()
	s.reached(rev)
	return nil
}

// txn commits ops within the timeout and returns the revision.
func (s *Store) txn(ctx context.Context, ops []clientv3.Op) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return 0, s.unavailable("commit", err)
	}
	return resp.Header.Revision, nil
}

// unavailable describes a failed request to etcd.
func (s *Store) unavailable(what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("etcd (%s) did not %s within %s: %w", s.endpoints, what, s.timeout, err)
	}
	return fmt.Errorf("etcd (%s) could not %s: %w", s.endpoints, what, err)
}

// PutHealth records the health of instance k at revision rev, as this
// server's checks concluded it, if the instance is still registered.
// heartbeat, if not 0, is the etcd revision of the latest heartbeat record
// (PutHeartbeat) the result takes into account: the answer to it, for the
// server that recorded the heartbeat.
func (s *Store) PutHealth(ctx context.Context, k registry.Key, rev uint64, h registry.Health, heartbeat int64) error {
	val, err := json.Marshal(healthRecord{Status: h.Status, Output: h.Output, Since: h.Since.UTC(), Revision: rev,
		By: s.member, Heartbeat: heartbeat})
	if err != nil {
		return fmt.Errorf("encode health of %s: %w", k, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err = s.cli.Txn(ctx).If(clientv3.Compare(clientv3.Version(s.instanceKey(k)), ">", 0)).
		Then(clientv3.OpPut(s.healthKey(k), string(val))).Commit()
	if err != nil {
		return fmt.Errorf("health of %s: %w", k, s.unavailable("record health", err))
	}
	return nil
}

// PutHeartbeat records a heartbeat of instance k's ttl checks for the
// server that checks it (whose Watch hands it to Cluster.RemoteHeartbeat)
// and returns the etcd revision of the record. The error wraps
// registry.ErrNotFound when the instance is not registered, and
// registry.ErrUnavailable when etcd did not take it.
func (s *Store) PutHeartbeat(ctx context.Context, k registry.Key) (int64, error) {
	val, err := json.Marshal(heartbeatRecord{At: time.Now().UTC(), By: s.member})
	if err != nil {
		return 0, fmt.Errorf("encode heartbeat of %s: %w", k, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.Version(s.instanceKey(k)), ">", 0)).
		Then(clientv3.OpPut(s.heartbeatKey(k), string(val))).Commit()
	if err != nil {
		return 0, fmt.Errorf("heartbeat %s: %w: %w", k, registry.ErrUnavailable, s.unavailable("record the heartbeat", err))
	}
	if !resp.Succeeded {
		return 0, registry.NotFound("instance %q of service %q is not registered", k.ID, k.Service).In("heartbeat " + k.String())
	}
	return resp.Header.Revision, nil
}

// isOwn reports whether the registry already reflects the record at key
// (relative) as of revision rev: this server committed it at rev or later.
func (s *Store) isOwn(key string, rev int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	own, ok := s.own[key]
	return ok && own >= rev
}

// passed forgets this server's commits at revision rev or older: Watch has
// delivered everything up to rev.
func (s *Store) passed(rev int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, r := range s.own {
		if r <= rev {
			delete(s.own, k)
		}
	}
}
