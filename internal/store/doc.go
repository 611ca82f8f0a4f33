// Package store is the only place skyfleet state lives: node definitions, infrastructures
// (desired state), instances (actual state), scaling requests, events and autoscaling
// decisions. Store is the interface; Open returns the bbolt implementation kept in one file in
// the data directory.
//
// Every access goes through a transaction (View or Update). Callers write intents before they
// act (an instance record in state "creating" with its token before the provider is called),
// so a crash at any point leaves enough on disk to finish or undo the work.
package store
