package engine

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/cloud/sim"
	"github.com/skyfleet/skyfleet/internal/health"
	"github.com/skyfleet/skyfleet/internal/store"
)

// TestCrashRecovery stops the engine at each step of a create and of a destroy, then starts
// a new engine on the same store and cloud: the end state must have exactly the target of
// instances, every one claimed by exactly one record, and no orphan.
func TestCrashRecovery(t *testing.T) {
	tests := []struct {
		name  string
		op    sim.Op
		phase sim.Phase
		// check inspects the state left behind by the stopped engine.
		check func(t *testing.T, h *harness, id string)
	}{
		{
			name: "create: intent stored, provider not called", op: sim.OpCreate, phase: sim.BeforeEffect,
			check: func(t *testing.T, h *harness, id string) {
				if n := count(h.instances(id), "app", store.StateCreating); n != 1 {
					t.Errorf("%d creating records, want 1", n)
				}
				if h.sim.Count() != len(h.instances(id))-1 {
					t.Errorf("sim has %d instances, records %d: the blocked create must not exist yet", h.sim.Count(), len(h.instances(id)))
				}
			},
		},
		{
			name: "create: provider created, record lacks the provider id", op: sim.OpCreate, phase: sim.AfterEffect,
			check: func(t *testing.T, h *harness, id string) {
				var stuck *store.InstanceRecord
				for _, r := range h.instances(id) {
					if r.State == store.StateCreating {
						stuck = r
					}
				}
				if stuck == nil || stuck.ProviderID != "" {
					t.Fatalf("want a creating record without provider id, got %+v", stuck)
				}
				found := false
				for _, in := range h.sim.Instances() {
					found = found || in.Tags[cloud.TagNodeID] == stuck.NodeID
				}
				if !found {
					t.Error("the cloud should hold the instance of the stuck record")
				}
			},
		},
		{
			name: "destroy: intent stored, provider not called", op: sim.OpDestroy, phase: sim.BeforeEffect,
			check: func(t *testing.T, h *harness, id string) {
				if n := count(h.instances(id), "app", store.StateDestroying); n != 1 {
					t.Errorf("%d destroying records, want 1", n)
				}
				if h.sim.Count() != 3 {
					t.Errorf("sim has %d instances, want 3 (the victim still exists)", h.sim.Count())
				}
			},
		},
		{
			name: "destroy: provider destroyed, record not deleted", op: sim.OpDestroy, phase: sim.AfterEffect,
			check: func(t *testing.T, h *harness, id string) {
				if n := count(h.instances(id), "app", store.StateDestroying); n != 1 {
					t.Errorf("%d destroying records, want 1", n)
				}
				if h.sim.Count() != 2 {
					t.Errorf("sim has %d instances, want 2 (the victim is gone)", h.sim.Count())
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, sim.Options{})
			h.start(h.engineOpts(nil))
			h.importDefs("sim_nodes.yaml")
			ctx := context.Background()
			var id string
			var block *sim.Block
			if tt.op == sim.OpCreate {
				block = h.sim.BlockNext(tt.op, tt.phase)
				id = h.submit("", "app_only.yaml")
			} else {
				id = h.submit("", "app_only.yaml")
				if _, err := h.eng.Scale(ctx, store.ScalingRequest{InfraID: id, Node: "app", Kind: store.ScaleTo, Count: 3}); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "three ready", func() bool { return h.converged(id, map[string]int{"app": 3}) })
				block = h.sim.BlockNext(tt.op, tt.phase)
				if _, err := h.eng.Scale(ctx, store.ScalingRequest{InfraID: id, Node: "app", Kind: store.ScaleDown}); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-block.Entered():
			case <-time.After(30 * time.Second):
				t.Fatal("the engine never reached the blocked call")
			}
			if tt.op == sim.OpCreate {
				// Let the unblocked sibling finish so only the blocked step is interrupted.
				waitFor(t, "the other instance recorded", func() bool {
					return count(h.instances(id), "app", store.StatePending, store.StateReady) == 1
				})
			}
			h.stop()
			tt.check(t, h, id)

			createsBefore := h.sim.Calls()[sim.OpCreate]
			h.start(h.engineOpts(nil))
			want := map[string]int{"app": 2}
			waitFor(t, "convergence after restart", func() bool { return h.converged(id, want) })
			h.checkNoDuplicates(id)
			if tt.op == sim.OpDestroy {
				if got := h.sim.Calls()[sim.OpCreate]; got != createsBefore {
					t.Errorf("the new engine created %d instances while recovering a destroy", got-createsBefore)
				}
			}
			// Stable: further passes change nothing.
			for range 3 {
				h.eng.wake(id)
				time.Sleep(30 * time.Millisecond)
			}
			if !h.converged(id, want) {
				t.Error("state changed after convergence")
			}
		})
	}
}

// TestCrashDuringInfrastructureDestroy stops the engine while an infrastructure is being
// destroyed; the next engine finishes the job.
func TestCrashDuringInfrastructureDestroy(t *testing.T) {
	h := newHarness(t, sim.Options{})
	h.start(h.engineOpts(nil))
	h.importDefs("sim_nodes.yaml")
	id := h.submit("", "two_level.yaml")
	waitFor(t, "deployment", func() bool { return h.converged(id, map[string]int{"app": 2, "lb": 1}) })
	block := h.sim.BlockNext(sim.OpDestroy, sim.BeforeEffect)
	ctx := context.Background()
	if err := h.eng.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	<-block.Entered()
	h.stop()
	if ph := h.infra(id).Phase; ph != store.InfraDestroying {
		t.Fatalf("phase after stop = %s, want destroying", ph)
	}
	h.start(h.engineOpts(nil))
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := h.eng.WaitGone(wctx, id); err != nil {
		t.Fatal(err)
	}
	if h.sim.Count() != 0 {
		t.Errorf("sim has %d instances after destroy", h.sim.Count())
	}
}

// TestRestartAdoptsAndCleansUp checks start-up reconciliation against what the provider
// lists: an instance whose record was lost is adopted while its node wants it, a surplus
// tagged instance of a known infrastructure is destroyed, and an instance of an unknown
// infrastructure is left alone unless DestroyUnknownOrphans is set.
func TestRestartAdoptsAndCleansUp(t *testing.T) {
	h := newHarness(t, sim.Options{})
	h.start(h.engineOpts(nil))
	h.importDefs("sim_nodes.yaml")
	id := h.submit("", "app_only.yaml")
	waitFor(t, "deployment", func() bool { return h.converged(id, map[string]int{"app": 2}) })
	h.stop()
	ctx := context.Background()

	// Lose one record, as a store restored from an older backup would.
	lost := h.instances(id)[0]
	if err := h.st.Update(ctx, func(tx store.Tx) error { return tx.DeleteInstance(id, lost.NodeID) }); err != nil {
		t.Fatal(err)
	}
	// A tagged instance of this infrastructure beyond its target, and one of another server's.
	surplus := createTagged(t, h.sim, id, "app", "surplus-node")
	foreign := createTagged(t, h.sim, "another-servers-infra", "app", "foreign-node")

	creates := h.sim.Calls()[sim.OpCreate]
	h.start(h.engineOpts(nil))
	waitFor(t, "adoption", func() bool {
		rs := h.instances(id)
		return len(rs) == 2 && count(rs, "app", store.StateReady) == 2 && h.sim.Count() == 3
	})
	if got := h.sim.Calls()[sim.OpCreate]; got != creates {
		t.Errorf("restart created %d instances instead of adopting", got-creates)
	}
	var adopted *store.InstanceRecord
	for _, r := range h.instances(id) {
		if r.NodeID == lost.NodeID {
			adopted = r
		}
	}
	if adopted == nil || adopted.ProviderID != lost.ProviderID {
		t.Fatalf("lost record not adopted: %+v", adopted)
	}
	types := eventTypes(h.events(id))
	if !slices.Contains(types, "nodeadopted:app") || !slices.Contains(types, "orphan_destroyed:app") {
		t.Errorf("events %v lack nodeadopted and orphan_destroyed", types)
	}
	ids := map[string]bool{}
	for _, in := range h.sim.Instances() {
		ids[in.ID] = true
	}
	if ids[surplus] || !ids[foreign] {
		t.Errorf("surplus exists %v (want destroyed), foreign exists %v (want kept)", ids[surplus], ids[foreign])
	}

	h.stop()
	opts := h.engineOpts(nil)
	opts.DestroyUnknownOrphans = true
	h.start(opts)
	waitFor(t, "foreign orphan destroyed", func() bool { return h.sim.Count() == 2 })
	h.checkNoDuplicates(id)
}

func createTagged(t *testing.T, s *sim.Sim, infraID, node, nodeID string) string {
	t.Helper()
	id, err := s.Create(context.Background(), cloud.InstanceSpec{
		Token: nodeID, InfraID: infraID, Node: node, Resource: map[string]any{"type": "sim"},
		Tags: map[string]string{cloud.TagManaged: "1", cloud.TagInfraID: infraID, cloud.TagNode: node, cloud.TagNodeID: nodeID},
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// switchPinger fails every ping while failing is set.
type switchPinger struct{ failing atomic.Bool }

func (p *switchPinger) Ping(_ context.Context, addr string) error {
	if p.failing.Load() {
		return errors.New("no reply")
	}
	return nil
}

func TestHealthCheckFailureReplacesInstance(t *testing.T) {
	h := newHarness(t, sim.Options{})
	opts := h.engineOpts(nil)
	pinger := &switchPinger{}
	pinger.failing.Store(true)
	opts.Checker = health.NewChecker(health.CheckerOptions{Pinger: pinger})
	h.start(opts)
	h.importDefs("sim_nodes.yaml")
	id := h.submit("", "app_only.yaml")

	waitFor(t, "running but unhealthy", func() bool {
		rs := h.instances(id)
		return count(rs, "app", store.StatePending) == 2 && !rs[0].FailingSince.IsZero() && !rs[1].FailingSince.IsZero()
	})
	first := h.instances(id)
	if first[0].Health == "" || first[0].Health == "ok" {
		t.Errorf("health detail %q, want the ping failure", first[0].Health)
	}
	h.clock.Advance(health.DefaultTimeout + time.Second)
	waitFor(t, "failed instances archived", func() bool { return len(h.archived(id)) == 2 })
	for _, a := range h.archived(id) {
		if a.State != store.StateFailed || !slices.ContainsFunc(first, func(r *store.InstanceRecord) bool { return r.NodeID == a.NodeID }) {
			t.Errorf("archived %+v", a)
		}
	}
	pinger.failing.Store(false)
	waitFor(t, "replacements ready", func() bool { return h.converged(id, map[string]int{"app": 2}) })
	for _, r := range h.instances(id) {
		if r.Health != "ok" || r.Ready.IsZero() {
			t.Errorf("replacement %s health %q ready %v", r.NodeID, r.Health, r.Ready)
		}
	}
}

// panicky wraps the sim and panics on the first Describe.
type panicky struct {
	*sim.Sim
	fired atomic.Bool
}

func (p *panicky) Bind(res map[string]any, c *cloud.Credentials) (cloud.Provider, error) {
	return p, nil
}

func (p *panicky) Describe(ctx context.Context, id string) (cloud.Instance, error) {
	if p.fired.CompareAndSwap(false, true) {
		panic("describe exploded")
	}
	return p.Sim.Describe(ctx, id)
}

func TestPanicsAreCountedAndTheLoopContinues(t *testing.T) {
	h := newHarness(t, sim.Options{})
	opts := h.engineOpts(map[string]cloud.Driver{"sim": &panicky{Sim: h.sim}})
	var credPanicked atomic.Bool
	opts.Credentials = func(map[string]any) (*cloud.Credentials, error) {
		if credPanicked.CompareAndSwap(false, true) {
			panic("credentials exploded")
		}
		return nil, nil
	}
	h.start(opts)
	h.importDefs("sim_nodes.yaml")
	id := h.submit("", "app_only.yaml")
	waitFor(t, "deployment despite panics", func() bool { return h.converged(id, map[string]int{"app": 2}) })
	if got := counterValue(t, h.reg, "skyfleet_reconcile_errors_total", nil); got < 2 {
		t.Errorf("skyfleet_reconcile_errors_total = %v, want at least 2 (one per panic)", got)
	}
}

func TestMetrics(t *testing.T) {
	h := newHarness(t, sim.Options{})
	h.start(h.engineOpts(nil))
	h.importDefs("sim_nodes.yaml")
	id := h.submit("", "app_only.yaml")
	waitFor(t, "deployment", func() bool { return h.converged(id, map[string]int{"app": 2}) })
	waitFor(t, "gauge", func() bool {
		return counterValue(t, h.reg, "skyfleet_instances", map[string]string{"infra_id": id, "node": "app", "state": "ready"}) == 2
	})
	if got := counterValue(t, h.reg, "skyfleet_provider_calls_total", map[string]string{"type": "sim", "op": "create", "outcome": "ok"}); got != 2 {
		t.Errorf("create calls = %v, want 2", got)
	}
	if got := counterValue(t, h.reg, "skyfleet_instances", map[string]string{"infra_id": id, "node": "app", "state": "pending"}); got != 0 {
		t.Errorf("stale pending gauge = %v, want removed", got)
	}
}

// counterValue returns the value of the series of name with labels (a subset match), 0
// when absent; for histograms it returns the sample count.
func counterValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			if !hasLabels(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		ok := false
		for _, lp := range m.Label {
			if lp.GetName() == k && lp.GetValue() == v {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
