// Package api serves skyfleet's HTTP interface: the Occopus-compatible routes under
// /infrastructures/ and /info/ (same paths, methods, JSON shapes and quirks as
// occopus-rest-service, so the seed tutorial's curl commands and existing clients work), the
// native /v1 API with proper status codes and one JSON error envelope, server-sent event
// streams, /metrics, /healthz and the OpenAPI document.
//
// Reports (every GET) are read straight from the store; no cloud call happens inside a
// request. Changes go through the engine (a small consumer-side interface). The package does
// not listen on sockets or manage TLS: the caller wraps Handler in an http.Server. The wire
// types in types.go are shared with internal/client.
package api
