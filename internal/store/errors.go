package store

import "errors"

// Sentinel errors; test with errors.Is.
var (
	// ErrNotFound: the record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: a record with that key already exists where a new one was required.
	ErrExists = errors.New("already exists")
	// ErrLocked: another process holds the data directory.
	ErrLocked = errors.New("data directory is in use by another process")
	// ErrSchema: the data file was written by an incompatible schema version.
	ErrSchema = errors.New("incompatible store schema version")
)
