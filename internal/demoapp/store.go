package demoapp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DemoKey is the API key the seed tutorial's load command sends; the examples pass it as
// --demo-key so that the tutorial's curl command works unchanged.
const DemoKey = "1a7e159a-ffd8-49c8-8b40-549870c70e73"

// Transfer is one row of the transfers table: a request the app streamed, or tried to.
type Transfer struct {
	Key      string
	URI      string // without user info and query string, which may carry credentials
	Bytes    int64
	Started  time.Time
	Duration time.Duration
	Status   string // one of the Status* constants
	NodeID   string
}

// Transfer outcomes, the status column of transfers and the label of
// skyfleet_app_transfers_total.
const (
	StatusOK            = "ok"             // the whole object reached the client
	StatusClientGone    = "client_gone"    // the client went away before the end
	StatusUpstreamError = "upstream_error" // the object could not be fetched or broke off
	StatusUnauthorized  = "unauthorized"   // unknown API key (counted, never recorded)
	StatusBadRequest    = "bad_request"    // missing or malformed header (counted only)
	StatusUnavailable   = "unavailable"    // the database is not reachable (counted only)
)

// Store is what App needs from its database. Implementations are safe for concurrent use.
type Store interface {
	// Init makes the store usable: it connects, creates the schema when missing and inserts
	// the demo key when one is configured. App calls it again, with backoff, until it
	// succeeds; it must be idempotent.
	Init(ctx context.Context) error
	// Ping reports whether the database answers now.
	Ping(ctx context.Context) error
	// LookupKey returns the owner of an API key; ok is false for an unknown key.
	LookupKey(ctx context.Context, key string) (owner string, ok bool, err error)
	// RecordTransfer stores one transfer's statistics.
	RecordTransfer(ctx context.Context, t Transfer) error
}

// Schema is the SQL App runs at start (through Store.Init), safe to run again.
const Schema = `
CREATE TABLE IF NOT EXISTS api_keys (
	key     text PRIMARY KEY,
	owner   text NOT NULL DEFAULT '',
	created timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS transfers (
	id          bigserial PRIMARY KEY,
	key         text NOT NULL,
	uri         text NOT NULL,
	bytes       bigint NOT NULL,
	started     timestamptz NOT NULL,
	duration_ms bigint NOT NULL,
	status      text NOT NULL,
	node_id     text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS transfers_started ON transfers (started);
`

// schemaLock is the advisory lock key that serialises schema creation, as several app
// instances start at the same moment and CREATE TABLE IF NOT EXISTS is not safe to race.
const schemaLock = 0x736b79666c656574 // "skyfleet"

// PGStore is the PostgreSQL Store, over a small pgx connection pool.
type PGStore struct {
	pool    *pgxpool.Pool
	demoKey string
}

var _ Store = (*PGStore)(nil)

// PGOptions configures NewPGStore.
type PGOptions struct {
	// URL is the connection string, e.g. postgres://skyfleet@10.0.0.5:5432/skyfleet?sslmode=disable.
	URL string
	// DemoKey, when set, is inserted into api_keys (owner "demo") by Init.
	DemoKey string
	// MaxConns caps the pool; default 4, so that ten app instances stay far below
	// PostgreSQL's default max_connections.
	MaxConns int32
}

// NewPGStore parses the connection string and builds the pool. It does not connect: Init
// does, so that the app can start before its database.
func NewPGStore(opts PGOptions) (*PGStore, error) {
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		// pgx's message may quote the connection string, password included.
		return nil, errors.New("parse database connection string: not a valid postgres:// URL or key=value string")
	}
	cfg.MaxConns = 4
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("create database pool: %w", err)
	}
	return &PGStore{pool: pool, demoKey: opts.DemoKey}, nil
}

// Close closes every connection.
func (s *PGStore) Close() { s.pool.Close() }

// Init creates the schema (under an advisory lock) and the demo key.
func (s *PGStore) Init(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(schemaLock)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, Schema)
		return err
	})
	if err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	if s.demoKey != "" {
		if _, err := s.pool.Exec(ctx,
			"INSERT INTO api_keys (key, owner) VALUES ($1, 'demo') ON CONFLICT (key) DO NOTHING", s.demoKey); err != nil {
			return fmt.Errorf("insert demo key: %w", err)
		}
	}
	return nil
}

// Ping checks that the database answers.
func (s *PGStore) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// LookupKey reads the key's owner.
func (s *PGStore) LookupKey(ctx context.Context, key string) (string, bool, error) {
	var owner string
	err := s.pool.QueryRow(ctx, "SELECT owner FROM api_keys WHERE key = $1", key).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("look up api key: %w", err)
	}
	return owner, true, nil
}

// RecordTransfer inserts one transfers row.
func (s *PGStore) RecordTransfer(ctx context.Context, t Transfer) error {
	_, err := s.pool.Exec(ctx,
		`INSERT INTO transfers (key, uri, bytes, started, duration_ms, status, node_id)
		 VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		t.Key, t.URI, t.Bytes, t.Started, t.Duration.Milliseconds(), t.Status, t.NodeID)
	if err != nil {
		return fmt.Errorf("record transfer: %w", err)
	}
	return nil
}

// Transfers returns the latest limit transfers, newest first (for tests and tools).
func (s *PGStore) Transfers(ctx context.Context, limit int) ([]Transfer, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT key, uri, bytes, started, duration_ms, status, node_id FROM transfers ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list transfers: %w", err)
	}
	var out []Transfer
	for rows.Next() {
		var t Transfer
		var ms int64
		if err := rows.Scan(&t.Key, &t.URI, &t.Bytes, &t.Started, &ms, &t.Status, &t.NodeID); err != nil {
			return nil, fmt.Errorf("list transfers: %w", err)
		}
		t.Duration = time.Duration(ms) * time.Millisecond
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list transfers: %w", err)
	}
	return out, nil
}

// MemStore is an in-memory Store for runs without a database (--db memory) and for tests.
// It keeps the latest MemStoreKeep transfers.
type MemStore struct {
	mu        sync.Mutex
	keys      map[string]string
	transfers []Transfer
	// initErr, when set, gives the error of Init and Ping (a database still booting).
	initErr func() error
}

// MemStoreKeep is how many transfers a MemStore remembers.
const MemStoreKeep = 1000

var _ Store = (*MemStore)(nil)

// NewMemStore returns a store that knows the given keys (owner "demo").
func NewMemStore(keys ...string) *MemStore {
	m := &MemStore{keys: map[string]string{}}
	for _, k := range keys {
		if k != "" {
			m.keys[k] = "demo"
		}
	}
	return m
}

// SetUnavailable makes Init and Ping return the result of fn (nil fn: available again).
func (m *MemStore) SetUnavailable(fn func() error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.initErr = fn
}

func (m *MemStore) check() error {
	m.mu.Lock()
	fn := m.initErr
	m.mu.Unlock()
	if fn != nil {
		return fn()
	}
	return nil
}

// Init succeeds unless SetUnavailable says otherwise.
func (m *MemStore) Init(context.Context) error { return m.check() }

// Ping succeeds unless SetUnavailable says otherwise.
func (m *MemStore) Ping(context.Context) error { return m.check() }

// LookupKey reports whether the key is known.
func (m *MemStore) LookupKey(_ context.Context, key string) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	owner, ok := m.keys[key]
	return owner, ok, nil
}

// RecordTransfer remembers t, dropping the oldest beyond MemStoreKeep.
func (m *MemStore) RecordTransfer(_ context.Context, t Transfer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.transfers = append(m.transfers, t)
	if over := len(m.transfers) - MemStoreKeep; over > 0 {
		m.transfers = append(m.transfers[:0:0], m.transfers[over:]...)
	}
	return nil
}

// Transfers returns a copy of the remembered transfers, oldest first.
func (m *MemStore) Transfers() []Transfer {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Transfer(nil), m.transfers...)
}
