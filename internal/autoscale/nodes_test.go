package autoscale

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/store"
)

const nodesDescriptor = `user_id: u
infra_name: demo
nodes:
  - &app
    name: app
    type: app
    scaling: {min: 1, max: 10, step: 2, cooldown: 1m, scale_in_cooldown: 10m}
  - &lb
    name: lb
    type: lb
    scaling:
      min: 1
      max: 5
      target: {query: 'avg(cpu{infra_id="{{infra_id}}"})', value: 60, source: "http://127.0.0.1:9090"}
dependencies:
  - [*lb, *app]
`

func TestStoreNodes(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutInfra(&store.InfraRecord{ID: "inf", Descriptor: nodesDescriptor, Targets: map[string]int{"app": 4}, Phase: store.InfraBuilding}); err != nil {
			return err
		}
		for i, s := range []store.InstanceState{store.StateReady, store.StateReady, store.StatePending, store.StateCreating, store.StateDraining} {
			r := &store.InstanceRecord{InfraID: "inf", Node: "app", NodeID: string(rune('a' + i)), State: s, Created: time.Now()}
			if err := tx.PutInstance(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &StoreNodes{Store: st}
	ns, err := s.NodeState(ctx, "inf", "app")
	if err != nil {
		t.Fatal(err)
	}
	want := NodeState{Min: 1, Max: 10, Target: 4, Ready: 2, Pending: 2, Step: 2, ScaleOutCooldown: time.Minute, ScaleInCooldown: 10 * time.Minute}
	if ns != want {
		t.Fatalf("NodeState = %+v\nwant %+v", ns, want)
	}
	if _, err := s.NodeState(ctx, "inf", "db"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("unknown node: %v", err)
	}
	if _, err := s.NodeState(ctx, "nope", "app"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("unknown infra: %v", err)
	}
	tns, err := s.TargetNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tns) != 1 || tns[0].Node != "lb" || tns[0].Policy.Query != `avg(cpu{infra_id="inf"})` || tns[0].Policy.Value != 60 {
		t.Fatalf("TargetNodes = %+v", tns)
	}
}

// TestStoreNodesCountsUnstartedAsPending: instances the target asks for but the engine has not
// started yet count as pending, so a policy never steps again before the previous step landed.
func TestStoreNodesCountsUnstartedAsPending(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name        string
		target      int
		states      []store.InstanceState
		ready, pend int
	}{
		{"step requested, nothing started", 3, []store.InstanceState{store.StateReady}, 1, 2},
		{"one started, one not", 3, []store.InstanceState{store.StateReady, store.StateCreating}, 1, 2},
		{"all started", 2, []store.InstanceState{store.StateReady, store.StatePending}, 1, 1},
		{"failed instance awaiting replacement", 2, []store.InstanceState{store.StateReady, store.StateFailed}, 1, 1},
		{"at target", 2, []store.InstanceState{store.StateReady, store.StateReady}, 2, 0},
		{"scaling in, one draining", 1, []store.InstanceState{store.StateReady, store.StateDraining}, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, err := store.Open(t.TempDir(), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			err = st.Update(ctx, func(tx store.Tx) error {
				if err := tx.PutInfra(&store.InfraRecord{ID: "inf", Descriptor: nodesDescriptor, Targets: map[string]int{"app": tc.target}, Phase: store.InfraBuilding}); err != nil {
					return err
				}
				for i, s := range tc.states {
					if err := tx.PutInstance(&store.InstanceRecord{InfraID: "inf", Node: "app", NodeID: string(rune('a' + i)), State: s, Created: time.Now()}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			ns, err := (&StoreNodes{Store: st}).NodeState(ctx, "inf", "app")
			if err != nil {
				t.Fatal(err)
			}
			if ns.Ready != tc.ready || ns.Pending != tc.pend {
				t.Errorf("ready %d pending %d, want ready %d pending %d", ns.Ready, ns.Pending, tc.ready, tc.pend)
			}
		})
	}
}
