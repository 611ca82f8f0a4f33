package engine

import (
	"fmt"
	"maps"
	"slices"

	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/store"
)

// desired is an infrastructure record compiled: the parsed descriptor and the node
// definitions captured at submission, and the planning view of its nodes.
type desired struct {
	infraID    string
	generation int
	source     string
	infra      *descriptor.Infra
	defs       descriptor.NodeDefs
	// nodes in topological order (dependees first).
	nodes []nodeSpec
}

// infraFile names a stored descriptor in messages.
func infraFile(id string) string { return "infra " + id }

// nodeDefFile names a stored node definition in messages.
func nodeDefFile(name string) string { return "node_def:" + name }

// compile returns the compiled desired state of rec, from the cache when the generation and
// text are the ones compiled last.
func (e *Engine) compile(rec *store.InfraRecord) (*desired, error) {
	e.cacheMu.Lock()
	d, ok := e.compiled[rec.ID]
	e.cacheMu.Unlock()
	if ok && d.generation == rec.Generation && d.source == rec.Descriptor {
		return d, nil
	}
	infra, _, err := descriptor.ParseInfra(infraFile(rec.ID), []byte(rec.Descriptor))
	if err != nil {
		return nil, fmt.Errorf("compile infrastructure %s: %w", rec.ID, err)
	}
	defs := descriptor.NodeDefs{}
	for _, name := range slices.Sorted(maps.Keys(rec.NodeDefs)) {
		parsed, _, err := descriptor.ParseNodeDefs(nodeDefFile(name), []byte(rec.NodeDefs[name]), descriptor.ImportOptions{})
		if err != nil {
			return nil, fmt.Errorf("compile infrastructure %s: node definition %s: %w", rec.ID, name, err)
		}
		maps.Copy(defs, parsed)
	}
	d = newDesired(rec, infra, defs)
	e.cacheMu.Lock()
	e.compiled[rec.ID] = d
	e.cacheMu.Unlock()
	return d, nil
}

// forget drops the compiled cache of an infrastructure that was deleted.
func (e *Engine) forget(id string) {
	e.cacheMu.Lock()
	delete(e.compiled, id)
	e.cacheMu.Unlock()
}

func newDesired(rec *store.InfraRecord, infra *descriptor.Infra, defs descriptor.NodeDefs) *desired {
	d := &desired{infraID: rec.ID, generation: rec.Generation, source: rec.Descriptor, infra: infra, defs: defs}
	seen := map[string]bool{}
	add := func(n *descriptor.Node) {
		if seen[n.Name] {
			return
		}
		seen[n.Name] = true
		d.nodes = append(d.nodes, nodeSpec{
			name:         n.Name,
			limits:       nodeLimits(n),
			dependsOn:    n.DependsOn,
			drainTimeout: n.Scaling.DrainTimeout,
		})
	}
	for _, level := range infra.Levels {
		for _, name := range level {
			if n, ok := infra.Node(name); ok {
				add(n)
			}
		}
	}
	for _, n := range infra.Nodes { // nodes missing from Levels (should not happen) still count
		add(n)
	}
	return d
}

// nodeLimits returns the node's effective limits; the descriptor package has already applied
// Occopus' rules, this only guards against impossible values.
func nodeLimits(n *descriptor.Node) limits {
	l := limits{min: max(n.Scaling.Min, 0), max: n.Scaling.Max}
	if l.max < l.min {
		l.max = l.min
	}
	return l
}

// node returns the descriptor node and its planning spec.
func (d *desired) node(name string) (*descriptor.Node, bool) {
	return d.infra.Node(name)
}
