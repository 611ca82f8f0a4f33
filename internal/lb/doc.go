// Package lb is skyfleet's load-balancer node role: it follows the ready instances of one node
// (through the orchestrator's endpoints watch stream) and spreads client traffic over them
// with one of two engines, the built-in reverse proxy or a supervised haproxy driven through
// its runtime API. It reports its open connections per backend to the orchestrator every
// second, so that a scale-in victim is destroyed only once it has drained.
//
// The package does not decide membership (the orchestrator's registry does), does not do
// active health checks (a backend that refuses connections is ejected passively; readiness
// is the orchestrator's job), and does not parse command lines (internal/cli does).
package lb
