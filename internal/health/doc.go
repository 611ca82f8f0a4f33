// Package health runs Occopus' basic health checks from the orchestrator's host against an
// instance's address: ping (on by default), TCP ports, HTTP URLs (2xx after redirects) and
// MySQL servers, ANDed lazily in that order. Judge and Tracker implement the failure timer
// that turns an instance failing for longer than its timeout into "failed".
//
// It does not decide what happens to a failed instance (the engine archives and replaces
// it), render URL templates (the template package does, per instance), schedule checks, or
// store results. See docs/health.md for what each check does and how pings are sent.
package health
