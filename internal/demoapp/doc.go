// Package demoapp holds the node roles of skyfleet's demonstration application, a stand-in
// for Data Avenue (the application of the scalable-architecture tutorial skyfleet follows):
//
//   - App, the data-transfer service: GET /rest/file (and /blacktop3/rest/file) with the
//     headers X-Key and X-URI streams the object at X-URI to the client through a fixed
//     buffer, hashing every byte so that load raises CPU, checks the key against the
//     database and records each transfer there;
//   - Storage, an object server whose large objects (1 GiB and more) are generated
//     deterministically from their name and offset, never stored, with Range support;
//   - PostgresNode, the database node: a real PostgreSQL server (the distribution's
//     package) initialised in a working directory and run in the foreground.
//
// The store behind the app is an interface (Store) with a PostgreSQL implementation
// (PGStore) and an in-memory one (MemStore) for runs without a database.
//
// It is not a general file-transfer service: it speaks plain HTTP(S) to the object URL only,
// keeps no files, and the PostgreSQL node trusts every connection (a demonstration set-up,
// never one to expose).
package demoapp
