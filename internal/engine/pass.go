package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/store"
)

// readInstances returns the infrastructure's instance records.
func (l *infraLoop) readInstances(ctx context.Context) ([]*store.InstanceRecord, error) {
	var out []*store.InstanceRecord
	err := l.e.opts.Store.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.Instances(l.id)
		return err
	})
	return out, err
}

// pass is one level-triggered reconcile: re-read desired and actual state, observe, plan,
// act. It reports finished when the infrastructure no longer exists (or is detached), which
// ends the loop.
func (l *infraLoop) pass(ctx context.Context) (finished bool, err error) {
	var rec *store.InfraRecord
	var instances []*store.InstanceRecord
	err = l.e.opts.Store.View(ctx, func(tx store.Tx) error {
		var err error
		if rec, err = tx.Infra(l.id); err != nil {
			return err
		}
		instances, err = tx.Instances(l.id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		l.e.forget(l.id)
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("read state: %w", err)
	}
	switch rec.Phase {
	case store.InfraDetached:
		return true, nil
	case store.InfraDestroying:
		return l.destroyPass(ctx, rec, instances)
	}
	d, err := l.e.compile(rec)
	if err != nil {
		l.reportError(ctx, "compile", "", err)
		return false, err
	}
	l.clearError("compile")
	instances, obsErr := l.observe(ctx, d, instances)
	if ctx.Err() != nil {
		return false, nil
	}
	now := l.e.clock()
	p := makePlan(planInput{
		nodes:       d.nodes,
		targets:     rec.Targets,
		instances:   instances,
		now:         now,
		drainDone:   l.drainDone(),
		connections: l.connections(),
	})
	instances, err = l.apply(ctx, d, p, instances, now)
	if err != nil {
		return false, err
	}
	l.launch(ctx, d, instances)
	if err := l.updatePhase(ctx, rec.Phase, p); err != nil {
		return false, err
	}
	l.setGauges(instances)
	return false, obsErr
}

func (l *infraLoop) connections() func(r *store.InstanceRecord) (int, bool) {
	if l.e.opts.Connections == nil {
		return nil
	}
	return func(r *store.InstanceRecord) (int, bool) { return l.e.opts.Connections(r.InfraID, r.NodeID) }
}

func (l *infraLoop) drainDone() func(r *store.InstanceRecord) bool {
	if l.e.opts.DrainDone == nil {
		return nil
	}
	return func(r *store.InstanceRecord) bool { return l.e.opts.DrainDone(r.InfraID, r.NodeID) }
}

// markDropping moves r towards destruction in tx: draining with a deadline when drain is
// set, destroying otherwise, with the matching event.
func markDropping(tx store.Tx, ev *eventBuf, r *store.InstanceRecord, drainUntil time.Time, reason string) error {
	data := map[string]any{"addresses": r.Addresses}
	if reason != "" {
		data["reason"] = reason
	}
	if !drainUntil.IsZero() {
		r.State = store.StateDraining
		r.DrainDeadline = drainUntil
		data["deadline"] = drainUntil
		if err := tx.PutInstance(r); err != nil {
			return err
		}
		return ev.add(tx, instanceEvent("nodedraining", r, reason, data))
	}
	r.State = store.StateDestroying
	if err := tx.PutInstance(r); err != nil {
		return err
	}
	return ev.add(tx, instanceEvent("nodedropping", r, reason, data))
}

// apply stores the plan's state changes (intent first: nothing is called at a provider
// here) and returns the instance records as they are afterwards.
func (l *infraLoop) apply(ctx context.Context, d *desired, p plan, instances []*store.InstanceRecord, now time.Time) ([]*store.InstanceRecord, error) {
	creates := l.prepareCreates(ctx, d, p, instances, now)
	if len(p.removed)+len(p.failed)+len(p.surplus)+len(p.drained)+len(creates) == 0 {
		return instances, nil
	}
	err := l.e.update(ctx, func(tx store.Tx, ev *eventBuf) error {
		// fresh re-reads r; nil when it changed since the plan was made (the next pass
		// decides again).
		fresh := func(r *store.InstanceRecord) (*store.InstanceRecord, error) {
			f, err := tx.Instance(l.id, r.NodeID)
			if errors.Is(err, store.ErrNotFound) {
				return nil, nil
			}
			if err != nil || f.State != r.State {
				return nil, err
			}
			return f, nil
		}
		for _, r := range p.removed {
			f, err := fresh(r)
			if err != nil {
				return err
			}
			if f != nil {
				if err := markDropping(tx, ev, f, time.Time{}, "node removed from the descriptor"); err != nil {
					return err
				}
			}
		}
		for _, r := range p.failed {
			f, err := fresh(r)
			if err != nil {
				return err
			}
			if f == nil {
				continue
			}
			// Archive the failed record (as Occopus keeps failed_nodes) and keep a destroying
			// record in its place, in the same transaction, so the destroy survives a crash.
			if err := tx.ArchiveInstance(f); err != nil {
				return err
			}
			if err := markDropping(tx, ev, f, time.Time{}, f.Detail); err != nil {
				return err
			}
		}
		for _, v := range p.surplus {
			f, err := fresh(v.rec)
			if err != nil {
				return err
			}
			if f == nil {
				continue
			}
			var until time.Time
			if v.kind == dropDrain {
				until = v.deadline
			}
			if err := markDropping(tx, ev, f, until, "scale down"); err != nil {
				return err
			}
		}
		for _, r := range p.drained {
			f, err := fresh(r)
			if err != nil {
				return err
			}
			if f != nil {
				if err := markDropping(tx, ev, f, time.Time{}, "drained"); err != nil {
					return err
				}
			}
		}
		for _, c := range creates {
			if err := tx.PutInstance(c.rec); err != nil {
				return err
			}
			data := map[string]any{"target": p.status[c.rec.Node].target, "resource_type": c.rec.ResourceType}
			if err := ev.add(tx, instanceEvent("nodecreating", c.rec, "", data)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return instances, fmt.Errorf("record plan: %w", err)
	}
	l.mu.Lock()
	for _, c := range creates {
		l.specs[c.rec.NodeID] = c.spec
		l.impls[c.rec.NodeID] = c.impl
	}
	l.mu.Unlock()
	for _, c := range creates {
		l.log.Info("creating instance", "node", c.rec.Node, "node_id", c.rec.NodeID, "resource_type", c.rec.ResourceType)
	}
	return l.readInstances(ctx)
}

// launch starts the provider calls that stored intents ask for: Create for records in
// state creating, Destroy for records in state destroying, unless one is in flight. After a
// restart, this is what repeats the interrupted calls.
func (l *infraLoop) launch(ctx context.Context, d *desired, instances []*store.InstanceRecord) {
	var book addressBookOnce
	now := time.Now()
	for _, r := range instances {
		switch r.State {
		case store.StateCreating:
			if d == nil || l.inFlight(r.NodeID) {
				continue
			}
			l.mu.Lock()
			spec := l.specs[r.NodeID]
			l.mu.Unlock()
			if spec == nil {
				var err error
				spec, err = l.recoverSpec(ctx, d, r, book.get(instances))
				if err != nil {
					l.reportError(ctx, "create:"+r.NodeID, r.Node, fmt.Errorf("repeat create of %s: %w", r.NodeID, err))
					continue
				}
				l.log.Info("repeating create of an instance recorded before a restart", "node", r.Node, "node_id", r.NodeID)
			}
			l.startCreate(ctx, r, spec)
		case store.StateDestroying:
			l.mu.Lock()
			wait := l.notBefore[r.NodeID]
			l.mu.Unlock()
			if now.Before(wait) || l.inFlight(r.NodeID) {
				continue
			}
			l.startDestroy(ctx, r)
		}
	}
}

// addressBookOnce builds the address book lazily, once per pass.
type addressBookOnce struct{ b addressBook }

func (o *addressBookOnce) get(instances []*store.InstanceRecord) addressBook {
	if o.b.byNode == nil {
		o.b = newAddressBook(instances)
	}
	return o.b
}

// recoverSpec rebuilds the spec of a creating record this engine did not create (it was
// stored before a restart): the recorded resource section, and the contextualisation
// rendered again for the same node id.
func (l *infraLoop) recoverSpec(ctx context.Context, d *desired, r *store.InstanceRecord, book addressBook) (*cloud.InstanceSpec, error) {
	n, ok := d.node(r.Node)
	if !ok {
		return nil, fmt.Errorf("node %s is not in the descriptor", r.Node)
	}
	impl, err := l.implFor(d, r)
	if err != nil {
		return nil, err
	}
	return l.e.renderSpec(ctx, d, n, impl, r.NodeID, book, r.Resource)
}

// reportError records an error event once per distinct message and key, and logs it.
func (l *infraLoop) reportError(ctx context.Context, key, node string, err error) {
	msg := err.Error()
	l.mu.Lock()
	same := l.errorReported[key] == msg
	l.errorReported[key] = msg
	l.mu.Unlock()
	if same {
		l.log.Debug("error persists", "key", key, "node", node, "err", err)
		return
	}
	l.log.Warn("reconcile error", "node", node, "err", err)
	_ = l.e.update(ctx, func(tx store.Tx, ev *eventBuf) error {
		return ev.add(tx, store.Event{InfraID: l.id, Type: "error", Node: node, Message: msg})
	})
}

func (l *infraLoop) clearError(key string) {
	l.mu.Lock()
	delete(l.errorReported, key)
	l.mu.Unlock()
}

// updatePhase moves the infrastructure between building and ready; infraready is recorded
// once per transition.
func (l *infraLoop) updatePhase(ctx context.Context, phase store.InfraPhase, p plan) error {
	want := store.InfraBuilding
	if p.ready && len(p.removed)+len(p.failed)+len(p.drained) == 0 {
		want = store.InfraReady
	}
	if phase == want || (phase != store.InfraBuilding && phase != store.InfraReady) {
		return nil
	}
	return l.e.update(ctx, func(tx store.Tx, ev *eventBuf) error {
		f, err := tx.Infra(l.id)
		if err != nil {
			return err
		}
		if f.Phase == want || (f.Phase != store.InfraBuilding && f.Phase != store.InfraReady) {
			return nil
		}
		f.Phase = want
		f.Updated = l.e.clock()
		if err := tx.PutInfra(f); err != nil {
			return err
		}
		if want == store.InfraReady {
			l.log.Info("infrastructure ready")
			targets := map[string]any{}
			for name, st := range p.status {
				targets[name] = st.target
			}
			return ev.add(tx, store.Event{InfraID: l.id, Type: "infraready", Data: map[string]any{"targets": targets}})
		}
		return nil
	})
}

// destroyPass drives a destroying infrastructure: every instance is dropped (draining first
// where the node drains and the instance is ready), and once none is left and no call is in
// flight, the record is deleted.
func (l *infraLoop) destroyPass(ctx context.Context, rec *store.InfraRecord, instances []*store.InstanceRecord) (bool, error) {
	now := l.e.clock()
	drain := map[string]time.Duration{}
	if d, err := l.e.compile(rec); err == nil {
		for _, n := range d.nodes {
			drain[n.name] = n.drainTimeout
		}
	}
	doneFn := l.drainDone()
	var toMark []*store.InstanceRecord
	for _, r := range instances {
		switch r.State {
		case store.StateDestroying:
		case store.StateDraining:
			if !now.Before(r.DrainDeadline) || (doneFn != nil && doneFn(r)) {
				toMark = append(toMark, r)
			}
		default:
			toMark = append(toMark, r)
		}
	}
	if len(toMark) > 0 {
		err := l.e.update(ctx, func(tx store.Tx, ev *eventBuf) error {
			for _, r := range toMark {
				f, err := tx.Instance(l.id, r.NodeID)
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				var until time.Time
				if f.State == store.StateReady && drain[f.Node] > 0 {
					until = now.Add(drain[f.Node])
				}
				if err := markDropping(tx, ev, f, until, "infrastructure destroyed"); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return false, fmt.Errorf("record drop of every instance: %w", err)
		}
		var err2 error
		if instances, err2 = l.readInstances(ctx); err2 != nil {
			return false, err2
		}
	}
	if len(instances) > 0 || l.anyInFlight() {
		l.launch(ctx, nil, instances)
		l.setGauges(instances)
		return false, nil
	}
	if err := l.cleanup(ctx); err != nil {
		return false, err
	}
	err := l.e.update(ctx, func(tx store.Tx, _ *eventBuf) error {
		left, err := tx.Instances(l.id)
		if err != nil {
			return err
		}
		if len(left) > 0 {
			return errRetryPass
		}
		return tx.DeleteInfra(l.id)
	})
	if errors.Is(err, errRetryPass) {
		return false, nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("delete infrastructure: %w", err)
	}
	l.e.forget(l.id)
	l.e.publish(store.Event{InfraID: l.id, Type: "infradrop", At: l.e.clock(), Message: "infrastructure deleted"})
	l.log.Info("infrastructure destroyed")
	l.e.signalGone()
	return true, nil
}

var errRetryPass = errors.New("state changed during the pass")

// setGauges publishes skyfleet_instances for this infrastructure, removing label sets that
// no longer have instances.
func (l *infraLoop) setGauges(instances []*store.InstanceRecord) {
	counts := map[[2]string]int{}
	for _, r := range instances {
		counts[[2]string{r.Node, string(r.State)}]++
	}
	for k := range l.gauges {
		if _, ok := counts[k]; !ok {
			l.e.metrics.instances.DeleteLabelValues(l.id, k[0], k[1])
			delete(l.gauges, k)
		}
	}
	for k, c := range counts {
		l.e.metrics.instances.WithLabelValues(l.id, k[0], k[1]).Set(float64(c))
		l.gauges[k] = true
	}
}

func (l *infraLoop) clearGauges() { l.setGauges(nil) }

// newInstance is a rendered instance about to be recorded in state creating.
type newInstance struct {
	rec  *store.InstanceRecord
	spec *cloud.InstanceSpec
	impl *descriptor.Impl
}

// prepareCreates chooses an implementation for every instance the plan creates and renders
// it. A node whose rendering fails (getip of a node without instances, a resource its
// provider refuses) gets an error event and no instance this pass; the next pass tries again.
func (l *infraLoop) prepareCreates(ctx context.Context, d *desired, p plan, instances []*store.InstanceRecord, now time.Time) []newInstance {
	for name, dep := range p.blocked {
		l.log.Debug("node waits for a ready instance of a node it depends on", "node", name, "dependee", dep)
	}
	var out []newInstance
	var book addressBookOnce
	wall := time.Now()
	for _, ns := range d.nodes {
		count := p.create[ns.name]
		if count == 0 {
			continue
		}
		l.mu.Lock()
		h := l.createHold[ns.name]
		l.mu.Unlock()
		if wall.Before(h.until) {
			l.log.Debug("node creation held back after failures", "node", ns.name, "until", h.until)
			continue
		}
		n, _ := d.node(ns.name)
		def, ok := d.defs[n.Type]
		if !ok {
			l.reportError(ctx, "render:"+ns.name, ns.name, fmt.Errorf("node %s: node definition %s is missing", n.Name, n.Type))
			continue
		}
		ok = true
		for range count {
			nodeID := l.e.newID()
			impl, err := def.Select(n.Filter, l.e.pick)
			if err != nil {
				l.reportError(ctx, "render:"+ns.name, ns.name, fmt.Errorf("node %s: %w", n.Name, err))
				ok = false
				break
			}
			spec, err := l.e.renderSpec(ctx, d, n, impl, nodeID, book.get(instances), nil)
			if err != nil {
				l.reportError(ctx, "render:"+ns.name, ns.name, err)
				ok = false
				break
			}
			prov, err := l.e.bind(spec.Resource)
			if err != nil {
				l.reportError(ctx, "render:"+ns.name, ns.name, fmt.Errorf("node %s: %w", n.Name, err))
				ok = false
				break
			}
			rtype, _ := spec.Resource["type"].(string)
			rec := &store.InstanceRecord{
				InfraID:      l.id,
				Node:         n.Name,
				NodeID:       nodeID,
				State:        store.StateCreating,
				ResourceType: rtype,
				Resource:     spec.Resource,
				Created:      now,
			}
			l.mu.Lock()
			l.provs[nodeID] = prov
			l.mu.Unlock()
			l.noteCleaner(prov, spec.Resource)
			out = append(out, newInstance{rec: rec, spec: spec, impl: impl})
		}
		if ok {
			l.clearError("render:" + ns.name)
		}
	}
	return out
}
