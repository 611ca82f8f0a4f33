// Package client is the Go client of skyfleet's native /v1 HTTP API, with the same request
// and response types as the server (internal/api). The CLI verbs talk to a server only
// through it. It includes a server-sent event reader that resumes after a disconnect with
// Last-Event-ID, so a watcher sees every event once.
//
// It does not speak the Occopus-compatible routes (those are for existing Occopus clients)
// and does not read descriptor files: callers pass bytes.
package client
