package api

import (
	"context"
	"fmt"
	"sync"

	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/store"
)

// infraModel is what reports need from an infrastructure's descriptor: its name and, per
// node, the type, limits and dependencies.
type infraModel struct {
	Name   string
	UserID string
	Nodes  []nodeModel
}

type nodeModel struct {
	Name string
	Type string
	Min  int
	Max  int
	Deps []string
}

// modelCache keeps the parsed model of each infrastructure's stored descriptor, so that a
// report parses a descriptor once per change rather than once per request.
type modelCache struct {
	mu      sync.Mutex
	entries map[string]modelEntry
}

type modelEntry struct {
	descriptor string
	model      *infraModel
}

func newModelCache() *modelCache { return &modelCache{entries: map[string]modelEntry{}} }

// get returns the model of rec's descriptor, parsing it when it changed.
func (c *modelCache) get(rec *store.InfraRecord) (*infraModel, error) {
	c.mu.Lock()
	e, ok := c.entries[rec.ID]
	c.mu.Unlock()
	if ok && e.descriptor == rec.Descriptor {
		return e.model, nil
	}
	m, err := parseModel(rec)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.entries[rec.ID] = modelEntry{descriptor: rec.Descriptor, model: m}
	c.mu.Unlock()
	return m, nil
}

// forget drops the entry of an infrastructure that no longer exists.
func (c *modelCache) forget(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}

// parseModel parses the stored descriptor. It was valid when submitted, so an error here
// means the store holds something skyfleet cannot read any more.
func parseModel(rec *store.InfraRecord) (*infraModel, error) {
	in, _, err := descriptor.ParseInfra(rec.ID+".yaml", []byte(rec.Descriptor))
	if err != nil {
		return nil, fmt.Errorf("parse stored descriptor of infrastructure %s: %w", rec.ID, err)
	}
	m := &infraModel{Name: in.Name, UserID: in.UserID, Nodes: make([]nodeModel, 0, len(in.Nodes))}
	for _, n := range in.Nodes {
		m.Nodes = append(m.Nodes, nodeModel{
			Name: n.Name, Type: n.Type, Min: n.Scaling.Min, Max: n.Scaling.Max, Deps: n.DependsOn,
		})
	}
	return m, nil
}

// snapshot is one consistent read of an infrastructure and its instances.
type snapshot struct {
	rec       *store.InfraRecord
	model     *infraModel
	instances []*store.InstanceRecord
	byNode    map[string][]*store.InstanceRecord
}

// snapshot reads the infrastructure and its instances in one transaction. A missing
// infrastructure gives an error wrapping store.ErrNotFound.
func (s *Server) snapshot(ctx context.Context, id string) (*snapshot, error) {
	snap := &snapshot{byNode: map[string][]*store.InstanceRecord{}}
	err := s.opts.Store.View(ctx, func(tx store.Tx) error {
		rec, err := tx.Infra(id)
		if err != nil {
			return err
		}
		snap.rec = rec
		snap.instances, err = tx.Instances(id)
		return err
	})
	if err != nil {
		s.models.forget(id)
		return nil, fmt.Errorf("read infrastructure %s: %w", id, err)
	}
	snap.model, err = s.models.get(snap.rec)
	if err != nil {
		return nil, err
	}
	for _, in := range snap.instances {
		snap.byNode[in.Node] = append(snap.byNode[in.Node], in)
	}
	return snap, nil
}

// target is the node's stored target clamped to its limits (absent: min), as the engine and
// Occopus' scaling report compute it.
func (snap *snapshot) target(n nodeModel) int {
	t, ok := snap.rec.Targets[n.Name]
	if !ok {
		return n.Min
	}
	return max(n.Min, min(t, n.Max))
}

// live reports whether an instance counts towards its node's actual size: everything that is
// or will be running and is not on its way out (temp_failed counts, as in Occopus).
func live(st store.InstanceState) bool {
	switch st {
	case store.StateCreating, store.StatePending, store.StateReady, store.StateTempFailed:
		return true
	}
	return false
}

func countLive(insts []*store.InstanceRecord) int {
	n := 0
	for _, in := range insts {
		if live(in.State) {
			n++
		}
	}
	return n
}

func countState(insts []*store.InstanceRecord, st store.InstanceState) int {
	n := 0
	for _, in := range insts {
		if in.State == st {
			n++
		}
	}
	return n
}
