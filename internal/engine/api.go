package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/store"
)

// ImportNodeDefs stores node definitions (already parsed and validated), replacing ones of the
// same name. Infrastructures already submitted keep the definitions they were submitted with.
// It returns the names imported, sorted.
func (e *Engine) ImportNodeDefs(ctx context.Context, defs descriptor.NodeDefs, source string) ([]string, error) {
	names := slices.Sorted(maps.Keys(defs))
	recs := make([]*store.NodeDefRecord, 0, len(names))
	now := e.clock()
	for _, name := range names {
		y, err := defs[name].MarshalYAML()
		if err != nil {
			return nil, fmt.Errorf("import node definitions: %w", err)
		}
		recs = append(recs, &store.NodeDefRecord{Name: name, YAML: string(y), Source: source, Imported: now})
	}
	err := e.opts.Store.Update(ctx, func(tx store.Tx) error {
		for _, r := range recs {
			if err := tx.PutNodeDef(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("import node definitions: %w", err)
	}
	e.log.Info("imported node definitions", "names", names, "source", source)
	return names, nil
}

// Submit compiles the descriptor against the stored node definitions and stores it. With
// id == "" a new id is assigned; with an id that exists the descriptor replaces the stored
// one (as `occopus-build -i`): new nodes are created, removed nodes are dropped, targets are
// re-clamped. With an id that does not exist the infrastructure is created under that id.
// It returns the id and the descriptor's warnings. Descriptor problems (including unknown
// node types and filters no implementation matches) are a descriptor.Errors positioned in
// the descriptor.
func (e *Engine) Submit(ctx context.Context, id, file string, data []byte) (string, []descriptor.Warning, error) {
	infra, warns, err := descriptor.ParseInfra(file, data)
	if err != nil {
		return "", warns, err
	}
	types := map[string]bool{}
	for _, n := range infra.Nodes {
		types[n.Type] = true
	}
	defs := descriptor.NodeDefs{}
	yamls := map[string]string{}
	err = e.opts.Store.View(ctx, func(tx store.Tx) error {
		for t := range types {
			r, err := tx.NodeDef(t)
			if errors.Is(err, store.ErrNotFound) {
				continue // CheckInfra reports it, positioned in the descriptor
			}
			if err != nil {
				return err
			}
			parsed, _, err := descriptor.ParseNodeDefs(nodeDefFile(t), []byte(r.YAML), descriptor.ImportOptions{})
			if err != nil {
				return fmt.Errorf("stored node definition %s: %w", t, err)
			}
			maps.Copy(defs, parsed)
			yamls[t] = r.YAML
		}
		return nil
	})
	if err != nil {
		return "", warns, fmt.Errorf("submit infrastructure: %w", err)
	}
	if err := defs.CheckInfra(infra); err != nil {
		return "", warns, err
	}
	if err := e.checkProviders(infra, defs); err != nil {
		return "", warns, err
	}
	if id == "" {
		id = e.newID()
	}
	now := e.clock()
	updated, detached := false, false
	err = e.update(ctx, func(tx store.Tx, ev *eventBuf) error {
		rec, err := tx.Infra(id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			updated = false
			rec = &store.InfraRecord{ID: id, Targets: map[string]int{}, Phase: store.InfraBuilding, Created: now, Generation: 1}
		case err != nil:
			return err
		default:
			updated = true
			if rec.Phase == store.InfraDestroying {
				return fmt.Errorf("infrastructure %s: %w", id, ErrDestroying)
			}
			rec.Generation++
			if rec.Phase == store.InfraReady {
				rec.Phase = store.InfraBuilding
			}
			for name := range rec.Targets {
				if _, ok := infra.Node(name); !ok {
					delete(rec.Targets, name)
				}
			}
		}
		detached = rec.Phase == store.InfraDetached
		rec.Descriptor = string(data)
		rec.NodeDefs = yamls
		rec.Updated = now
		if rec.Targets == nil {
			rec.Targets = map[string]int{}
		}
		if err := tx.PutInfra(rec); err != nil {
			return err
		}
		typ := "infrastart"
		if updated {
			typ = "infraupdated"
		}
		nodes := make([]string, 0, len(infra.Nodes))
		for _, n := range infra.Nodes {
			nodes = append(nodes, n.Name)
		}
		return ev.add(tx, store.Event{InfraID: id, Type: typ, Data: map[string]any{"infra_name": infra.Name, "nodes": nodes, "generation": rec.Generation}})
	})
	if err != nil {
		return "", warns, fmt.Errorf("submit infrastructure: %w", err)
	}
	e.log.Info("infrastructure submitted", "infra_id", id, "infra_name", infra.Name, "updated", updated, "detached", detached)
	if !detached {
		e.startLoop(id)
	}
	return id, warns, nil
}

// ScaleResult is the outcome of a scaling request.
type ScaleResult struct {
	Request store.ScalingRequest
	// Applied is true when the target changed (or a named victim was accepted).
	Applied bool
	// Reason says why the request was ignored or clamped, e.g. "maximum count reached (10)";
	// empty when fully applied.
	Reason string
	// From is the target before, Target the target after.
	From   int
	Target int
	// Pending counts the node's instances not yet ready (creating or pending).
	Pending int
}

// checkProviders refuses a descriptor whose nodes can only be built by implementations of a
// resource type no provider serves (recognised Occopus types skyfleet does not support yet,
// or a type with no registered driver), before anything is stored or created.
func (e *Engine) checkProviders(infra *descriptor.Infra, defs descriptor.NodeDefs) error {
	var errs descriptor.Errors
	for i, n := range infra.Nodes {
		def, ok := defs[n.Type]
		if !ok {
			continue
		}
		var problems []string
		usable := 0
		for _, im := range def.Matching(n.Filter) {
			t := im.ResourceType()
			switch _, err := e.opts.Providers.Driver(t); {
			case !descriptor.SupportedResourceType(t):
				var supported []string
				for _, name := range e.opts.Providers.Names() {
					if descriptor.SupportedResourceType(name) {
						supported = append(supported, name)
					}
				}
				problems = append(problems, fmt.Sprintf("resource type %q is recognised but skyfleet does not support it yet (supported: %s)", t, strings.Join(supported, ", ")))
			case err != nil:
				problems = append(problems, err.Error())
			default:
				usable++
			}
		}
		if usable == 0 && len(problems) > 0 {
			errs = append(errs, &descriptor.Error{Pos: n.TypePos, Path: fmt.Sprintf("nodes[%d].type", i), Value: n.Type,
				Msg: fmt.Sprintf("node %q cannot be built: %s", n.Name, strings.Join(problems, "; "))})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// Scale applies a scaling request at once (Occopus' arithmetic, clamped to min..max) in one
// transaction and wakes the loop. A named victim (scaledown with a node id or any of the
// instance's addresses) leaves at once: it starts draining (when the node drains) or is
// marked for destruction. Unknown infrastructure or node gives a *NotFoundError. A request
// that cannot change anything (scaleup at max, scaledown at min, unknown victim) is
// recorded as ignored (event scaling_ignored with the reason) and reported so.
func (e *Engine) Scale(ctx context.Context, req store.ScalingRequest) (ScaleResult, error) {
	now := e.clock()
	if req.At.IsZero() {
		req.At = now
	}
	res := ScaleResult{Request: req}
	err := e.update(ctx, func(tx store.Tx, ev *eventBuf) error {
		res = ScaleResult{Request: req}
		rec, err := tx.Infra(req.InfraID)
		if errors.Is(err, store.ErrNotFound) {
			return &NotFoundError{Kind: "infrastructure", Name: req.InfraID}
		}
		if err != nil {
			return err
		}
		if rec.Phase == store.InfraDestroying {
			return fmt.Errorf("infrastructure %s: %w", req.InfraID, ErrDestroying)
		}
		d, err := e.compile(rec)
		if err != nil {
			return err
		}
		n, ok := d.node(req.Node)
		if !ok {
			return &NotFoundError{Kind: "node", Name: req.Node, InfraID: req.InfraID}
		}
		lim := nodeLimits(n)
		from := currentTarget(rec.Targets, n.Name, lim)
		instances, err := tx.Instances(req.InfraID)
		if err != nil {
			return err
		}
		var victim *store.InstanceRecord
		if req.Kind == store.ScaleDown && req.Victim != "" {
			victim = findVictim(instances, n.Name, req.Victim)
		}
		dec, err := decideScale(req.Kind, req.Count, req.Victim, victim != nil, from, lim)
		if err != nil {
			return err
		}
		res.Applied, res.Reason, res.From, res.Target = dec.applied, dec.reason, dec.from, dec.to
		for _, r := range instances {
			if r.Node == n.Name && (r.State == store.StateCreating || r.State == store.StatePending) {
				res.Pending++
			}
		}
		data := map[string]any{
			"kind": string(req.Kind), "count": req.Count, "from": dec.from, "target": dec.to,
			"min": lim.min, "max": lim.max, "source": req.Source,
		}
		if req.Victim != "" {
			data["victim"] = req.Victim
		}
		if dec.reason != "" {
			data["reason"] = dec.reason
		}
		if !dec.applied {
			return ev.add(tx, store.Event{InfraID: req.InfraID, Type: "scaling_ignored", Node: n.Name, Message: dec.reason, Data: data})
		}
		if rec.Targets == nil {
			rec.Targets = map[string]int{}
		}
		rec.Targets[n.Name] = dec.to
		rec.Updated = now
		if err := tx.PutInfra(rec); err != nil {
			return err
		}
		if err := ev.add(tx, store.Event{InfraID: req.InfraID, Type: "scaling_applied", Node: n.Name, Message: dec.reason, Data: data}); err != nil {
			return err
		}
		if victim != nil {
			var until time.Time
			if n.Scaling.DrainTimeout > 0 && victim.State == store.StateReady {
				until = now.Add(n.Scaling.DrainTimeout)
			}
			return markDropping(tx, ev, victim, until, "scale down (named victim)")
		}
		return nil
	})
	if err != nil {
		var nf *NotFoundError
		if errors.As(err, &nf) || errors.Is(err, ErrDestroying) {
			return res, err
		}
		return res, fmt.Errorf("scale %s/%s: %w", req.InfraID, req.Node, err)
	}
	e.log.Info("scaling request", "infra_id", req.InfraID, "node", req.Node, "kind", req.Kind,
		"applied", res.Applied, "from", res.From, "target", res.Target, "reason", res.Reason)
	if res.Applied {
		e.wake(req.InfraID)
	}
	return res, nil
}

// Destroy marks the infrastructure for destruction and returns at once; its loop drops every
// instance (draining first where configured), then deletes the record. A detached
// infrastructure is attached again for that. Destruction survives a restart: the phase is
// stored.
func (e *Engine) Destroy(ctx context.Context, id string) error {
	err := e.update(ctx, func(tx store.Tx, ev *eventBuf) error {
		rec, err := tx.Infra(id)
		if errors.Is(err, store.ErrNotFound) {
			return &NotFoundError{Kind: "infrastructure", Name: id}
		}
		if err != nil {
			return err
		}
		if rec.Phase == store.InfraDestroying {
			return nil
		}
		rec.Phase = store.InfraDestroying
		rec.Updated = e.clock()
		if err := tx.PutInfra(rec); err != nil {
			return err
		}
		return ev.add(tx, store.Event{InfraID: id, Type: "infradrop", Message: "destruction requested"})
	})
	if err != nil {
		var nf *NotFoundError
		if errors.As(err, &nf) {
			return err
		}
		return fmt.Errorf("destroy infrastructure %s: %w", id, err)
	}
	e.log.Info("infrastructure marked for destruction", "infra_id", id)
	e.startLoop(id)
	return nil
}

// WaitGone blocks until the infrastructure's record is gone or ctx ends.
func (e *Engine) WaitGone(ctx context.Context, id string) error {
	for {
		gone := e.goneCh()
		err := e.opts.Store.View(ctx, func(tx store.Tx) error {
			_, err := tx.Infra(id)
			return err
		})
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("wait for infrastructure %s to go: %w", id, err)
		}
		t := time.NewTimer(time.Second) // also notices deletions by another engine
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for infrastructure %s to go: %w", id, ctx.Err())
		case <-gone:
		case <-t.C:
		}
		t.Stop()
	}
}

// Attach starts maintaining a stored infrastructure (Occopus attach). The attachment is
// stored: a restarted engine maintains it again.
func (e *Engine) Attach(ctx context.Context, id string) error {
	if e.Maintained(id) {
		return ErrAlreadyAttached
	}
	err := e.opts.Store.Update(ctx, func(tx store.Tx) error {
		rec, err := tx.Infra(id)
		if errors.Is(err, store.ErrNotFound) {
			return &NotFoundError{Kind: "infrastructure", Name: id}
		}
		if err != nil {
			return err
		}
		if rec.Phase == store.InfraDetached {
			rec.Phase = store.InfraBuilding
			rec.Updated = e.clock()
			return tx.PutInfra(rec)
		}
		return nil
	})
	if err != nil {
		var nf *NotFoundError
		if errors.As(err, &nf) {
			return err
		}
		return fmt.Errorf("attach infrastructure %s: %w", id, err)
	}
	e.startLoop(id)
	e.log.Info("infrastructure attached", "infra_id", id)
	return nil
}

// Detach stops maintaining an infrastructure (Occopus detach): its instances keep running
// and nothing heals or scales them until Attach. The detachment is stored.
func (e *Engine) Detach(ctx context.Context, id string) error {
	err := e.opts.Store.View(ctx, func(tx store.Tx) error {
		_, err := tx.Infra(id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return &NotFoundError{Kind: "infrastructure", Name: id}
	}
	if err != nil {
		return fmt.Errorf("detach infrastructure %s: %w", id, err)
	}
	if !e.Maintained(id) {
		return ErrNotAttached
	}
	err = e.opts.Store.Update(ctx, func(tx store.Tx) error {
		rec, err := tx.Infra(id)
		if err != nil {
			return err
		}
		if rec.Phase == store.InfraDestroying {
			return fmt.Errorf("infrastructure %s: %w", id, ErrDestroying)
		}
		rec.Phase = store.InfraDetached
		rec.Updated = e.clock()
		return tx.PutInfra(rec)
	})
	if err != nil {
		return fmt.Errorf("detach infrastructure %s: %w", id, err)
	}
	if _, err := e.stopLoop(ctx, id); err != nil {
		return err
	}
	e.log.Info("infrastructure detached", "infra_id", id)
	return nil
}
