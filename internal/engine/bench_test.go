package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/cloud/sim"
	"github.com/skyfleet/skyfleet/internal/store"
)

// fixedInfra is a one-node descriptor with exactly n instances.
func fixedInfra(name string, n int) []byte {
	return fmt.Appendf(nil, "user_id: bench\ninfra_name: %s\nnodes:\n  - name: app\n    type: app\n    scaling: {min: %d, max: %d}\n", name, n, n)
}

// BenchmarkConverge1000 measures the time and memory to bring an infrastructure from
// nothing to 1,000 ready instances on sim with zero boot time (store on disk, fsync on).
func BenchmarkConverge1000(b *testing.B) {
	const n = 1000
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		h := newHarness(b, sim.Options{})
		opts := h.engineOpts(nil)
		opts.Resync = 50 * time.Millisecond
		opts.CreateConcurrency = 32
		h.start(opts)
		h.importDefs("sim_nodes.yaml")
		b.StartTimer()
		id, _, err := h.eng.Submit(context.Background(), "", "bench.yaml", fixedInfra("converge", n))
		if err != nil {
			b.Fatal(err)
		}
		waitFor(b, "1000 ready", func() bool { return h.infra(id).Phase == store.InfraReady })
		b.StopTimer()
		if c := h.sim.Count(); c != n {
			b.Fatalf("sim has %d instances, want %d", c, n)
		}
		h.stop()
		b.StartTimer()
	}
}

// BenchmarkSteadyStatePass measures one reconcile pass over every infrastructure when
// nothing needs doing: 100 infrastructures of 100 ready instances each (10,000 instances),
// each described once at the sim, no health checks. One op = one pass of all 100.
func BenchmarkSteadyStatePass(b *testing.B) {
	const infras, per = 100, 100
	h := newHarness(b, sim.Options{})
	opts := h.engineOpts(nil)
	opts.Resync = time.Nanosecond // every pass observes every instance (passes are called directly)
	e, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	h.eng = e
	h.importDefs("sim_nodes.yaml")
	ctx := context.Background()
	var loops []*infraLoop
	for i := range infras {
		id, _, err := e.Submit(ctx, fmt.Sprintf("infra-%03d", i), "bench.yaml", fixedInfra(fmt.Sprintf("steady-%d", i), per))
		if err != nil {
			b.Fatal(err)
		}
		recs := make([]*store.InstanceRecord, 0, per)
		for j := range per {
			nodeID := fmt.Sprintf("%s-node-%03d", id, j)
			pid, err := h.sim.Create(ctx, cloud.InstanceSpec{Token: nodeID, Resource: map[string]any{"type": "sim"},
				Tags: map[string]string{cloud.TagManaged: "1", cloud.TagInfraID: id, cloud.TagNode: "app", cloud.TagNodeID: nodeID}})
			if err != nil {
				b.Fatal(err)
			}
			in, err := h.sim.Describe(ctx, pid)
			if err != nil {
				b.Fatal(err)
			}
			recs = append(recs, &store.InstanceRecord{
				InfraID: id, Node: "app", NodeID: nodeID, State: store.StateReady, ResourceType: "sim",
				ProviderID: pid, Resource: map[string]any{"type": "sim"}, Addresses: in.Addresses,
				ResourceAddress: in.Addresses[0], Created: h.clock.Now(), Ready: h.clock.Now(),
			})
		}
		if err := h.st.Update(ctx, func(tx store.Tx) error {
			for _, r := range recs {
				if err := tx.PutInstance(r); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		loops = append(loops, newInfraLoop(e, id, func() {}))
	}
	pass := func() {
		for _, l := range loops {
			if _, err := l.pass(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	pass() // warm up: compile caches, bind providers, phase → ready
	describes := h.sim.Calls()[sim.OpDescribe]
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		pass()
	}
	b.StopTimer()
	if got := h.sim.Calls()[sim.OpDescribe] - describes; got%(infras*per) != 0 || got == 0 {
		b.Fatalf("%d describes, want a multiple of %d", got, infras*per)
	}
	if creates := h.sim.Calls()[sim.OpCreate]; creates != infras*per {
		b.Fatalf("steady state created instances: %d creates", creates-infras*per)
	}
	for _, l := range loops {
		if l.anyInFlight() {
			b.Fatal("a steady-state pass started provider calls")
		}
	}
}
