package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/store"
)

// maxBackoff caps the wait between retries of one provider call.
const maxBackoff = 30 * time.Second

// isRetryable reports whether a provider call may succeed if repeated: errors the provider
// marks as transient, and a call that ran out of its own time.
func isRetryable(err error) bool {
	return cloud.IsRetryable(err) || errors.Is(err, context.DeadlineExceeded)
}

// retry calls fn until it succeeds, fails permanently or ctx ends, waiting with jittered
// exponential backoff between attempts.
func (e *Engine) retry(ctx context.Context, fn func(ctx context.Context) error) error {
	backoff := e.opts.RetryBackoff
	for {
		err := fn(ctx)
		if err == nil || ctx.Err() != nil || !isRetryable(err) {
			return err
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// call runs one provider call under the call timeout and counts it. Calls that change
// something (create, destroy) also take a slot of the resource type's concurrency bound,
// shared by every infrastructure; reads (describe, list) are bounded by their caller's worker
// pool instead, so that slow creations never hold up observation.
func (e *Engine) call(ctx context.Context, resourceType, op string, fn func(ctx context.Context) error) error {
	if op == "create" || op == "destroy" {
		sem := e.semaphore(resourceType)
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { <-sem }()
	}
	cctx, cancel := context.WithTimeout(ctx, e.opts.CallTimeout)
	defer cancel()
	err := fn(cctx)
	e.metrics.call(resourceType, op, err)
	return err
}

// bind returns the provider for a recorded resource section.
func (e *Engine) bind(resource map[string]any) (cloud.Provider, error) {
	var creds *cloud.Credentials
	if e.opts.Credentials != nil {
		c, err := e.opts.Credentials(resource)
		if err != nil {
			return nil, fmt.Errorf("select credentials: %w", err)
		}
		creds = c
	}
	p, err := e.opts.Providers.Bind(resource, creds)
	if err != nil {
		return nil, fmt.Errorf("bind provider: %w", err)
	}
	return p, nil
}

// provider returns the provider of an instance, bound once per instance.
func (l *infraLoop) provider(r *store.InstanceRecord) (cloud.Provider, error) {
	l.mu.Lock()
	p, ok := l.provs[r.NodeID]
	l.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := l.e.bind(r.Resource)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.provs[r.NodeID] = p
	l.mu.Unlock()
	l.noteCleaner(p, r.Resource)
	return p, nil
}

// noteCleaner remembers the resource section of a bound provider that can clean up after the
// infrastructure, so that destroying the infrastructure calls it after the last instance.
func (l *infraLoop) noteCleaner(p cloud.Provider, resource map[string]any) {
	if _, ok := p.(cloud.Cleaner); !ok {
		return
	}
	key, err := json.Marshal(resource)
	if err != nil {
		return
	}
	l.mu.Lock()
	l.cleanups[string(key)] = resource
	l.mu.Unlock()
}

// maxCleanupFailures is how many passes may fail to clean up after a destroyed
// infrastructure before its record is deleted anyway (with the failure in the log and the
// events), so that a cloud that keeps refusing does not keep the infrastructure forever.
const maxCleanupFailures = 3

// cleanup calls Cleanup of every provider noted for the infrastructure (the docker
// provider removes the networks it created for it). It returns an error while the clean-up
// failed and may still be retried.
func (l *infraLoop) cleanup(ctx context.Context) error {
	l.mu.Lock()
	keys := slices.Sorted(maps.Keys(l.cleanups))
	resources := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		resources = append(resources, l.cleanups[k])
	}
	l.mu.Unlock()
	var errs []error
	for _, res := range resources {
		p, err := l.e.bind(res)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c, ok := p.(cloud.Cleaner)
		if !ok {
			continue
		}
		rtype, _ := res["type"].(string)
		if err := l.e.call(ctx, rtype, "cleanup", func(ctx context.Context) error { return c.Cleanup(ctx, l.id) }); err != nil {
			errs = append(errs, fmt.Errorf("clean up %s resources: %w", rtype, err))
		}
	}
	err := errors.Join(errs...)
	if err == nil {
		return nil
	}
	l.cleanupFailures++
	l.reportError(ctx, "cleanup", "", err)
	if l.cleanupFailures >= maxCleanupFailures {
		l.log.Warn("giving up cleaning up after the infrastructure; its provider resources may be left behind", "attempts", l.cleanupFailures, "err", err)
		return nil
	}
	return err
}

// forgetInstance drops the loop's caches of an instance that is gone.
func (l *infraLoop) forgetInstance(nodeID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.specs, nodeID)
	delete(l.impls, nodeID)
	delete(l.provs, nodeID)
	delete(l.hspecs, nodeID)
	delete(l.observed, nodeID)
	delete(l.errorReported, "create:"+nodeID)
	delete(l.notBefore, nodeID)
}

// startCreate calls Create for a record in state creating, in an owned goroutine, and
// records the outcome: the provider id and state pending, or state failed. If the engine
// stops before the answer, the record stays creating and the next pass (of this engine or
// of the next one) repeats Create with the same token, which returns the same instance.
func (l *infraLoop) startCreate(ctx context.Context, r *store.InstanceRecord, spec *cloud.InstanceSpec) {
	l.startOp(ctx, r.NodeID, "create", func(ctx context.Context) {
		log := l.log.With("node", r.Node, "node_id", r.NodeID)
		var id string
		p, err := l.provider(r)
		if err == nil {
			err = l.e.retry(ctx, func(ctx context.Context) error {
				return l.e.call(ctx, r.ResourceType, "create", func(ctx context.Context) error {
					var cerr error
					id, cerr = p.Create(ctx, *spec)
					return cerr
				})
			})
		}
		if err != nil && ctx.Err() != nil {
			log.Debug("create abandoned: the engine is stopping; the next pass repeats it", "err", err)
			return
		}
		var addrs cloud.Instance
		if err == nil && ctx.Err() == nil {
			// Best effort: learn the addresses at once, so that templates of instances created
			// next (getip, getipall) and the registry see this one without waiting for a pass.
			_ = l.e.call(ctx, r.ResourceType, "describe", func(ctx context.Context) error {
				in, derr := p.Describe(ctx, id)
				if derr == nil {
					addrs = in
				}
				return derr
			})
		}
		l.finishCreate(ctx, r, id, addrs, err, log)
	})
}

func (l *infraLoop) finishCreate(ctx context.Context, r *store.InstanceRecord, id string, in cloud.Instance, createErr error, log *slog.Logger) {
	// Record even while stopping: the instance exists, and knowing its id saves a Create.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := l.commits.do(wctx, func(tx store.Tx, ev *eventBuf) error {
		fresh, err := tx.Instance(l.id, r.NodeID)
		if errors.Is(err, store.ErrNotFound) {
			log.Warn("instance record vanished while it was being created; its instance is left to orphan clean-up", "provider_id", id)
			return nil
		}
		if err != nil {
			return err
		}
		if createErr != nil {
			if fresh.State != store.StateCreating {
				return nil
			}
			fresh.State = store.StateFailed
			fresh.Detail = "create: " + createErr.Error()
			if err := ev.add(tx, instanceEvent("nodefailed", fresh, "creation failed: "+createErr.Error(), map[string]any{"reason": createErr.Error()})); err != nil {
				return err
			}
			return tx.PutInstance(fresh)
		}
		fresh.ProviderID = id
		if fresh.State == store.StateCreating {
			fresh.State = store.StatePending
		}
		if len(in.Addresses) > 0 && len(fresh.Addresses) == 0 {
			fresh.Addresses = slices.Clone(in.Addresses)
			fresh.PrivateAddress = in.PrivateAddress
			fresh.ResourceAddress = resourceAddress(fresh.ResourceType, in.Addresses)
		}
		fresh.Detail = ""
		return tx.PutInstance(fresh)
	})
	l.mu.Lock()
	delete(l.specs, r.NodeID)
	if createErr != nil {
		h := l.createHold[r.Node]
		h.failures++
		h.until = time.Now().Add(min(l.e.opts.RetryBackoff<<min(h.failures, 10), maxBackoff))
		l.createHold[r.Node] = h
	} else {
		delete(l.createHold, r.Node)
	}
	l.mu.Unlock()
	if err != nil {
		log.Warn("record created instance", "provider_id", id, "err", err)
		return
	}
	if createErr != nil {
		log.Warn("instance creation failed; it will be replaced", "err", createErr)
	} else {
		log.Info("instance created; waiting for it to become ready", "provider_id", id)
	}
}

// startDestroy destroys the instance of a record in state destroying, then deletes the
// record. An instance whose provider id was never recorded (the engine stopped between the
// cloud creating it and the record) is found by its node-id tag where the provider can list.
func (l *infraLoop) startDestroy(ctx context.Context, r *store.InstanceRecord) {
	l.startOp(ctx, r.NodeID, "destroy", func(ctx context.Context) {
		log := l.log.With("node", r.Node, "node_id", r.NodeID)
		err := l.destroyInstance(ctx, r)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.mu.Lock()
			n := l.destroyFailures[r.NodeID] + 1
			l.destroyFailures[r.NodeID] = n
			l.notBefore[r.NodeID] = time.Now().Add(min(l.e.opts.RetryBackoff<<min(n, 10), maxBackoff))
			l.mu.Unlock()
			log.Warn("destroy failed; retrying later", "err", err)
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = l.e.update(wctx, func(tx store.Tx, _ *eventBuf) error {
				fresh, err := tx.Instance(l.id, r.NodeID)
				if err != nil {
					return nil
				}
				fresh.Detail = "destroy: " + err.Error()
				return tx.PutInstance(fresh)
			})
			return
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		uerr := l.commits.do(wctx, func(tx store.Tx, ev *eventBuf) error {
			fresh, err := tx.Instance(l.id, r.NodeID)
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := tx.DeleteInstance(l.id, r.NodeID); err != nil {
				return err
			}
			return ev.add(tx, instanceEvent("nodedropped", fresh, "", map[string]any{"addresses": fresh.Addresses, "provider_id": fresh.ProviderID}))
		})
		if uerr != nil {
			log.Warn("record destroyed instance", "err", uerr)
			return
		}
		l.forgetInstance(r.NodeID)
		l.mu.Lock()
		delete(l.destroyFailures, r.NodeID)
		l.mu.Unlock()
		log.Info("instance destroyed")
	})
}

// destroyInstance makes sure the record's instance no longer exists at the provider.
func (l *infraLoop) destroyInstance(ctx context.Context, r *store.InstanceRecord) error {
	p, err := l.provider(r)
	if err != nil {
		return err
	}
	ids := []string{}
	if r.ProviderID != "" {
		ids = append(ids, r.ProviderID)
	} else {
		lister, ok := p.(cloud.Lister)
		if !ok {
			l.log.Warn("instance has no provider id and its provider cannot list; assuming it was never created", "node", r.Node, "node_id", r.NodeID)
			return nil
		}
		var found []cloud.Instance
		err := l.e.retry(ctx, func(ctx context.Context) error {
			return l.e.call(ctx, r.ResourceType, "list", func(ctx context.Context) error {
				var lerr error
				found, lerr = lister.List(ctx, map[string]string{cloud.TagManaged: "1", cloud.TagNodeID: r.NodeID})
				return lerr
			})
		})
		if err != nil {
			return fmt.Errorf("find instance by node id: %w", err)
		}
		for _, in := range found {
			if in.State != cloud.StateGone {
				ids = append(ids, in.ID)
			}
		}
	}
	for _, id := range ids {
		err := l.e.retry(ctx, func(ctx context.Context) error {
			return l.e.call(ctx, r.ResourceType, "destroy", func(ctx context.Context) error {
				return p.Destroy(ctx, id)
			})
		})
		if err != nil {
			return fmt.Errorf("destroy %s: %w", id, err)
		}
	}
	return nil
}
