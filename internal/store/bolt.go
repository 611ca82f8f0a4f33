package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// DBFileName is the name of the data file inside the data directory.
const DBFileName = "skyfleet.db"

// DefaultLockTimeout is how long Open waits for another process to release the data
// directory before it gives up with ErrLocked.
const DefaultLockTimeout = time.Second

// Options configures Open.
type Options struct {
	// Logger receives the store's few messages (opened, migrated); nil discards them.
	Logger *slog.Logger
	// Timeout is how long to wait for the data directory's lock; 0 means DefaultLockTimeout.
	Timeout time.Duration
}

// boltStore is the bbolt implementation of Store.
type boltStore struct {
	db     *bolt.DB
	dir    string
	logger *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

var _ Store = (*boltStore)(nil)

// Open opens (creating if needed) the store in dir: the directory, the data file
// skyfleet.db in it, and the lock file skyfleet.lock that names this process while it holds
// the directory. If another process (or another Open in this process) holds dir, Open fails
// after opts.Timeout with an error wrapping ErrLocked that names the holder. A data file
// written by a newer schema gives ErrSchema; an older one is migrated in one transaction.
func Open(dir string, opts Options) (Store, error) {
	return open(dir, opts, currentSchema())
}

func open(dir string, opts Options, sch schema) (*boltStore, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	if dir == "" {
		return nil, errors.New("open store: data directory is empty")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store %s: create data directory: %w", dir, err)
	}
	path := filepath.Join(dir, DBFileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, FreelistType: bolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open store %s: %w", dir, lockedError(dir))
		}
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	// From here on we hold the flock, so the lock file is ours to (over)write.
	if err := writeLockFile(dir, currentHolder(time.Now())); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	s := &boltStore{db: db, dir: dir, logger: logger}
	var (
		from    int
		applied []string
	)
	err = db.Update(func(tx *bolt.Tx) error {
		var perr error
		from, applied, perr = sch.prepare(tx)
		return perr
	})
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	if len(applied) > 0 {
		logger.Info("store schema migrated", "path", path, "from_version", from, "to_version", sch.version(), "migrations", applied)
	}
	logger.Debug("store opened", "path", path, "schema_version", sch.version())
	return s, nil
}

// View runs fn in a read-only transaction. It returns ctx's error without running fn when
// ctx is already done.
func (s *boltStore) View(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store view: %w", err)
	}
	return s.db.View(func(tx *bolt.Tx) error { return fn(&boltTx{tx: tx}) })
}

// Update runs fn in a read-write transaction. It returns ctx's error without running fn when
// ctx is done before the transaction starts (including while it waited for another writer).
func (s *boltStore) Update(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store update: %w", err)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("store update: %w", err)
		}
		return fn(&boltTx{tx: tx})
	})
}

// Close removes the lock file and releases the data directory. Calling it again returns the
// first call's result.
func (s *boltStore) Close() error {
	s.closeOnce.Do(func() {
		// Remove the lock file while the flock is still ours, so we never delete the file of
		// the next holder.
		lerr := os.Remove(filepath.Join(s.dir, lockFileName))
		if errors.Is(lerr, os.ErrNotExist) {
			lerr = nil
		}
		if lerr != nil {
			lerr = fmt.Errorf("close store %s: remove lock file: %w", s.dir, lerr)
		}
		derr := s.db.Close()
		if derr != nil {
			derr = fmt.Errorf("close store %s: %w", s.dir, derr)
		}
		s.closeErr = errors.Join(lerr, derr)
	})
	return s.closeErr
}
