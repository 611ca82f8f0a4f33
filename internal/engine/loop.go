package engine

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/descriptor"
)

// infraLoop maintains one infrastructure. Its pass runs in one goroutine (run); provider
// calls that take long (Create, Destroy) run in goroutines the loop owns and waits for.
type infraLoop struct {
	e      *Engine
	id     string
	log    *slog.Logger
	wake   chan struct{} // buffered(1): "something changed" signals coalesce
	cancel context.CancelFunc
	done   chan struct{}

	mu sync.Mutex
	// ops holds the node ids with a provider call (create or destroy) in flight; at most one
	// per instance.
	ops map[string]string
	// specs are the rendered specs of instances being created, reused by retries so that a
	// repeated Create sends exactly what the first one sent.
	specs map[string]*cloud.InstanceSpec
	// impls caches the implementation each instance was created from (for health checks).
	impls map[string]*descriptor.Impl
	// createHold delays new instances of a node after a permanent creation failure, so that a
	// broken node definition does not spin.
	createHold map[string]hold
	// hspecs caches each instance's rendered health check.
	hspecs map[string]cachedHealth
	// observed is when each instance was last observed successfully (wall time).
	observed map[string]time.Time
	// provs caches the bound provider of each instance.
	provs map[string]cloud.Provider
	// cleanups holds, by their JSON form, the resource sections of the providers bound for
	// this infrastructure that can clean up after it (cloud.Cleaner); the destroy calls them
	// once the last instance is gone. cleanupFailures counts the passes whose clean-up failed.
	cleanups        map[string]map[string]any
	cleanupFailures int
	// notBefore delays the next provider call on an instance after a failed destroy.
	notBefore       map[string]time.Time
	destroyFailures map[string]int
	// errorReported remembers the last error event per key, so that a pass repeating the same
	// failure every resync does not flood the event log.
	errorReported map[string]string
	opsWG         sync.WaitGroup
	// commits batches the records written when provider calls finish.
	commits *groupCommit

	// gauges remembers the skyfleet_instances label sets set by the last pass.
	gauges map[[2]string]bool
}

// hold is a per-node backoff after failures.
type hold struct {
	until    time.Time
	failures int
}

func newInfraLoop(e *Engine, id string, cancel context.CancelFunc) *infraLoop {
	return &infraLoop{
		observed:        map[string]time.Time{},
		commits:         &groupCommit{e: e},
		e:               e,
		id:              id,
		log:             e.log.With("infra_id", id),
		wake:            make(chan struct{}, 1),
		cancel:          cancel,
		done:            make(chan struct{}),
		ops:             map[string]string{},
		specs:           map[string]*cloud.InstanceSpec{},
		impls:           map[string]*descriptor.Impl{},
		createHold:      map[string]hold{},
		provs:           map[string]cloud.Provider{},
		cleanups:        map[string]map[string]any{},
		hspecs:          map[string]cachedHealth{},
		notBefore:       map[string]time.Time{},
		destroyFailures: map[string]int{},
		errorReported:   map[string]string{},
		gauges:          map[[2]string]bool{},
	}
}

// poke asks for a pass soon; signals coalesce and never block.
func (l *infraLoop) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// run passes at once, then on every wake and every resync tick, until ctx ends or the
// infrastructure is gone. It waits for the provider calls it started before returning.
func (l *infraLoop) run(ctx context.Context) {
	defer l.opsWG.Wait()
	defer l.cancel()
	l.log.Info("maintaining infrastructure")
	ticker := time.NewTicker(l.e.opts.Resync)
	defer ticker.Stop()
	for {
		if finished := l.safePass(ctx); finished {
			l.clearGauges()
			return
		}
		select {
		case <-ctx.Done():
			l.log.Info("stopped maintaining infrastructure")
			return
		case <-ticker.C:
		case <-l.wake:
		}
	}
}

// safePass runs one pass, recording its duration, and turns a panic into a counted error so
// that one bad pass does not take the loop (or the server) down.
func (l *infraLoop) safePass(ctx context.Context) (finished bool) {
	start := time.Now()
	defer func() {
		l.e.metrics.duration.Observe(time.Since(start).Seconds())
		if r := recover(); r != nil {
			l.e.metrics.errors.Inc()
			l.log.Error("reconcile pass panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			finished = false
		}
	}()
	finished, err := l.pass(ctx)
	if err != nil && ctx.Err() == nil {
		l.e.metrics.errors.Inc()
		l.log.Warn("reconcile pass failed", "err", err)
	}
	return finished
}

// inFlight reports whether a provider call for the instance is running.
func (l *infraLoop) inFlight(nodeID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.ops[nodeID]
	return ok
}

// anyInFlight reports whether any provider call is running.
func (l *infraLoop) anyInFlight() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ops) > 0
}

// startOp registers an operation on nodeID and runs fn in an owned goroutine; it reports
// false (and runs nothing) when an operation on that instance is already in flight.
func (l *infraLoop) startOp(ctx context.Context, nodeID, kind string, fn func(ctx context.Context)) bool {
	l.mu.Lock()
	if _, busy := l.ops[nodeID]; busy {
		l.mu.Unlock()
		return false
	}
	l.ops[nodeID] = kind
	l.mu.Unlock()
	l.opsWG.Add(1)
	go func() {
		defer l.opsWG.Done()
		defer func() {
			if r := recover(); r != nil {
				l.e.metrics.errors.Inc()
				l.log.Error("provider operation panicked", "node_id", nodeID, "op", kind, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			}
			l.mu.Lock()
			delete(l.ops, nodeID)
			l.mu.Unlock()
			l.poke()
		}()
		fn(ctx)
	}()
	return true
}
