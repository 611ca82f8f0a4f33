package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/cloud/sim"
	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/store"
)

func TestTwoLevelInfrastructureBecomesReadyInDependencyOrder(t *testing.T) {
	h := newHarness(t, sim.Options{BootTime: time.Hour})
	h.start(h.engineOpts(nil))
	h.importDefs("sim_nodes.yaml")
	id := h.submit("", "two_level.yaml")

	waitFor(t, "two app instances booting", func() bool {
		return count(h.instances(id), "app", store.StatePending) == 2
	})
	// While no app instance is ready, several passes run; none may create an lb.
	for range 5 {
		h.eng.wake(id)
		time.Sleep(30 * time.Millisecond)
		if n := count(h.instances(id), "lb"); n != 0 {
			t.Fatalf("lb has %d instances before any app instance is ready", n)
		}
	}
	if ph := h.infra(id).Phase; ph != store.InfraBuilding {
		t.Errorf("phase while booting = %s, want building", ph)
	}

	h.clock.Advance(time.Hour) // the app instances finish booting
	waitFor(t, "the lb instance booting", func() bool {
		return count(h.instances(id), "app", store.StateReady) == 2 && count(h.instances(id), "lb", store.StatePending) == 1
	})
	h.clock.Advance(time.Hour) // the lb instance finishes booting
	waitFor(t, "every node ready", func() bool {
		return h.converged(id, map[string]int{"app": 2, "lb": 1})
	})
	h.checkNoDuplicates(id)

	evs := h.events(id)
	firstAppReady, lbCreating := -1, -1
	for i, e := range evs {
		if e.Type == "nodecreated" && e.Node == "app" && firstAppReady < 0 {
			firstAppReady = i
		}
		if e.Type == "nodecreating" && e.Node == "lb" && lbCreating < 0 {
			lbCreating = i
		}
	}
	if firstAppReady < 0 || lbCreating < 0 || lbCreating < firstAppReady {
		t.Errorf("lb creation (event %d) must follow the first ready app (event %d): %v", lbCreating, firstAppReady, eventTypes(evs))
	}
	waitFor(t, "phase ready", func() bool { return h.infra(id).Phase == store.InfraReady })
	if n := countEvents(h.events(id), "infraready"); n != 1 {
		t.Errorf("infraready recorded %d times, want once", n)
	}
	// The lb's contextualisation saw both app addresses through getipall/getip.
	lb := h.instances(id)
	for _, r := range lb {
		if r.Node == "lb" && (r.Resource["type"] != "sim" || r.ProviderID == "") {
			t.Errorf("lb record %+v", r)
		}
	}
}

func countEvents(evs []*store.Event, typ string) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func TestScaleEndToEnd(t *testing.T) {
	h := newHarness(t, sim.Options{})
	h.start(h.engineOpts(nil))
	h.importDefs("sim_nodes.yaml")
	id := h.submit("", "app_only.yaml")
	waitFor(t, "initial deployment (min 2)", func() bool { return h.converged(id, map[string]int{"app": 2}) })
	ctx := context.Background()

	steps := []struct {
		name    string
		req     store.ScalingRequest
		applied bool
		reason  string
		target  int
	}{
		{"scaleup by two", store.ScalingRequest{Kind: store.ScaleUp, Count: 2}, true, "", 4},
		{"scaleup beyond max is clamped", store.ScalingRequest{Kind: store.ScaleUp, Count: 3}, true, "maximum count reached (5)", 5},
		{"scaleup at max is ignored", store.ScalingRequest{Kind: store.ScaleUp, Count: 1}, false, "maximum count reached (5)", 5},
		{"scaledown one", store.ScalingRequest{Kind: store.ScaleDown}, true, "", 4},
		{"scaleto below min is clamped", store.ScalingRequest{Kind: store.ScaleTo, Count: 0}, true, "minimum count reached (2)", 2},
		{"scaledown at min is ignored", store.ScalingRequest{Kind: store.ScaleDown}, false, "minimum count reached (2)", 2},
		{"scaleto three", store.ScalingRequest{Kind: store.ScaleTo, Count: 3}, true, "", 3},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			req := s.req
			req.InfraID, req.Node, req.Source = id, "app", "test"
			before := len(h.events(id))
			res, err := h.eng.Scale(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Applied != s.applied || res.Reason != s.reason || res.Target != s.target {
				t.Fatalf("Scale = %+v, want applied=%v reason=%q target=%d", res, s.applied, s.reason, s.target)
			}
			evs := h.events(id)[before:]
			wantType := "scaling_applied"
			if !s.applied {
				wantType = "scaling_ignored"
			}
			evs = slices.DeleteFunc(evs, func(e *store.Event) bool { return !strings.HasPrefix(e.Type, "scaling_") })
			if len(evs) != 1 || evs[0].Type != wantType || evs[0].Message != s.reason {
				t.Errorf("events after Scale = %v, want %s with reason %q first", eventTypes(evs), wantType, s.reason)
			}
			waitFor(t, "convergence", func() bool { return h.converged(id, map[string]int{"app": s.target}) })
			if got := h.infra(id).Targets["app"]; got != s.target {
				t.Errorf("stored target = %d, want %d", got, s.target)
			}
		})
	}
	h.checkNoDuplicates(id)

	if _, err := h.eng.Scale(ctx, store.ScalingRequest{InfraID: id, Node: "nope", Kind: store.ScaleUp}); !isNotFound(err, "node") {
		t.Errorf("Scale of unknown node: %v, want NotFoundError(node)", err)
	}
	if _, err := h.eng.Scale(ctx, store.ScalingRequest{InfraID: "nope", Node: "app", Kind: store.ScaleUp}); !isNotFound(err, "infrastructure") {
		t.Errorf("Scale of unknown infra: %v, want NotFoundError(infrastructure)", err)
	}
}

func isNotFound(err error, kind string) bool {
	var nf *NotFoundError
	return errors.As(err, &nf) && nf.Kind == kind
}

func TestScaleDownNamedVictim(t *testing.T) {
	h := newHarness(t, sim.Options{})
	h.start(h.engineOpts(nil))
	h.importDefs("sim_nodes.yaml")
	id := h.submit("", "app_only.yaml")
	ctx := context.Background()
	if _, err := h.eng.Scale(ctx, store.ScalingRequest{InfraID: id, Node: "app", Kind: store.ScaleTo, Count: 4}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "four app instances", func() bool { return h.converged(id, map[string]int{"app": 4}) })

	rs := h.instances(id)
	slices.SortFunc(rs, func(a, b *store.InstanceRecord) int { return strings.Compare(a.NodeID, b.NodeID) })
	byID, byIP := rs[0], rs[1]
	for _, tc := range []struct {
		name, ref string
		victim    *store.InstanceRecord
		target    int
	}{
		{"by node id", byID.NodeID, byID, 3},
		{"by address", byIP.Addresses[0], byIP, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := h.eng.Scale(ctx, store.ScalingRequest{InfraID: id, Node: "app", Kind: store.ScaleDown, Victim: tc.ref})
			if err != nil || !res.Applied || res.Target != tc.target {
				t.Fatalf("Scale = %+v, %v", res, err)
			}
			waitFor(t, "victim gone", func() bool { return h.converged(id, map[string]int{"app": tc.target}) })
			for _, r := range h.instances(id) {
				if r.NodeID == tc.victim.NodeID {
					t.Errorf("named victim %s still present", tc.victim.NodeID)
				}
			}
			for _, in := range h.sim.Instances() {
				if in.ID == tc.victim.ProviderID {
					t.Errorf("named victim's instance %s still exists", in.ID)
				}
			}
		})
	}
	res, err := h.eng.Scale(ctx, store.ScalingRequest{InfraID: id, Node: "app", Kind: store.ScaleDown, Victim: "10.99.99.99"})
	if err != nil || res.Applied || !strings.Contains(res.Reason, "10.99.99.99") {
		t.Errorf("unknown victim: %+v, %v; want ignored naming it", res, err)
	}
	// At min, even a known victim is refused.
	victim := h.instances(id)[0]
	res, err = h.eng.Scale(ctx, store.ScalingRequest{InfraID: id, Node: "app", Kind: store.ScaleDown, Victim: victim.NodeID})
	if err != nil || res.Applied || res.Reason != "minimum count reached (2)" {
		t.Errorf("victim at min: %+v, %v", res, err)
	}
	h.checkNoDuplicates(id)
}

func TestHealingReplacesKilledInstance(t *testing.T) {
	h := newHarness(t, sim.Options{})
	h.start(h.engineOpts(nil))
	h.importDefs("sim_nodes.yaml")
	id := h.submit("", "app_only.yaml")
	waitFor(t, "deployment", func() bool { return h.converged(id, map[string]int{"app": 2}) })

	victim := h.instances(id)[0]
	if !h.sim.Kill(victim.ProviderID) {
		t.Fatal("kill failed")
	}
	waitFor(t, "replacement", func() bool {
		if !h.converged(id, map[string]int{"app": 2}) {
			return false
		}
		for _, r := range h.instances(id) {
			if r.NodeID == victim.NodeID {
				return false
			}
		}
		return true
	})
	arch := h.archived(id)
	if len(arch) != 1 || arch[0].NodeID != victim.NodeID || arch[0].State != store.StateFailed {
		t.Errorf("archive = %+v, want the killed instance as failed", arch)
	}
	types := eventTypes(h.events(id))
	for _, want := range []string{"nodefailed:app", "nodedropping:app", "nodedropped:app"} {
		if !slices.Contains(types, want) {
			t.Errorf("events %v lack %s", types, want)
		}
	}
	h.checkNoDuplicates(id)
}

func TestStoppedInstanceIsTempFailedAndKept(t *testing.T) {
	h := newHarness(t, sim.Options{})
	h.start(h.engineOpts(nil))
	h.importDefs("sim_nodes.yaml")
	id := h.submit("", "app_only.yaml")
	waitFor(t, "deployment", func() bool { return h.converged(id, map[string]int{"app": 2}) })
	victim := h.instances(id)[0]
	if err := h.sim.SetState(victim.ProviderID, "stopped"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "temp_failed", func() bool { return count(h.instances(id), "app", store.StateTempFailed) == 1 })
	// Several passes later it is still there, still counted: no replacement.
	for range 5 {
		h.eng.wake(id)
		time.Sleep(30 * time.Millisecond)
	}
	if rs := h.instances(id); len(rs) != 2 || h.sim.Count() != 2 {
		t.Errorf("records %d, sim %d; want the stopped instance kept and not replaced", len(rs), h.sim.Count())
	}
}

func TestAPIErrorsAndLatencyStillConverge(t *testing.T) {
	h := newHarness(t, sim.Options{APIErrorRate: 0.3, Latency: 2 * time.Millisecond, LoseResponseRate: 0.2, Seed: 7})
	h.start(h.engineOpts(nil))
	h.importDefs("sim_nodes.yaml")
	id := h.submit("", "two_level.yaml")
	ctx := context.Background()
	waitFor(t, "deployment", func() bool { return h.converged(id, map[string]int{"app": 2, "lb": 1}) })
	for _, req := range []store.ScalingRequest{
		{InfraID: id, Node: "app", Kind: store.ScaleTo, Count: 5},
		{InfraID: id, Node: "lb", Kind: store.ScaleUp, Count: 2},
	} {
		if _, err := h.eng.Scale(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "scaled", func() bool { return h.converged(id, map[string]int{"app": 5, "lb": 3}) })
	h.checkNoDuplicates(id)
	if _, err := h.eng.Scale(ctx, store.ScalingRequest{InfraID: id, Node: "app", Kind: store.ScaleTo, Count: 2}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "scaled in", func() bool { return h.converged(id, map[string]int{"app": 2, "lb": 3}) })
	h.checkNoDuplicates(id)
	// The faults were real: some calls failed transiently and were retried.
	retried := counterValue(t, h.reg, "skyfleet_provider_calls_total", map[string]string{"op": "create", "outcome": "retryable"}) +
		counterValue(t, h.reg, "skyfleet_provider_calls_total", map[string]string{"op": "describe", "outcome": "retryable"})
	if retried == 0 {
		t.Error("no retryable provider errors were seen; the fault injection did not happen")
	}
}

func TestDestroyInfrastructure(t *testing.T) {
	h := newHarness(t, sim.Options{})
	h.start(h.engineOpts(nil))
	h.importDefs("sim_nodes.yaml")
	id := h.submit("", "two_level.yaml")
	other := h.submit("", "app_only.yaml")
	waitFor(t, "deployment", func() bool {
		return len(h.instances(id)) == 3 && count(h.instances(other), "app", store.StateReady) == 2
	})
	waitFor(t, "ready", func() bool { return count(h.instances(id), "lb", store.StateReady) == 1 })
	ch, cancel := h.hub.Subscribe(id, 1024)
	defer cancel()
	ctx, done := context.WithTimeout(context.Background(), 30*time.Second)
	defer done()
	if err := h.eng.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := h.eng.WaitGone(ctx, id); err != nil {
		t.Fatal(err)
	}
	if h.sim.Count() != 2 {
		t.Errorf("sim has %d instances after destroying one infrastructure, want the other's 2", h.sim.Count())
	}
	var sawDrop bool
	for ev := range ch {
		if ev.Type == "infradrop" && ev.Message == "infrastructure deleted" {
			sawDrop = true
			break
		}
	}
	if !sawDrop {
		t.Error("no infradrop published")
	}
	if err := h.eng.Destroy(ctx, id); !isNotFound(err, "infrastructure") {
		t.Errorf("Destroy of a gone infrastructure: %v", err)
	}
	h.checkNoDuplicates(other)
}

func TestResubmitDropsRemovedNodes(t *testing.T) {
	h := newHarness(t, sim.Options{})
	h.start(h.engineOpts(nil))
	h.importDefs("sim_nodes.yaml")
	id := h.submit("", "two_level.yaml")
	waitFor(t, "deployment", func() bool { return h.converged(id, map[string]int{"app": 2, "lb": 1}) })
	if got := h.submit(id, "app_only.yaml"); got != id {
		t.Fatalf("resubmit returned id %s, want %s", got, id)
	}
	waitFor(t, "lb dropped", func() bool { return h.converged(id, map[string]int{"app": 2}) })
	rec := h.infra(id)
	if rec.Generation != 2 {
		t.Errorf("generation = %d, want 2", rec.Generation)
	}
	if !slices.Contains(eventTypes(h.events(id)), "infraupdated:") {
		t.Errorf("no infraupdated event: %v", eventTypes(h.events(id)))
	}
}

func TestSubmitUnknownNodeTypeIsPositioned(t *testing.T) {
	h := newHarness(t, sim.Options{})
	h.start(h.engineOpts(nil))
	_, _, err := h.eng.Submit(context.Background(), "", "infra.yaml", []byte("user_id: u\ninfra_name: x\nnodes:\n  - name: a\n    type: missing\n"))
	if err == nil || !strings.Contains(err.Error(), "infra.yaml:5") || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Submit with unknown type: %v, want an error positioned at infra.yaml:5", err)
	}
}

func TestDrainBeforeDestroy(t *testing.T) {
	h := newHarness(t, sim.Options{})
	opts := h.engineOpts(nil)
	released := make(chan string, 1)
	opts.DrainDone = func(_, nodeID string) bool {
		select {
		case id := <-released:
			released <- id
			return id == nodeID
		default:
			return false
		}
	}
	h.start(opts)
	h.importDefs("sim_nodes.yaml")
	id := h.submit("", "draining.yaml")
	ctx := context.Background()
	if _, err := h.eng.Scale(ctx, store.ScalingRequest{InfraID: id, Node: "app", Kind: store.ScaleTo, Count: 3}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "three ready", func() bool { return h.converged(id, map[string]int{"app": 3}) })

	// Scale-in by one: the newest ready instance drains until its deadline.
	if _, err := h.eng.Scale(ctx, store.ScalingRequest{InfraID: id, Node: "app", Kind: store.ScaleDown}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "one draining", func() bool { return count(h.instances(id), "app", store.StateDraining) == 1 })
	for range 5 {
		h.eng.wake(id)
		time.Sleep(30 * time.Millisecond)
	}
	if n := count(h.instances(id), "app", store.StateDraining); n != 1 || h.sim.Count() != 3 {
		t.Fatalf("draining %d, sim %d before the deadline; want the victim still running", n, h.sim.Count())
	}
	h.clock.Advance(time.Minute)
	waitFor(t, "drained at deadline", func() bool { return h.converged(id, map[string]int{"app": 2}) })

	// Scale-in again: DrainDone ends the drain early.
	if _, err := h.eng.Scale(ctx, store.ScalingRequest{InfraID: id, Node: "app", Kind: store.ScaleDown}); err != nil {
		t.Fatal(err)
	}
	var draining *store.InstanceRecord
	waitFor(t, "one draining", func() bool {
		for _, r := range h.instances(id) {
			if r.State == store.StateDraining {
				draining = r
				return true
			}
		}
		return false
	})
	released <- draining.NodeID
	waitFor(t, "drain ended early", func() bool { return h.converged(id, map[string]int{"app": 1}) })
	if !slices.Contains(eventTypes(h.events(id)), "nodedraining:app") {
		t.Error("no nodedraining event")
	}
}

func TestAttachDetach(t *testing.T) {
	h := newHarness(t, sim.Options{})
	h.start(h.engineOpts(nil))
	h.importDefs("sim_nodes.yaml")
	id := h.submit("", "app_only.yaml")
	ctx := context.Background()
	waitFor(t, "deployment", func() bool { return h.converged(id, map[string]int{"app": 2}) })
	if !h.eng.Maintained(id) {
		t.Fatal("not maintained after submit")
	}
	if err := h.eng.Attach(ctx, id); !errors.Is(err, ErrAlreadyAttached) {
		t.Errorf("Attach of attached: %v", err)
	}
	if err := h.eng.Detach(ctx, id); err != nil {
		t.Fatal(err)
	}
	if h.eng.Maintained(id) || h.infra(id).Phase != store.InfraDetached {
		t.Fatalf("after Detach: maintained %v phase %s", h.eng.Maintained(id), h.infra(id).Phase)
	}
	if err := h.eng.Detach(ctx, id); !errors.Is(err, ErrNotAttached) {
		t.Errorf("Detach of detached: %v", err)
	}
	// A detached infrastructure is not healed.
	victim := h.instances(id)[0]
	h.sim.Kill(victim.ProviderID)
	time.Sleep(100 * time.Millisecond)
	if rs := h.instances(id); len(rs) != 2 || rs[0].State != store.StateReady {
		t.Fatalf("detached infrastructure changed: %+v", rs)
	}
	// Restart: the detachment is stored, so it stays detached.
	h.stop()
	h.start(h.engineOpts(nil))
	time.Sleep(100 * time.Millisecond)
	if h.eng.Maintained(id) {
		t.Error("detached infrastructure maintained after restart")
	}
	if err := h.eng.Attach(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "healed after attach", func() bool { return h.converged(id, map[string]int{"app": 2}) })
	if err := h.eng.Attach(ctx, "nope"); !isNotFound(err, "infrastructure") {
		t.Errorf("Attach unknown: %v", err)
	}
	if err := h.eng.Detach(ctx, "nope"); !isNotFound(err, "infrastructure") {
		t.Errorf("Detach unknown: %v", err)
	}
}

func TestRenderErrorIsReportedAndRetried(t *testing.T) {
	h := newHarness(t, sim.Options{BootTime: time.Hour})
	h.start(h.engineOpts(nil))
	h.importDefs("sim_nodes.yaml")
	// lb uses getip('app') but does not depend on app: its first rendering finds no app
	// instance with an address, which is an error event, not a failed instance.
	id := h.submit("", "no_deps.yaml")
	waitFor(t, "lb created once app has an address", func() bool { return count(h.instances(id), "lb") == 1 })
	var renderErr *store.Event
	for _, e := range h.events(id) {
		if e.Type == "error" && e.Node == "lb" {
			renderErr = e
			break
		}
	}
	if renderErr == nil || !strings.Contains(renderErr.Message, "getip") {
		t.Fatalf("want an error event naming getip for lb, got %v", eventTypes(h.events(id)))
	}
	if n := len(h.archived(id)); n != 0 {
		t.Errorf("%d instances archived; a render error must not create or fail instances", n)
	}
}

func TestInstanceStuckPendingIsReplaced(t *testing.T) {
	h := newHarness(t, sim.Options{BootTime: 24 * time.Hour})
	h.start(h.engineOpts(nil))
	h.importDefs("sim_nodes.yaml")
	id := h.submit("", "app_only.yaml")
	waitFor(t, "two pending", func() bool { return count(h.instances(id), "app", store.StatePending) == 2 })
	first := h.instances(id)
	h.clock.Advance(DefaultHealthTimeout + time.Second)
	waitFor(t, "stuck instances archived", func() bool { return len(h.archived(id)) == 2 })
	for _, a := range h.archived(id) {
		if !strings.Contains(a.Detail, "still pending") {
			t.Errorf("archived %s with detail %q", a.NodeID, a.Detail)
		}
	}
	waitFor(t, "replacements pending", func() bool {
		rs := h.instances(id)
		return count(rs, "app", store.StatePending) == 2 && !slices.ContainsFunc(rs, func(r *store.InstanceRecord) bool {
			return r.NodeID == first[0].NodeID || r.NodeID == first[1].NodeID
		})
	})
	waitFor(t, "stuck instances destroyed", func() bool { return h.sim.Count() == 2 })
	h.checkNoDuplicates(id)
}

func TestResubmitWithLowerMaxClampsTarget(t *testing.T) {
	h := newHarness(t, sim.Options{})
	h.start(h.engineOpts(nil))
	defs, _, err := descriptorDefs("sim_nodes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	names, err := h.eng.ImportNodeDefs(context.Background(), defs, "sim_nodes.yaml")
	if err != nil || !slices.Equal(names, []string{"app", "lb"}) {
		t.Fatalf("ImportNodeDefs = %v, %v; want [app lb]", names, err)
	}
	// An id that does not exist yet is taken as given.
	id := h.submit("my-infra", "app_only.yaml")
	if id != "my-infra" {
		t.Fatalf("id = %q", id)
	}
	if _, err := h.eng.Scale(context.Background(), store.ScalingRequest{InfraID: id, Node: "app", Kind: store.ScaleTo, Count: 5}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "five", func() bool { return h.converged(id, map[string]int{"app": 5}) })
	h.submit(id, "app_small.yaml")
	waitFor(t, "clamped to the new max", func() bool { return h.converged(id, map[string]int{"app": 2}) })
	res, err := h.eng.Scale(context.Background(), store.ScalingRequest{InfraID: id, Node: "app", Kind: store.ScaleUp})
	if err != nil || res.Applied || res.From != 2 || res.Reason != "maximum count reached (2)" {
		t.Errorf("scaleup after lowering max: %+v, %v", res, err)
	}
}

func TestDestroyDrainsFirst(t *testing.T) {
	h := newHarness(t, sim.Options{})
	h.start(h.engineOpts(nil))
	h.importDefs("sim_nodes.yaml")
	id := h.submit("", "draining.yaml")
	waitFor(t, "deployment", func() bool { return h.converged(id, map[string]int{"app": 1}) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.eng.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "draining", func() bool { return count(h.instances(id), "app", store.StateDraining) == 1 })
	for range 5 {
		h.eng.wake(id)
		time.Sleep(30 * time.Millisecond)
	}
	if h.sim.Count() != 1 {
		t.Fatal("instance destroyed before its drain deadline")
	}
	h.clock.Advance(time.Minute)
	if err := h.eng.WaitGone(ctx, id); err != nil {
		t.Fatal(err)
	}
	if h.sim.Count() != 0 {
		t.Errorf("sim has %d instances", h.sim.Count())
	}
}

func TestSubmitUnsupportedResourceTypeIsRefused(t *testing.T) {
	h := newHarness(t, sim.Options{})
	h.start(h.engineOpts(nil))
	ctx := context.Background()
	defs, _, err := descriptor.ParseNodeDefs("nodes.yaml", []byte(`'node_def:vm':
  - resource: {type: azure_vm, endpoint: e, resource_group: g, location: l, vm_size: s, publisher: p, offer: o, sku: k, version: v, username: u, password: pw}
'node_def:both':
  - resource: {type: azure_vm, endpoint: e, resource_group: g, location: l, vm_size: s, publisher: p, offer: o, sku: k, version: v, username: u, password: pw}
  - resource: {type: sim}
`), descriptor.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.ImportNodeDefs(ctx, defs, "nodes.yaml"); err != nil {
		t.Fatal(err)
	}
	_, _, err = h.eng.Submit(ctx, "", "infra.yaml", []byte("user_id: u\ninfra_name: x\nnodes:\n  - name: a\n    type: vm\n"))
	if err == nil || !strings.Contains(err.Error(), `infra.yaml:5:11: nodes[0].type: node "a" cannot be built: resource type "azure_vm" is recognised but skyfleet does not support it yet (supported: sim)`) {
		t.Fatalf("Submit: %v", err)
	}
	var n int
	_ = h.st.View(ctx, func(tx store.Tx) error { recs, _ := tx.Infras(); n = len(recs); return nil })
	if n != 0 {
		t.Fatalf("a refused descriptor was stored (%d infrastructures)", n)
	}
	// A node type with a supported implementation besides the unsupported one is accepted.
	if _, _, err := h.eng.Submit(ctx, "", "infra.yaml", []byte("user_id: u\ninfra_name: y\nnodes:\n  - name: b\n    type: both\n    filter: {type: sim}\n")); err != nil {
		t.Fatalf("Submit with a supported implementation: %v", err)
	}
}
