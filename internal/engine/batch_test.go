package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/skyfleet/skyfleet/internal/cloud/sim"
	"github.com/skyfleet/skyfleet/internal/store"
)

func TestGroupCommitWritesEveryChangeAndIsolatesFailures(t *testing.T) {
	h := newHarness(t, sim.Options{})
	e, err := New(h.engineOpts(nil))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := h.st.Update(ctx, func(tx store.Tx) error {
		return tx.PutInfra(&store.InfraRecord{ID: "g", Phase: store.InfraBuilding})
	}); err != nil {
		t.Fatal(err)
	}
	g := &groupCommit{e: e}
	const n = 50
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.do(ctx, func(tx store.Tx, ev *eventBuf) error {
				if i%10 == 3 {
					return errors.New("bad change")
				}
				return tx.PutInstance(&store.InstanceRecord{InfraID: "g", Node: "app", NodeID: fmt.Sprintf("n%02d", i), State: store.StatePending})
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (i%10 == 3) != (err != nil) {
			t.Errorf("change %d: err %v", i, err)
		}
	}
	if got := len(h.instances("g")); got != n-n/10 {
		t.Errorf("%d records written, want %d", got, n-n/10)
	}
}
