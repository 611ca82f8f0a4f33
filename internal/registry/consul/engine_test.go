package consul

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/cloud/sim"
	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/engine"
	"github.com/skyfleet/skyfleet/internal/store"
	"github.com/skyfleet/skyfleet/internal/template"
)

const engineNodeDefs = `'node_def:da':
  - resource:
      type: sim
`

const engineDescriptor = `user_id: tester
infra_name: dataavenue
nodes:
  - name: da
    type: da
    scaling: {min: 1, max: 4, drain_timeout: 1s}
`

// TestFollowsTheEngine runs the real engine on the simulated cloud and checks that the
// agent's services follow it through build, scale-out, scale-in and destruction.
func TestFollowsTheEngine(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	providers := cloud.NewRegistry()
	if err := providers.Register("sim", sim.New(sim.Options{Seed: 1})); err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Options{Store: f.st, Providers: providers, Hub: f.hub, Renderer: template.New(template.Options{}),
		Resync: 20 * time.Millisecond, RetryBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	engDone := make(chan error, 1)
	go func() { engDone <- eng.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-engDone; err != nil {
			t.Errorf("engine: %v", err)
		}
	}()
	f.start(nil)

	defs, _, err := descriptor.ParseNodeDefs("nodes.yaml", []byte(engineNodeDefs), descriptor.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.ImportNodeDefs(ctx, defs, "nodes.yaml"); err != nil {
		t.Fatal(err)
	}
	id, _, err := eng.Submit(ctx, "", "infra.yaml", []byte(engineDescriptor))
	if err != nil {
		t.Fatal(err)
	}

	// waitCount waits until the agent holds n services of the infrastructure, all da_cluster.
	waitCount := func(what string, n int) {
		t.Helper()
		f.waitFor(what, func() bool {
			svcs, _ := f.agent.snapshot()
			got := 0
			for _, s := range svcs {
				if s.Meta["infra_id"] == id && s.Name == "da_cluster" {
					got++
				}
			}
			return got == n && len(svcs) == n
		})
	}
	waitCount("the build's instance", 1)
	scale := func(n int) {
		t.Helper()
		if _, err := eng.Scale(ctx, store.ScalingRequest{InfraID: id, Node: "da", Kind: store.ScaleTo, Count: n, Source: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	scale(4)
	waitCount("scale-out to four", 4)
	scale(2)
	waitCount("scale-in to two", 2)
	if err := eng.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitCount("destruction", 0)
	// One listing, four registrations, four deregistrations; a little slack for an instance
	// whose address the engine learns after it became ready, but no churn.
	if n := len(f.agent.requestLog()); n > 12 {
		t.Errorf("%d requests to the agent; want about 9 (no churn):\n%v", n, fmt.Sprint(f.agent.requestLog()))
	}
}
