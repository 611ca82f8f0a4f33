// Package engine keeps every stored infrastructure at its desired state: one level-triggered
// reconcile loop per infrastructure observes the instances through the cloud providers and the
// health checks, plans (targets clamped to min..max, failed instances replaced, surplus
// drained and dropped, missing instances created once the nodes they depend on are ready) and
// acts through bounded, asynchronous provider calls whose intent is always stored first, so
// that a crash at any point is recovered by the next engine on the same store.
//
// It also owns the operations that change desired state (import of node definitions,
// submission of descriptors, scaling requests, destruction, attach and detach), so that each
// change and the loop's reaction to it go through one place.
//
// It is not an API server and not an autoscaler: callers (the REST API, the CLI's serve and
// up, the autoscaler) call its methods; reports are read straight from the store.
package engine
