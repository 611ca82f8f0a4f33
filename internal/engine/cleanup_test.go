package engine

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/cloud/sim"
	"github.com/skyfleet/skyfleet/internal/store"
)

// cleaningDriver binds sim providers that can also clean up after an infrastructure
// (cloud.Cleaner, as the docker provider removes its networks), recording every call.
type cleaningDriver struct {
	sim *sim.Sim
	// failures is how many Cleanup calls fail (retryably) before they succeed; -1 fails all.
	failures int

	mu    sync.Mutex
	calls []cleanupCall
}

// cleanupCall is one Cleanup: for which infrastructure, and how many sim instances
// existed at that moment.
type cleanupCall struct {
	infraID   string
	instances int
}

func (d *cleaningDriver) Bind(resource map[string]any, creds *cloud.Credentials) (cloud.Provider, error) {
	p, err := d.sim.Bind(resource, creds)
	if err != nil {
		return nil, err
	}
	return &cleaningProvider{Provider: p, d: d}, nil
}

func (d *cleaningDriver) recorded() []cleanupCall {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]cleanupCall(nil), d.calls...)
}

type cleaningProvider struct {
	cloud.Provider
	d *cleaningDriver
}

func (p *cleaningProvider) Cleanup(_ context.Context, infraID string) error {
	p.d.mu.Lock()
	defer p.d.mu.Unlock()
	p.d.calls = append(p.d.calls, cleanupCall{infraID: infraID, instances: p.d.sim.Count()})
	if p.d.failures < 0 || len(p.d.calls) <= p.d.failures {
		return &cloud.RetryableError{Err: errors.New("engine busy")}
	}
	return nil
}

// TestDestroyCleansUpAfterTheLastInstance: destroying an infrastructure calls Cleanup of its
// providers once every instance is gone and before the record is deleted, only for that
// infrastructure; a failing clean-up is retried on later passes, and given up after
// maxCleanupFailures so that the infrastructure is still deleted.
func TestDestroyCleansUpAfterTheLastInstance(t *testing.T) {
	for _, tc := range []struct {
		name      string
		failures  int
		wantCalls int
	}{
		{"succeeds at once", 0, 1},
		{"retried after a failure", 1, 2},
		{"given up after repeated failures", -1, maxCleanupFailures},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, sim.Options{})
			drv := &cleaningDriver{sim: h.sim, failures: tc.failures}
			h.start(h.engineOpts(map[string]cloud.Driver{"sim": drv}))
			h.importDefs("sim_nodes.yaml")
			id := h.submit("", "app_only.yaml")
			other := h.submit("", "app_only.yaml")
			waitFor(t, "deployment", func() bool {
				return count(h.instances(id), "app", store.StateReady) == 2 && count(h.instances(other), "app", store.StateReady) == 2
			})
			if got := drv.recorded(); len(got) != 0 {
				t.Fatalf("Cleanup called before any destroy: %+v", got)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := h.eng.Destroy(ctx, id); err != nil {
				t.Fatal(err)
			}
			if err := h.eng.WaitGone(ctx, id); err != nil {
				t.Fatal(err)
			}
			got := drv.recorded()
			if len(got) != tc.wantCalls {
				t.Fatalf("Cleanup calls %+v, want %d", got, tc.wantCalls)
			}
			for _, c := range got {
				// The other infrastructure's 2 instances are all the sim holds.
				if c.infraID != id || c.instances != 2 {
					t.Errorf("Cleanup(%s) with %d sim instances; want Cleanup(%s) once only the other infrastructure's 2 are left", c.infraID, c.instances, id)
				}
			}
			if n := count(h.instances(other), "app", store.StateReady); n != 2 {
				t.Errorf("the other infrastructure has %d ready instances, want 2", n)
			}
		})
	}
}
