// Package readyset keeps an in-memory, immutable picture of every infrastructure's ready
// instances (with the infrastructure's name, creation time and each node's variables), for
// publishers that must answer or act without reading the store each time: the DNS server
// and the Consul sync.
//
// A Tracker reads the store once at start, then re-reads only the infrastructures named by
// events from the events hub (a burst of events yields one read), plus a full re-read at a
// periodic resync that catches anything the hub did not deliver. Each change publishes a new
// *Set; readers take the current one without locks and learn of the next one through a
// channel that is closed when it replaces theirs.
//
// Only instances in state ready with at least one address are in a Set: pending, draining,
// failed and every other state are left out, as in every registry view.
//
// The package is not for per-node watch streams with revisions (the registry package serves
// those) and it never writes to the store.
package readyset
