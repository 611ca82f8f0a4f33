package registry

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/skyfleet/skyfleet/internal/events"
	"github.com/skyfleet/skyfleet/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testDescriptor = `user_id: someone@example.com
infra_name: dataavenue
variables:
  metrics_port: 9200
nodes:
  - &DA
    name: da
    type: da
    scaling: {min: 1, max: 10}
  - &LB
    name: lb
    type: lb
    variables:
      metrics_port: "9101"
  - name: db
    type: db
    variables:
      metrics_port: 0
dependencies:
  - connection: [*LB, *DA]
`

// fixture is a store with one infrastructure, a hub, and a registry over both.
type fixture struct {
	t   *testing.T
	st  store.Store
	hub *events.Hub
	reg *Registry
	mu  sync.Mutex
	now time.Time
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f := &fixture{t: t, st: st, hub: events.NewHub(), now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	t.Cleanup(f.hub.Close)
	opts.Store = st
	if opts.Hub == nil {
		opts.Hub = f.hub
	}
	opts.Clock = f.clock
	if opts.Resync == 0 {
		opts.Resync = time.Hour // events only, unless a test asks for resync
	}
	f.reg, err = New(opts)
	if err != nil {
		t.Fatalf("new registry: %v", err)
	}
	f.update(func(tx store.Tx) error {
		return tx.PutInfra(&store.InfraRecord{ID: "inf1", Descriptor: testDescriptor, Targets: map[string]int{}})
	})
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func (f *fixture) update(fn func(tx store.Tx) error) {
	f.t.Helper()
	if err := f.st.Update(context.Background(), fn); err != nil {
		f.t.Fatalf("store update: %v", err)
	}
}

// set writes an instance and an event about it, then publishes the event, as the engine does.
func (f *fixture) set(node, nodeID string, state store.InstanceState, addrs ...string) {
	f.t.Helper()
	ev := &store.Event{InfraID: "inf1", Type: "node" + string(state), Node: node, NodeID: nodeID}
	f.update(func(tx store.Tx) error {
		if err := tx.PutInstance(&store.InstanceRecord{InfraID: "inf1", Node: node, NodeID: nodeID, State: state, Addresses: addrs}); err != nil {
			return err
		}
		return tx.AddEvent(ev)
	})
	f.hub.Publish(*ev)
}

func (f *fixture) remove(nodeID string) {
	f.t.Helper()
	ev := &store.Event{InfraID: "inf1", Type: "nodedropped", NodeID: nodeID}
	f.update(func(tx store.Tx) error {
		if err := tx.DeleteInstance("inf1", nodeID); err != nil {
			return err
		}
		return tx.AddEvent(ev)
	})
	f.hub.Publish(*ev)
}

func ids(s Snapshot) []string {
	out := []string{}
	for _, e := range s.Endpoints {
		out = append(out, e.NodeID)
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEndpointsListsOnlyReadyInstances(t *testing.T) {
	f := newFixture(t, Options{})
	f.set("da", "n3", store.StateReady, "127.0.0.3", "10.0.0.3")
	f.set("da", "n1", store.StateReady, "127.0.0.1")
	f.set("da", "n2", store.StateDraining, "127.0.0.2")
	f.set("da", "n4", store.StatePending, "127.0.0.4")
	f.set("da", "n5", store.StateFailed, "127.0.0.5")
	f.set("lb", "l1", store.StateReady, "127.0.1.1")

	tests := []struct {
		name, infra, node string
		want              []string
		wantErr           string
	}{
		{name: "ready instances of the node, sorted", infra: "inf1", node: "da", want: []string{"n1", "n3"}},
		{name: "another node", infra: "inf1", node: "lb", want: []string{"l1"}},
		{name: "node of the descriptor without instances", infra: "inf1", node: "db", want: []string{}},
		{name: "unknown node", infra: "inf1", node: "nope", wantErr: `node "nope" of infrastructure "inf1": not found`},
		{name: "unknown infrastructure", infra: "nope", node: "da", wantErr: `infrastructure "nope": not found`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snap, err := f.reg.Endpoints(context.Background(), tc.infra, tc.node)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr || !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("err = %v, want %q matching store.ErrNotFound", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Endpoints: %v", err)
			}
			if got := ids(snap); !equal(got, tc.want) {
				t.Fatalf("endpoints = %v, want %v", got, tc.want)
			}
			if snap.InfraID != tc.infra || snap.Node != tc.node || snap.Revision == 0 {
				t.Fatalf("snapshot header = %q %q rev %d", snap.InfraID, snap.Node, snap.Revision)
			}
		})
	}

	snap, _ := f.reg.Endpoints(context.Background(), "inf1", "da")
	if e := snap.Endpoints[1]; e.Address != "127.0.0.3" || len(e.Addresses) != 2 || e.State != "ready" {
		t.Fatalf("endpoint n3 = %+v, want primary 127.0.0.3 of two addresses, state ready", e)
	}
}

func TestRevisionChangesOnlyWithTheSet(t *testing.T) {
	f := newFixture(t, Options{})
	f.set("da", "n1", store.StateReady, "127.0.0.1")
	ctx := context.Background()
	s1, _ := f.reg.Endpoints(ctx, "inf1", "da")
	f.set("lb", "l1", store.StateReady, "127.0.1.1") // another node: da's set is unchanged
	s2, _ := f.reg.Endpoints(ctx, "inf1", "da")
	if s2.Revision != s1.Revision {
		t.Fatalf("revision moved from %d to %d without a change to da", s1.Revision, s2.Revision)
	}
	f.set("da", "n1", store.StateDraining, "127.0.0.1")
	s3, _ := f.reg.Endpoints(ctx, "inf1", "da")
	if s3.Revision <= s2.Revision || len(s3.Endpoints) != 0 {
		t.Fatalf("after draining: rev %d (was %d), endpoints %v", s3.Revision, s2.Revision, ids(s3))
	}
}

func recv(t *testing.T, ch <-chan Snapshot) Snapshot {
	t.Helper()
	select {
	case s, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no snapshot within 10s")
	}
	return Snapshot{}
}

func TestWatchFollowsChanges(t *testing.T) {
	f := newFixture(t, Options{})
	f.set("da", "n1", store.StateReady, "127.0.0.1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := f.reg.Watch(ctx, "inf1", "da")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	prev := recv(t, ch)
	if !equal(ids(prev), []string{"n1"}) {
		t.Fatalf("first snapshot = %v, want [n1]", ids(prev))
	}
	steps := []struct {
		name   string
		change func()
		want   []string
	}{
		{"instance becomes ready", func() { f.set("da", "n2", store.StateReady, "127.0.0.2") }, []string{"n1", "n2"}},
		{"instance drains", func() { f.set("da", "n1", store.StateDraining, "127.0.0.1") }, []string{"n2"}},
		{"pending instance stays out", func() {
			f.set("da", "n3", store.StatePending, "127.0.0.3")
			f.set("da", "n4", store.StateReady, "127.0.0.4")
		}, []string{"n2", "n4"}},
		{"instance dropped", func() { f.remove("n2") }, []string{"n4"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.change()
			s := recv(t, ch)
			for !equal(ids(s), st.want) { // a burst may show an intermediate set first
				if s.Revision <= prev.Revision {
					t.Fatalf("revision %d did not increase over %d", s.Revision, prev.Revision)
				}
				prev = s
				s = recv(t, ch)
			}
			if s.Revision <= prev.Revision {
				t.Fatalf("revision %d did not increase over %d", s.Revision, prev.Revision)
			}
			prev = s
		})
	}
}

func TestWatchResyncCatchesUnannouncedChanges(t *testing.T) {
	f := newFixture(t, Options{Resync: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := f.reg.Watch(ctx, "inf1", "da")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if s := recv(t, ch); len(s.Endpoints) != 0 {
		t.Fatalf("first snapshot = %v, want none", ids(s))
	}
	// Written to the store without any hub event.
	f.update(func(tx store.Tx) error {
		return tx.PutInstance(&store.InstanceRecord{InfraID: "inf1", Node: "da", NodeID: "n1", State: store.StateReady, Addresses: []string{"127.0.0.1"}})
	})
	if s := recv(t, ch); !equal(ids(s), []string{"n1"}) {
		t.Fatalf("after resync = %v, want [n1]", ids(s))
	}
}

func TestWatchEndsWithEmptySnapshotWhenInfraIsDeleted(t *testing.T) {
	f := newFixture(t, Options{})
	f.set("da", "n1", store.StateReady, "127.0.0.1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := f.reg.Watch(ctx, "inf1", "da")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	first := recv(t, ch)
	f.update(func(tx store.Tx) error { return tx.DeleteInfra("inf1") })
	f.hub.Publish(store.Event{InfraID: "inf1", Seq: 99, Type: "infradrop"})
	last := recv(t, ch)
	if len(last.Endpoints) != 0 || last.Revision <= first.Revision {
		t.Fatalf("final snapshot = %+v, want empty with a higher revision than %d", last, first.Revision)
	}
	select {
	case s, ok := <-ch:
		if ok {
			t.Fatalf("got %+v after the final snapshot, want a closed channel", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch channel not closed after the infrastructure was deleted")
	}
}

func TestWatchUnknownNode(t *testing.T) {
	f := newFixture(t, Options{})
	_, err := f.reg.Watch(context.Background(), "inf1", "nope")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Watch unknown node: err = %v, want not found", err)
	}
}

func TestActiveConnections(t *testing.T) {
	f := newFixture(t, Options{})
	f.set("da", "n1", store.StateReady, "127.0.0.1")
	f.set("da", "n2", store.StateReady, "127.0.0.2")
	f.set("db", "d1", store.StateReady, "127.0.2.1")
	ctx := context.Background()
	snap, _ := f.reg.Endpoints(ctx, "inf1", "da")

	if _, known := f.reg.ActiveConnections("inf1", "n1"); known {
		t.Fatal("known before any report")
	}
	report := func(reporter string, rev uint64, active map[string]int) {
		t.Helper()
		rep := LBReport{Reporter: reporter, Revision: rev}
		for id, n := range active {
			rep.Backends = append(rep.Backends, LBBackend{NodeID: id, Address: "x", Active: n})
		}
		if err := f.reg.Report(ctx, "inf1", "da", rep); err != nil {
			t.Fatalf("Report: %v", err)
		}
	}
	report("lb-a", snap.Revision, map[string]int{"n1": 3, "n2": 0})
	report("lb-b", snap.Revision, map[string]int{"n1": 2})

	check := func(name, nodeID string, wantN int, wantKnown bool) {
		t.Helper()
		n, known := f.reg.ActiveConnections("inf1", nodeID)
		if n != wantN || known != wantKnown {
			t.Fatalf("%s: ActiveConnections(%s) = %d, %v; want %d, %v", name, nodeID, n, known, wantN, wantKnown)
		}
	}
	check("summed over reporters", "n1", 5, true)
	// n2 is still published as ready: a balancer may pick it any moment, so it is busy.
	check("ready instance is busy", "n2", 2, true)
	check("node nobody balances", "d1", 0, false)
	check("unknown instance", "zz", 0, false)

	f.set("da", "n2", store.StateDraining, "127.0.0.2")
	snap2, _ := f.reg.Endpoints(ctx, "inf1", "da")
	// Both balancers still run the old revision: each may still send n2 work.
	check("removal not yet applied", "n2", 2, true)
	report("lb-a", snap2.Revision, map[string]int{"n1": 3, "n2": 1})
	report("lb-b", snap2.Revision, map[string]int{"n1": 2})
	check("removal applied, one connection left", "n2", 1, true)
	report("lb-a", snap2.Revision, map[string]int{"n1": 3})
	check("drained", "n2", 0, true)

	f.advance(11 * time.Second)
	check("reports too old", "n1", 0, false)
}

func TestReportUnknown(t *testing.T) {
	f := newFixture(t, Options{})
	err := f.reg.Report(context.Background(), "inf1", "nope", LBReport{Reporter: "x"})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("err = %v, want not found", err)
	}
}

func TestWatchSurvivesBeingCutOffByTheHub(t *testing.T) {
	f := newFixture(t, Options{}) // resync an hour away: only the hub can wake the watcher
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := f.reg.Watch(ctx, "inf1", "da")
	if err != nil {
		t.Fatal(err)
	}
	recv(t, ch)
	// Far more events than the watcher's buffer, published at once: the hub cuts it off.
	for i := range 500 {
		f.hub.Publish(store.Event{InfraID: "inf1", Seq: uint64(1000 + i), Type: "scaling_ignored"})
	}
	f.set("da", "n1", store.StateReady, "127.0.0.1")
	s := recv(t, ch)
	for !equal(ids(s), []string{"n1"}) {
		s = recv(t, ch)
	}
	// Subscribed again: a later change arrives through the hub, long before any resync.
	f.set("da", "n2", store.StateReady, "127.0.0.2")
	s = recv(t, ch)
	for !equal(ids(s), []string{"n1", "n2"}) {
		s = recv(t, ch)
	}
}

func TestDrainDone(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	f.set("da", "n1", store.StateReady, "127.0.0.1")
	f.set("db", "d1", store.StateReady, "127.0.2.1")
	snap, _ := f.reg.Endpoints(ctx, "inf1", "da")
	f.set("da", "n1", store.StateDraining, "127.0.0.1")
	f.set("db", "d1", store.StateDraining, "127.0.2.1")
	after, _ := f.reg.Endpoints(ctx, "inf1", "da")
	if after.Revision <= snap.Revision {
		t.Fatal("draining did not change the revision")
	}
	check := func(name, nodeID string, want bool) {
		t.Helper()
		if got := f.reg.DrainDone("inf1", nodeID); got != want {
			t.Fatalf("%s: DrainDone(%s) = %v, want %v", name, nodeID, got, want)
		}
	}
	check("just started: no report yet, cannot know", "d1", false)
	f.advance(11 * time.Second)
	check("a node nobody balances", "d1", true)
	check("no balancer has reported on da yet", "n1", true)

	report := func(active int) {
		t.Helper()
		err := f.reg.Report(ctx, "inf1", "da", LBReport{Reporter: "lb", Revision: after.Revision,
			Backends: []LBBackend{{NodeID: "n1", Active: active}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	report(2)
	check("open connections", "n1", false)
	report(0)
	check("drained", "n1", true)
	f.advance(11 * time.Second)
	check("the node's balancers went silent", "n1", false)
}
