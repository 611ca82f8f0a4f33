package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/health"
	"github.com/skyfleet/skyfleet/internal/store"
)

// observation is what one pass learned about one instance.
type observation struct {
	rec  *store.InstanceRecord
	inst cloud.Instance
	err  error
	// checked is true when health checks ran; result and timeout then apply.
	checked bool
	result  health.Result
	timeout time.Duration
}

// observable reports whether the instance is one the provider should know by now.
func observable(r *store.InstanceRecord) bool {
	if r.ProviderID == "" {
		return false
	}
	switch r.State {
	case store.StatePending, store.StateReady, store.StateTempFailed, store.StateDraining:
		return true
	}
	return false
}

// observeDue reports whether the instance should be observed in this pass. Wake-ups can
// make passes follow each other closely (every finished provider call wakes the loop); to
// spare the cloud's API and the instances, a booting instance is observed at most about
// once a second, and any other at most once per resync period. A failed observation is
// retried at the next pass.
func (l *infraLoop) observeDue(r *store.InstanceRecord, now time.Time) bool {
	l.mu.Lock()
	last, ok := l.observed[r.NodeID]
	l.mu.Unlock()
	if !ok {
		return true
	}
	every := l.e.opts.Resync
	if r.State == store.StatePending {
		every = min(every, time.Second)
	}
	return now.Sub(last) >= every*9/10
}

// observe describes every observable instance (and health-checks the running ones) with
// bounded parallelism and per-call timeouts, then records what changed in one transaction.
// An instance whose observation failed is left as it was. It returns the instance records
// as they are after the transaction.
func (l *infraLoop) observe(ctx context.Context, d *desired, instances []*store.InstanceRecord) ([]*store.InstanceRecord, error) {
	var todo []*store.InstanceRecord
	wall := time.Now()
	for _, r := range instances {
		if observable(r) && !l.inFlight(r.NodeID) && l.observeDue(r, wall) {
			todo = append(todo, r)
		}
	}
	if len(todo) == 0 {
		return instances, nil
	}
	obs := make([]observation, len(todo))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(l.e.opts.ObserveConcurrency, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				obs[i] = l.safeObserveOne(ctx, d, todo[i])
			}
		}()
	}
	for i := range todo {
		work <- i
	}
	close(work)
	wg.Wait()
	if ctx.Err() != nil {
		return instances, ctx.Err()
	}

	now := l.e.clock()
	var changed []observation
	failures := 0
	l.mu.Lock()
	for _, o := range obs {
		if o.err == nil {
			l.observed[o.rec.NodeID] = wall
		}
	}
	l.mu.Unlock()
	for _, o := range obs {
		if o.err != nil {
			failures++
			l.log.Warn("observe instance failed; leaving it alone this pass", "node", o.rec.Node, "node_id", o.rec.NodeID, "err", o.err)
			continue
		}
		probe := *o.rec
		if applyObservation(&probe, o, now, nil) {
			changed = append(changed, o)
		}
	}
	if len(changed) == 0 {
		if failures > 0 {
			return instances, fmt.Errorf("observe: %d of %d instances could not be observed", failures, len(todo))
		}
		return instances, nil
	}
	err := l.e.update(ctx, func(tx store.Tx, ev *eventBuf) error {
		for _, o := range changed {
			fresh, err := tx.Instance(l.id, o.rec.NodeID)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if fresh.State != o.rec.State || fresh.ProviderID != o.rec.ProviderID {
				continue // changed meanwhile; the next pass looks again
			}
			var evs []store.Event
			applyObservation(fresh, o, now, &evs)
			if err := tx.PutInstance(fresh); err != nil {
				return err
			}
			for _, e := range evs {
				if err := ev.add(tx, e); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return instances, fmt.Errorf("record observations: %w", err)
	}
	for _, o := range changed {
		if o.inst.State == cloud.StateRunning && o.rec.State != store.StateReady {
			l.mu.Lock()
			delete(l.createHold, o.rec.Node)
			l.mu.Unlock()
		}
	}
	fresh, err := l.readInstances(ctx)
	if err != nil {
		return instances, err
	}
	if failures > 0 {
		return fresh, fmt.Errorf("observe: %d of %d instances could not be observed", failures, len(todo))
	}
	return fresh, nil
}

// safeObserveOne is observeOne with a panic (in a provider or a check) turned into a
// failed observation, counted as a reconcile error.
func (l *infraLoop) safeObserveOne(ctx context.Context, d *desired, r *store.InstanceRecord) (o observation) {
	defer func() {
		if p := recover(); p != nil {
			l.e.metrics.errors.Inc()
			o = observation{rec: r, err: fmt.Errorf("observe panicked: %v", p)}
		}
	}()
	return l.observeOne(ctx, d, r)
}

// observeOne describes one instance and, when it runs, checks its health.
func (l *infraLoop) observeOne(ctx context.Context, d *desired, r *store.InstanceRecord) observation {
	o := observation{rec: r}
	p, err := l.provider(r)
	if err != nil {
		o.err = err
		return o
	}
	o.err = l.e.call(ctx, r.ResourceType, "describe", func(ctx context.Context) error {
		var derr error
		o.inst, derr = p.Describe(ctx, r.ProviderID)
		return derr
	})
	if o.err != nil {
		o.err = fmt.Errorf("describe %s: %w", r.ProviderID, o.err)
		return o
	}
	addr := o.inst.Address()
	if addr == "" && len(r.Addresses) > 0 {
		addr = r.Addresses[0]
	}
	if o.inst.State == cloud.StatePending {
		// An instance may stay pending at the provider no longer than its health timeout
		// (Occopus waits forever; skyfleet replaces it).
		o.timeout = DefaultHealthTimeout
		if l.e.opts.Checker != nil {
			if _, t, err := l.healthSpec(d, r, addr); err == nil {
				o.timeout = t
			}
		}
		return o
	}
	if o.inst.State != cloud.StateRunning || r.State == store.StateDraining || l.e.opts.Checker == nil {
		return o
	}
	spec, timeout, err := l.healthSpec(d, r, addr)
	if err != nil {
		o.err = err
		return o
	}
	cctx, cancel := context.WithTimeout(ctx, l.e.opts.CallTimeout)
	defer cancel()
	o.result = l.e.opts.Checker.Check(cctx, addr, spec)
	if o.result.Aborted {
		o.err = fmt.Errorf("health check of %s aborted: %s", addr, o.result.Detail)
		return o
	}
	o.checked = true
	o.timeout = timeout
	return o
}

// cachedHealth is an instance's health spec with its URLs rendered for one address.
type cachedHealth struct {
	addr    string
	spec    health.Spec
	timeout time.Duration
}

// healthSpec returns the health_check section of the instance's implementation, parsed, with
// its URLs rendered for the instance (ip, node_id, variables, …), and its failure timeout.
func (l *infraLoop) healthSpec(d *desired, r *store.InstanceRecord, addr string) (health.Spec, time.Duration, error) {
	l.mu.Lock()
	c, ok := l.hspecs[r.NodeID]
	l.mu.Unlock()
	if ok && c.addr == addr {
		return c.spec, c.timeout, nil
	}
	impl, err := l.implFor(d, r)
	if err != nil {
		return health.Spec{}, 0, fmt.Errorf("health check: %w", err)
	}
	spec, err := health.ParseSpec(impl.HealthCheck)
	if err != nil {
		return health.Spec{}, 0, fmt.Errorf("health check of node %s: %w", r.Node, err)
	}
	if len(spec.URLs) > 0 {
		n, ok := d.node(r.Node)
		if !ok {
			return health.Spec{}, 0, fmt.Errorf("health check: node %s is not in the descriptor", r.Node)
		}
		tctx := templateContext(d, n, impl, r.NodeID, nil, l.e.opts.TemplateVars)
		tctx.IP = addr
		urls := make([]string, len(spec.URLs))
		for i, u := range spec.URLs {
			out, _, err := l.e.opts.Renderer.Render(fmt.Sprintf("node_def:%s/health_check/urls[%d]", n.Type, i), u, tctx)
			if err != nil {
				return health.Spec{}, 0, fmt.Errorf("health check of node %s: %w", r.Node, err)
			}
			urls[i] = out
		}
		spec.URLs = urls
	}
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = DefaultHealthTimeout
	}
	l.mu.Lock()
	l.hspecs[r.NodeID] = cachedHealth{addr: addr, spec: spec, timeout: timeout}
	l.mu.Unlock()
	return spec, timeout, nil
}

// applyObservation moves r to the state the observation implies, updating addresses and
// health, and reports whether anything changed. Events are appended to evs when it is not nil.
//
// Provider states map to node states as Occopus does: gone or failed → failed (replaced);
// stopped → temp_failed (kept, still counts); pending → pending, failed once it has been
// pending for longer than the health timeout since creation; running → ready once the
// health checks pass, failed once they have failed for longer than the timeout, pending in
// between. A draining instance stays draining unless it is gone.
func applyObservation(r *store.InstanceRecord, o observation, now time.Time, evs *[]store.Event) bool {
	before := *r
	emit := func(typ, msg string, data map[string]any) {
		if evs != nil {
			*evs = append(*evs, instanceEvent(typ, r, msg, data))
		}
	}
	if addrs := o.inst.Addresses; len(addrs) > 0 && !slices.Equal(addrs, r.Addresses) {
		r.Addresses = slices.Clone(addrs)
		r.ResourceAddress = resourceAddress(r.ResourceType, addrs)
	}
	if o.inst.PrivateAddress != "" {
		r.PrivateAddress = o.inst.PrivateAddress
	}
	fail := func(reason string) {
		r.State = store.StateFailed
		r.Detail = reason
		emit("nodefailed", reason, map[string]any{"reason": reason, "addresses": r.Addresses})
	}
	switch o.inst.State {
	case cloud.StateGone:
		if r.State == store.StateDraining {
			break // on its way out anyway; the drain ends at its deadline
		}
		fail("instance no longer exists at the provider")
	case cloud.StateFailed:
		if r.State == store.StateDraining {
			break
		}
		reason := "provider reports the instance failed"
		if o.inst.Detail != "" {
			reason += ": " + o.inst.Detail
		}
		fail(reason)
	case cloud.StateStopped:
		if r.State != store.StateDraining {
			r.State = store.StateTempFailed
			r.Detail = "stopped"
		}
	case cloud.StatePending:
		if r.State == store.StateDraining {
			break
		}
		if o.timeout > 0 && !r.Created.IsZero() && now.Sub(r.Created) > o.timeout {
			fail(fmt.Sprintf("still pending at the provider %s after creation", o.timeout))
			break
		}
		r.State = store.StatePending
	case cloud.StateRunning:
		if r.State == store.StateDraining {
			break
		}
		verdict := "ready"
		if o.checked {
			var since time.Time
			verdict, since = health.Judge(r.FailingSince, o.result, now, o.timeout)
			r.FailingSince = since
			r.Health = o.result.Detail
			if o.result.OK && r.Health == "" {
				r.Health = "ok"
			}
			r.HealthAt = now
		}
		switch verdict {
		case "ready":
			if r.State != store.StateReady {
				r.State = store.StateReady
				r.Detail = ""
				if r.Ready.IsZero() {
					r.Ready = now
					emit("nodecreated", "", map[string]any{"addresses": r.Addresses, "resource_address": r.ResourceAddress})
				}
			}
		case "failed":
			fail(fmt.Sprintf("health checks failing for longer than %s: %s", o.timeout, o.result.Detail))
		default:
			r.State = store.StatePending
		}
	}
	return !sameRecord(&before, r)
}

// sameRecord compares the fields an observation may change.
func sameRecord(a, b *store.InstanceRecord) bool {
	return a.State == b.State && slices.Equal(a.Addresses, b.Addresses) && a.PrivateAddress == b.PrivateAddress &&
		a.Detail == b.Detail && a.Health == b.Health && a.HealthAt.Equal(b.HealthAt) &&
		a.FailingSince.Equal(b.FailingSince) && a.Ready.Equal(b.Ready)
}

// resourceAddress is the address in Occopus' report form: a list for ec2-like providers
// (public and private addresses), the first address otherwise.
func resourceAddress(resourceType string, addrs []string) any {
	switch resourceType {
	case "ec2", "cloudbroker", "azure_aci":
		// Occopus reports these as lists ([public DNS, public IP, private IP] for ec2); nova,
		// docker, cloudsigma and azure_vm as one string.
		return slices.Clone(addrs)
	}
	if len(addrs) == 0 {
		return nil
	}
	return addrs[0]
}
