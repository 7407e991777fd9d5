package dnsserver

import (
	"fmt"
	"sync"
	"time"
)

// The discovery zone's SOA serial increases (RFC 1982 arithmetic) with every
// change visible in DNS answers and never goes backwards, across restarts
// too, so that secondaries that transfer the zone know when to ask again.
//
// Serials allocates them. On a server with its own data directory, health
// is not durable while every served serial must stay below any serial
// served after a restart: Serials keeps a ceiling in a SerialStore (a small
// file), reserved serialBlock ahead, and hands out serials only below the
// durable ceiling. A restart starts at the stored ceiling (or at the clock,
// if that is later: a fresh data directory starts at the Unix time), so it
// is above anything served before. Reserving a block costs one durable
// write per serialBlock changes.
//
// Servers sharing an etcd registry have no store of their own: the serial
// follows the etcd revision this server has applied (Floor), which every
// member sees grow in the same way and which grows with every shared change,
// health results included. A change applied here before etcd has it (this
// server's own health results) takes the next serial after the previous
// one, which the revision of its write then catches up with.

// SerialStore keeps the durable ceiling of the serials.
type SerialStore interface {
	// LoadSerial returns the stored ceiling; ok is false when none was
	// ever stored.
	LoadSerial() (serial uint32, ok bool, err error)
	// SaveSerial stores a new ceiling durably.
	SaveSerial(serial uint32) error
}

// SerialConfig says where the discovery zone's serials come from.
type SerialConfig struct {
	// Store keeps the ceiling; nil keeps nothing (the serial starts from
	// Floor or the clock at every start).
	Store SerialStore
	// Floor, when not nil, is a lower bound that every new serial reaches:
	// the etcd revision the server has applied. It starts the serial
	// instead of the clock.
	Floor func() uint32
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// serialBlock is how far ahead of the serial the durable ceiling is
// reserved.
const serialBlock = 10000

// Serials allocates serials. Its methods are safe for concurrent use.
type Serials struct {
	store SerialStore
	floor func() uint32
	first uint32

	mu      sync.Mutex
	ceiling uint32 // with a store: serials up to it may be handed out
}

// NewSerials returns an allocator. With a store it reads the ceiling left
// by the previous run and stores the new one before returning, so nothing
// it hands out can be lower than what was served before.
func NewSerials(cfg SerialConfig) (*Serials, error) {
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	s := &Serials{store: cfg.Store, floor: cfg.Floor}
	if cfg.Floor != nil {
		s.first = cfg.Floor()
	} else {
		s.first = uint32(now().Unix())
	}
	if cfg.Store == nil {
		return s, nil
	}
	c, ok, err := cfg.Store.LoadSerial()
	if err != nil {
		return nil, fmt.Errorf("read the zone serial: %w", err)
	}
	if ok {
		s.first = serialMax(s.first, c)
	}
	if err := s.reserve(s.first); err != nil {
		return nil, err
	}
	return s, nil
}

// First is the serial the zone starts with.
func (s *Serials) First() uint32 { return s.first }

// Next returns the serial that follows prev: prev+1, or the floor when it
// is later. With a store, a serial past the durable ceiling is handed out
// only once a new ceiling is stored; when that fails the serial is still
// returned (DNS keeps moving) with the error, to be logged.
func (s *Serials) Next(prev uint32) (uint32, error) {
	next := prev + 1
	if s.floor != nil {
		next = serialMax(next, s.floor())
	}
	if s.store == nil {
		return next, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if serialLess(s.ceiling, next) {
		if err := s.reserveLocked(next); err != nil {
			return next, err
		}
	}
	return next, nil
}

func (s *Serials) reserve(from uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reserveLocked(from)
}

func (s *Serials) reserveLocked(from uint32) error {
	c := from + serialBlock
	if err := s.store.SaveSerial(c); err != nil {
		return fmt.Errorf("store the zone serial ceiling %d: %w", c, err)
	}
	s.ceiling = c
	return nil
}

// serialLess reports whether a comes before b in RFC 1982 serial number
// arithmetic (32 bits).
func serialLess(a, b uint32) bool {
	return a != b && b-a < 1<<31
}

// serialMax returns the later of a and b in RFC 1982 terms (a when they
// cannot be compared).
func serialMax(a, b uint32) uint32 {
	if serialLess(a, b) {
		return b
	}
	return a
}
