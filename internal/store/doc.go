// Package store is the only place skyfleet state lives: node definitions, infrastructures
// (desired state), instances (actual state), scaling requests, events and autoscaling
// decisions. Store is the interface; Open returns the bbolt implementation kept in one file in
// the data directory.
//
// Every access goes through a transaction (View or Update). Callers write intents before they
// act (an instance record in state "creating" with its token before the provider is called),
// so a crash at any point leaves enough on disk to finish or undo the work.
//
// The bbolt implementation keeps skyfleet.db and, while open, skyfleet.lock in the data
// directory. Only one process may hold a directory: bbolt's flock on skyfleet.db decides, and
// skyfleet.lock (pid, host, command line, since when) only lets a second process name the
// holder in its ErrLocked error, so a lock file left by a killed process never blocks. The
// file carries a schema version in its meta bucket; a newer version is refused with
// ErrSchema and an older one is migrated in one transaction at Open. Records are stored as
// JSON, so every record a Tx returns is a fresh copy. Each infrastructure's instances,
// archive, scaling requests, events and decisions live in buckets nested under it, so
// DeleteInfra drops all of them at once; sequence numbers restart at 1 for an infrastructure
// re-created with the id of a deleted one.
//
// The package does not interpret records (no scaling arithmetic, no state machine) and does
// not notify anyone of changes: the engine and the events hub do that.
package store
