package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/events"
	"github.com/skyfleet/skyfleet/internal/store"
)

// fakeEngine implements Engine over a real store with the engine's documented behaviour,
// reduced to what the API can observe: submissions stored, Occopus' scaling arithmetic,
// destruction that removes the record.
type fakeEngine struct {
	st    store.Store
	hub   *events.Hub
	clock func() time.Time

	mu         sync.Mutex
	next       int
	maintained map[string]bool
	requests   []store.ScalingRequest
	// destroyNow removes the record in Destroy; otherwise the test removes it (or never).
	destroyNow bool
	panicOn    string
}

func newFakeEngine(st store.Store, hub *events.Hub, clock func() time.Time) *fakeEngine {
	return &fakeEngine{st: st, hub: hub, clock: clock, maintained: map[string]bool{}, destroyNow: true}
}

var _ Engine = (*fakeEngine)(nil)

func (f *fakeEngine) ImportNodeDefs(ctx context.Context, defs descriptor.NodeDefs, source string) ([]string, error) {
	var names []string
	err := f.st.Update(ctx, func(tx store.Tx) error {
		for name, d := range defs {
			y, err := d.MarshalYAML()
			if err != nil {
				return err
			}
			if err := tx.PutNodeDef(&store.NodeDefRecord{Name: name, YAML: string(y), Source: source, Imported: f.clock()}); err != nil {
				return err
			}
			names = append(names, name)
		}
		return nil
	})
	slices.Sort(names)
	return names, err
}

func (f *fakeEngine) Submit(ctx context.Context, id, file string, data []byte) (string, []Warning, error) {
	if f.panicOn == "submit" {
		panic("fake engine: submit exploded")
	}
	in, warns, err := descriptor.ParseInfra(file, data)
	if err != nil {
		return "", nil, err
	}
	f.mu.Lock()
	if id == "" {
		f.next++
		id = fmt.Sprintf("infra-%d", f.next)
	}
	f.maintained[id] = true
	f.mu.Unlock()
	err = f.st.Update(ctx, func(tx store.Tx) error {
		rec, err := tx.Infra(id)
		if errors.Is(err, store.ErrNotFound) {
			rec = &store.InfraRecord{ID: id, Targets: map[string]int{}, Phase: store.InfraBuilding, Created: f.clock()}
		} else if err != nil {
			return err
		} else {
			rec.Generation++
		}
		rec.Descriptor = string(data)
		rec.Updated = f.clock()
		if err := tx.PutInfra(rec); err != nil {
			return err
		}
		return tx.AddEvent(&store.Event{InfraID: id, At: f.clock(), Type: "infrastart", Data: map[string]any{"name": in.Name}})
	})
	if err != nil {
		return "", nil, err
	}
	out := make([]Warning, 0, len(warns))
	for _, w := range warns {
		out = append(out, Warning{Position: w.Pos.String(), Message: w.Msg})
	}
	return id, out, nil
}

func (f *fakeEngine) Scale(ctx context.Context, req store.ScalingRequest) (ScaleResult, error) {
	var res ScaleResult
	err := f.st.Update(ctx, func(tx store.Tx) error {
		rec, err := tx.Infra(req.InfraID)
		if errors.Is(err, store.ErrNotFound) {
			return &NotFoundError{Kind: "infrastructure", Name: req.InfraID}
		}
		if err != nil {
			return err
		}
		in, _, err := descriptor.ParseInfra("stored.yaml", []byte(rec.Descriptor))
		if err != nil {
			return err
		}
		n, ok := in.Node(req.Node)
		if !ok {
			return &NotFoundError{Kind: "node", Name: req.Node, InfraID: req.InfraID}
		}
		lo, hi := n.Scaling.Min, n.Scaling.Max
		from, ok := rec.Targets[req.Node]
		if !ok {
			from = lo
		}
		to := from
		switch req.Kind {
		case store.ScaleUp:
			to = from + req.Count
		case store.ScaleDown:
			to = from - max(req.Count, 1)
		case store.ScaleTo:
			to = req.Count
		}
		res = ScaleResult{From: from, Target: max(lo, min(to, hi))}
		switch {
		case to > hi:
			res.Reason = fmt.Sprintf("maximum count reached (%d)", hi)
		case to < lo:
			res.Reason = fmt.Sprintf("minimum count reached (%d)", lo)
		}
		res.Applied = res.Target != from
		rec.Targets[req.Node] = res.Target
		typ := "scaling_applied"
		if !res.Applied {
			typ = "scaling_ignored"
		}
		if err := tx.PutInfra(rec); err != nil {
			return err
		}
		return tx.AddEvent(&store.Event{InfraID: req.InfraID, At: f.clock(), Type: typ, Node: req.Node, Data: map[string]any{"reason": res.Reason, "target": res.Target}})
	})
	if err != nil {
		return ScaleResult{}, err
	}
	f.mu.Lock()
	f.requests = append(f.requests, req)
	f.mu.Unlock()
	return res, nil
}

func (f *fakeEngine) Destroy(ctx context.Context, id string) error {
	err := f.st.Update(ctx, func(tx store.Tx) error {
		rec, err := tx.Infra(id)
		if err != nil {
			return err
		}
		rec.Phase = store.InfraDestroying
		return tx.PutInfra(rec)
	})
	if errors.Is(err, store.ErrNotFound) {
		return &NotFoundError{Kind: "infrastructure", Name: id}
	}
	if err != nil || !f.destroyNow {
		return err
	}
	return f.st.Update(ctx, func(tx store.Tx) error { return tx.DeleteInfra(id) })
}

func (f *fakeEngine) WaitGone(ctx context.Context, id string) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f.st.View(ctx, func(tx store.Tx) error {
			_, err := tx.Infra(id)
			return err
		})
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (f *fakeEngine) exists(id string) bool {
	err := f.st.View(context.Background(), func(tx store.Tx) error {
		_, err := tx.Infra(id)
		return err
	})
	return err == nil
}

func (f *fakeEngine) Attach(_ context.Context, id string) error {
	if !f.exists(id) {
		return &NotFoundError{Kind: "infrastructure", Name: id}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.maintained[id] {
		return ErrAlreadyAttached
	}
	f.maintained[id] = true
	return nil
}

func (f *fakeEngine) Detach(_ context.Context, id string) error {
	if !f.exists(id) {
		return &NotFoundError{Kind: "infrastructure", Name: id}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.maintained[id] {
		return ErrNotAttached
	}
	f.maintained[id] = false
	return nil
}

func (f *fakeEngine) Maintained(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maintained[id]
}

// addEvent persists an event and publishes it, as the engine does.
func (f *fakeEngine) addEvent(ctx context.Context, e store.Event) (store.Event, error) {
	err := f.st.Update(ctx, func(tx store.Tx) error { return tx.AddEvent(&e) })
	if err == nil {
		f.hub.Publish(e)
	}
	return e, err
}
