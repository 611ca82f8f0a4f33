package autoscale

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/store"
)

// StoreNodes is the NodeSource that reads nodes from the store: limits and policies from the
// stored descriptor, targets from the infrastructure record, ready and pending counts from
// the instance records.
type StoreNodes struct {
	Store store.Store

	mu    sync.Mutex
	cache map[string]parsed // by infra id
}

type parsed struct {
	generation int
	infra      *descriptor.Infra
}

var _ NodeSource = (*StoreNodes)(nil)

// NodeState implements NodeSource.
func (s *StoreNodes) NodeState(ctx context.Context, infraID, node string) (NodeState, error) {
	var ns NodeState
	err := s.Store.View(ctx, func(tx store.Tx) error {
		rec, err := tx.Infra(infraID)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("infrastructure %q does not exist: %w", infraID, ErrUnknown)
		}
		if err != nil {
			return err
		}
		if rec.Phase == store.InfraDestroying {
			return fmt.Errorf("infrastructure %q is being destroyed: %w", infraID, ErrUnknown)
		}
		in, err := s.parse(rec)
		if err != nil {
			return err
		}
		n, ok := in.Node(node)
		if !ok {
			return fmt.Errorf("node %q does not exist in infrastructure %q: %w", node, infraID, ErrUnknown)
		}
		insts, err := tx.Instances(infraID)
		if err != nil {
			return err
		}
		ns = NodeState{Min: n.Scaling.Min, Max: n.Scaling.Max, Step: n.Scaling.Step,
			ScaleOutCooldown: firstDur(n.Scaling.ScaleOutCooldown, n.Scaling.Cooldown),
			ScaleInCooldown:  firstDur(n.Scaling.ScaleInCooldown, n.Scaling.Cooldown)}
		ns.Target = n.Scaling.Min
		if t, ok := rec.Targets[node]; ok {
			ns.Target = max(min(t, ns.Max), ns.Min)
		}
		for _, r := range insts {
			if r.Node != node {
				continue
			}
			switch r.State {
			case store.StateReady:
				ns.Ready++
			case store.StateCreating, store.StatePending:
				ns.Pending++
			}
		}
		// Instances the target asks for that the engine has not started yet are pending too:
		// between a scaling request and the engine's next pass there is no record of them, and
		// a policy that saw none pending would step again before the previous step landed.
		if missing := ns.Target - ns.Ready - ns.Pending; missing > 0 {
			ns.Pending += missing
		}
		return nil
	})
	return ns, err
}

// TargetNodes implements NodeSource. `{{infra_id}}` and `{{infra_name}}` in a query are
// replaced by the infrastructure's id and name.
func (s *StoreNodes) TargetNodes(ctx context.Context) ([]TargetNode, error) {
	var out []TargetNode
	err := s.Store.View(ctx, func(tx store.Tx) error {
		recs, err := tx.Infras()
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if rec.Phase == store.InfraDestroying || rec.Phase == store.InfraDetached {
				continue
			}
			in, err := s.parse(rec)
			if err != nil {
				continue
			}
			for _, n := range in.Nodes {
				if n.Scaling.Target == nil {
					continue
				}
				p := *n.Scaling.Target
				p.Query = strings.NewReplacer("{{infra_id}}", rec.ID, "{{ infra_id }}", rec.ID,
					"{{infra_name}}", in.Name, "{{ infra_name }}", in.Name).Replace(p.Query)
				out = append(out, TargetNode{InfraID: rec.ID, Node: n.Name, Policy: p})
			}
		}
		return nil
	})
	return out, err
}

func (s *StoreNodes) parse(rec *store.InfraRecord) (*descriptor.Infra, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.cache[rec.ID]; ok && p.generation == rec.Generation {
		return p.infra, nil
	}
	in, _, err := descriptor.ParseInfra("infrastructure "+rec.ID, []byte(rec.Descriptor))
	if err != nil {
		return nil, fmt.Errorf("stored descriptor of %q: %w", rec.ID, err)
	}
	if s.cache == nil {
		s.cache = map[string]parsed{}
	}
	s.cache[rec.ID] = parsed{generation: rec.Generation, infra: in}
	return in, nil
}

func firstDur[T comparable](vals ...T) T {
	var zero T
	for _, v := range vals {
		if v != zero {
			return v
		}
	}
	return zero
}
