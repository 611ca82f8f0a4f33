package engine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/cloud/sim"
	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/events"
	"github.com/skyfleet/skyfleet/internal/store"
	"github.com/skyfleet/skyfleet/internal/template"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		// Re-executed by the local-provider integration test as a node's process.
		serveHelper()
		return
	}
	goleak.VerifyTestMain(m)
}

// fakeClock is a settable clock for the engine and the sim.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// testLogger writes to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("SKYFLEET_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// harness is one store and one simulated cloud, shared by the engines a test starts one
// after the other (as a server restarting on the same data directory).
type harness struct {
	t     testing.TB
	dir   string
	st    store.Store
	sim   *sim.Sim
	clock *fakeClock
	hub   *events.Hub

	eng    *Engine
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t testing.TB, so sim.Options) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), clock: newFakeClock(), hub: events.NewHub()}
	if so.Clock == nil {
		so.Clock = h.clock.Now
	}
	if so.Seed == 0 {
		so.Seed = 42
	}
	h.sim = sim.New(so)
	h.openStore()
	t.Cleanup(func() {
		h.stop()
		if h.st != nil {
			h.st.Close()
		}
		h.hub.Close()
	})
	return h
}

func (h *harness) openStore() {
	st, err := store.Open(h.dir, store.Options{})
	if err != nil {
		h.t.Fatal(err)
	}
	h.st = st
}

// engineOpts are the options a test engine gets unless the test changes them.
func (h *harness) engineOpts(drivers map[string]cloud.Driver) Options {
	reg := cloud.NewRegistry()
	if drivers == nil {
		drivers = map[string]cloud.Driver{"sim": h.sim}
	}
	for name, d := range drivers {
		if err := reg.Register(name, d); err != nil {
			h.t.Fatal(err)
		}
	}
	h.reg = prometheus.NewRegistry()
	return Options{
		Store:        h.st,
		Providers:    reg,
		Hub:          h.hub,
		Renderer:     template.New(template.Options{}),
		Logger:       testLogger(h.t),
		Registerer:   h.reg,
		Clock:        h.clock.Now,
		Resync:       20 * time.Millisecond,
		RetryBackoff: 5 * time.Millisecond,
		PickImpl:     func(int) int { return 0 },
	}
}

// start runs a new engine with opts until stop.
func (h *harness) start(opts Options) *Engine {
	h.t.Helper()
	e, err := New(opts)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.eng, h.cancel, h.done = e, cancel, make(chan error, 1)
	go func() { h.done <- e.Run(ctx) }()
	return e
}

// stop stops the running engine, as a server shutting down (or crashing: nothing is
// flushed beyond what the engine stored already).
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("engine Run: %v", err)
	}
	h.cancel = nil
}

func (h *harness) importDefs(file string) {
	h.t.Helper()
	defs, _, err := descriptor.LoadNodeDefsFile(filepath.Join("testdata", file))
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.eng.ImportNodeDefs(context.Background(), defs, file); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) submit(id, file string) string {
	h.t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		h.t.Fatal(err)
	}
	id, _, err = h.eng.Submit(context.Background(), id, file, data)
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

func (h *harness) instances(infraID string) []*store.InstanceRecord {
	h.t.Helper()
	var out []*store.InstanceRecord
	err := h.st.View(context.Background(), func(tx store.Tx) error {
		var err error
		out, err = tx.Instances(infraID)
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *harness) infra(id string) *store.InfraRecord {
	h.t.Helper()
	var out *store.InfraRecord
	err := h.st.View(context.Background(), func(tx store.Tx) error {
		var err error
		out, err = tx.Infra(id)
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *harness) events(infraID string) []*store.Event {
	h.t.Helper()
	var out []*store.Event
	err := h.st.View(context.Background(), func(tx store.Tx) error {
		var err error
		out, err = tx.Events(infraID, 0, 0)
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *harness) archived(infraID string) []*store.InstanceRecord {
	h.t.Helper()
	var out []*store.InstanceRecord
	err := h.st.View(context.Background(), func(tx store.Tx) error {
		var err error
		out, err = tx.Archived(infraID)
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// count returns the node's instance records in one of states (all states when none given).
func count(rs []*store.InstanceRecord, node string, states ...store.InstanceState) int {
	n := 0
	for _, r := range rs {
		if r.Node == node && (len(states) == 0 || slices.Contains(states, r.State)) {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// converged reports whether the infrastructure has exactly want ready instances per node,
// nothing else, and the sim holds exactly those instances.
func (h *harness) converged(infraID string, want map[string]int) bool {
	rs := h.instances(infraID)
	total := 0
	for node, n := range want {
		if count(rs, node, store.StateReady) != n {
			return false
		}
		total += n
	}
	return len(rs) == total && h.sim.Count() == total
}

// checkNoDuplicates fails when the sim and the store disagree: every sim instance must be
// claimed by exactly one record, and every record's provider id must exist.
func (h *harness) checkNoDuplicates(infraIDs ...string) {
	h.t.Helper()
	byID := map[string]string{}
	for _, id := range infraIDs {
		for _, r := range h.instances(id) {
			if r.ProviderID == "" {
				h.t.Errorf("record %s/%s in state %s has no provider id", r.Node, r.NodeID, r.State)
				continue
			}
			if other, dup := byID[r.ProviderID]; dup {
				h.t.Errorf("provider instance %s claimed by %s and %s", r.ProviderID, other, r.NodeID)
			}
			byID[r.ProviderID] = r.NodeID
		}
	}
	for _, in := range h.sim.Instances() {
		if _, ok := byID[in.ID]; !ok {
			h.t.Errorf("sim instance %s (node id %s) is claimed by no record: orphan", in.ID, in.Tags[cloud.TagNodeID])
		}
	}
	if h.sim.Count() != len(byID) {
		h.t.Errorf("sim has %d instances, store has %d records", h.sim.Count(), len(byID))
	}
}

func eventTypes(evs []*store.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = fmt.Sprintf("%s:%s", e.Type, e.Node)
	}
	return out
}

func descriptorDefs(file string) (descriptor.NodeDefs, []descriptor.Warning, error) {
	return descriptor.LoadNodeDefsFile(filepath.Join("testdata", file))
}
