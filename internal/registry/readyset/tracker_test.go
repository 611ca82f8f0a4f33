package readyset

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/skyfleet/skyfleet/internal/events"
	"github.com/skyfleet/skyfleet/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testDescriptor = `infra_name: web
variables:
  port: 8080
nodes:
  - name: app
    type: app
    scaling: {min: 1, max: 10}
  - name: lb
    type: lb
    variables:
      port: "443"
`

// importDescriptor is a stored descriptor the API parser refuses (an import tag), read
// leniently.
const importDescriptor = `infra_name: imported
variables:
  metrics_port: 9200
nodes:
  - name: da
    type: da
    variables:
      context: !yaml_import {url: "file://x.yaml"}
      port: 8081
`

type fixture struct {
	t   *testing.T
	st  store.Store
	hub *events.Hub
	tr  *Tracker
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f := &fixture{t: t, st: st, hub: events.NewHub()}
	t.Cleanup(f.hub.Close)
	opts.Store = st
	if opts.Hub == nil {
		opts.Hub = f.hub
	}
	if opts.Resync == 0 {
		opts.Resync = time.Hour
	}
	f.tr, err = New(opts)
	if err != nil {
		t.Fatalf("new tracker: %v", err)
	}
	return f
}

// run starts the tracker until the test ends.
func (f *fixture) run() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := f.tr.Run(ctx); err != nil {
			f.t.Errorf("run: %v", err)
		}
	}()
	f.t.Cleanup(func() { cancel(); wg.Wait() })
}

func (f *fixture) update(fn func(tx store.Tx) error) {
	f.t.Helper()
	if err := f.st.Update(context.Background(), fn); err != nil {
		f.t.Fatalf("store update: %v", err)
	}
}

func (f *fixture) infra(id, desc string, created time.Time) {
	f.t.Helper()
	f.update(func(tx store.Tx) error {
		return tx.PutInfra(&store.InfraRecord{ID: id, Descriptor: desc, Created: created, Targets: map[string]int{}})
	})
	f.hub.Publish(store.Event{InfraID: id, Type: "infrastart"})
}

func (f *fixture) set(infra, node, nodeID string, state store.InstanceState, priv string, addrs ...string) {
	f.t.Helper()
	f.update(func(tx store.Tx) error {
		return tx.PutInstance(&store.InstanceRecord{InfraID: infra, Node: node, NodeID: nodeID, State: state,
			Addresses: addrs, PrivateAddress: priv})
	})
	f.hub.Publish(store.Event{InfraID: infra, Type: "node" + string(state), Node: node, NodeID: nodeID})
}

// waitFor waits until the current Set satisfies ok, following the change channel.
func (f *fixture) waitFor(what string, ok func(*Set) bool) *Set {
	f.t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		s, next := f.tr.Current()
		if s != nil && ok(s) {
			return s
		}
		select {
		case <-next:
		case <-deadline.C:
			f.t.Fatalf("timed out waiting for %s; last set: %+v", what, s)
		}
	}
}

func readyIDs(s *Set, infra, node string) []string {
	in := s.Infra(infra)
	if in == nil || in.Nodes[node] == nil {
		return nil
	}
	out := []string{}
	for _, i := range in.Nodes[node].Ready {
		out = append(out, i.NodeID)
	}
	return out
}

func TestSetHoldsOnlyReadyInstancesWithAnAddress(t *testing.T) {
	f := newFixture(t, Options{})
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.infra("i1", testDescriptor, t0)
	f.set("i1", "app", "n3", store.StateReady, "", "127.0.0.3")
	f.set("i1", "app", "n1", store.StateReady, "127.0.0.1")
	f.set("i1", "app", "n2", store.StateDraining, "", "127.0.0.2")
	f.set("i1", "app", "n4", store.StatePending, "", "127.0.0.4")
	f.set("i1", "app", "n5", store.StateReady, "")
	f.set("i1", "app", "n6", store.StateReady, "10.0.0.6", "127.0.0.6")
	f.run()

	s := f.waitFor("first read", func(*Set) bool { return true })
	in := s.Infra("i1")
	if in == nil || in.Name != "web" || !in.Created.Equal(t0) {
		t.Fatalf("infra = %+v, want name web created %v", in, t0)
	}
	if got := in.NodeNames(); !slices.Equal(got, []string{"app", "lb"}) {
		t.Errorf("nodes = %v, want [app lb] (lb from the descriptor, without instances)", got)
	}
	app := in.Nodes["app"]
	want := []Instance{
		{NodeID: "n1", Address: "127.0.0.1", Addresses: []string{"127.0.0.1"}},
		{NodeID: "n3", Address: "127.0.0.3", Addresses: []string{"127.0.0.3"}},
		{NodeID: "n6", Address: "127.0.0.6", Addresses: []string{"127.0.0.6", "10.0.0.6"}},
	}
	if len(app.Ready) != len(want) {
		t.Fatalf("ready = %+v, want %+v", app.Ready, want)
	}
	for i := range want {
		if app.Ready[i].NodeID != want[i].NodeID || app.Ready[i].Address != want[i].Address ||
			!slices.Equal(app.Ready[i].Addresses, want[i].Addresses) {
			t.Errorf("ready[%d] = %+v, want %+v", i, app.Ready[i], want[i])
		}
	}
}

func TestNodePort(t *testing.T) {
	f := newFixture(t, Options{})
	f.infra("i1", testDescriptor, time.Time{})
	f.infra("i2", importDescriptor, time.Time{})
	f.run()
	s := f.waitFor("both infrastructures", func(s *Set) bool { return s.Len() == 2 })

	tests := []struct {
		name        string
		infra, node string
		keys        []string
		want        int
	}{
		{name: "infrastructure variable merged into the node", infra: "i1", node: "app", keys: []string{"port"}, want: 8080},
		{name: "node's own variable written as a string", infra: "i1", node: "lb", keys: []string{"port"}, want: 443},
		{name: "first key that is set wins", infra: "i1", node: "lb", keys: []string{"app_port", "port"}, want: 443},
		{name: "default when no key is set", infra: "i1", node: "app", keys: []string{"metrics_port"}, want: 9100},
		{name: "lenient read of a descriptor with import tags", infra: "i2", node: "da", keys: []string{"port"}, want: 8081},
		{name: "lenient read merges infrastructure variables", infra: "i2", node: "da", keys: []string{"metrics_port"}, want: 9200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := s.Infra(tt.infra).Nodes[tt.node]
			if n == nil {
				t.Fatalf("node %s/%s missing", tt.infra, tt.node)
			}
			if got := n.Port(9100, tt.keys...); got != tt.want {
				t.Errorf("Port(%v) = %d, want %d", tt.keys, got, tt.want)
			}
		})
	}
	if got := s.Infra("i2").Name; got != "imported" {
		t.Errorf("lenient name = %q, want imported", got)
	}
}

func TestEventsKeepTheSetCurrent(t *testing.T) {
	f := newFixture(t, Options{})
	f.infra("i1", testDescriptor, time.Time{})
	f.set("i1", "app", "n1", store.StateReady, "", "127.0.0.1")
	f.run()
	f.waitFor("n1", func(s *Set) bool { return slices.Equal(readyIDs(s, "i1", "app"), []string{"n1"}) })

	f.set("i1", "app", "n2", store.StateReady, "", "127.0.0.2")
	f.waitFor("scale-up n2", func(s *Set) bool { return slices.Equal(readyIDs(s, "i1", "app"), []string{"n1", "n2"}) })

	f.set("i1", "app", "n1", store.StateDraining, "", "127.0.0.1")
	f.waitFor("n1 draining leaves", func(s *Set) bool { return slices.Equal(readyIDs(s, "i1", "app"), []string{"n2"}) })

	f.infra("i2", testDescriptor, time.Time{})
	f.waitFor("new infrastructure", func(s *Set) bool { return s.Infra("i2") != nil })

	f.update(func(tx store.Tx) error { return tx.DeleteInfra("i1") })
	f.hub.Publish(store.Event{InfraID: "i1", Type: "infradrop"})
	s := f.waitFor("deleted infrastructure leaves", func(s *Set) bool { return s.Infra("i1") == nil })
	if s.Len() != 1 {
		t.Errorf("infras = %d, want 1", s.Len())
	}
}

func TestResyncCatchesChangesWithoutEvents(t *testing.T) {
	f := newFixture(t, Options{Resync: 20 * time.Millisecond})
	f.tr.hub = nil // no events at all
	f.infra("i1", testDescriptor, time.Time{})
	f.run()
	f.waitFor("first read", func(s *Set) bool { return s.Infra("i1") != nil })
	f.update(func(tx store.Tx) error {
		return tx.PutInstance(&store.InstanceRecord{InfraID: "i1", Node: "app", NodeID: "n9", State: store.StateReady,
			Addresses: []string{"127.0.0.9"}})
	})
	f.waitFor("n9 by resync", func(s *Set) bool { return slices.Equal(readyIDs(s, "i1", "app"), []string{"n9"}) })
}

// cuttingHub is a Subscriber whose subscriptions the test closes, as the hub does to a
// subscriber that fell behind.
type cuttingHub struct {
	mu   sync.Mutex
	subs []chan store.Event
	got  chan int
}

func (h *cuttingHub) Subscribe(string, int) (<-chan store.Event, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := make(chan store.Event, 16)
	h.subs = append(h.subs, ch)
	h.got <- len(h.subs)
	return ch, func() {}
}

func (h *cuttingHub) sub(i int) chan store.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.subs[i]
}

func TestResubscribesAndRereadsAfterTheHubCutsItOff(t *testing.T) {
	hub := &cuttingHub{got: make(chan int, 4)}
	f := newFixture(t, Options{Hub: hub, RetryDelay: 5 * time.Millisecond})
	f.infra("i1", testDescriptor, time.Time{})
	f.run()
	<-hub.got
	f.waitFor("first read", func(s *Set) bool { return s.Infra("i1") != nil })

	// A change whose event was lost, then the cut-off.
	f.update(func(tx store.Tx) error {
		return tx.PutInstance(&store.InstanceRecord{InfraID: "i1", Node: "app", NodeID: "lost", State: store.StateReady,
			Addresses: []string{"127.0.0.1"}})
	})
	close(hub.sub(0))
	if n := <-hub.got; n != 2 {
		t.Fatalf("subscriptions = %d, want 2", n)
	}
	f.waitFor("the lost change, by a full read", func(s *Set) bool {
		return slices.Equal(readyIDs(s, "i1", "app"), []string{"lost"})
	})

	// The new subscription is followed.
	f.update(func(tx store.Tx) error {
		return tx.PutInstance(&store.InstanceRecord{InfraID: "i1", Node: "app", NodeID: "next", State: store.StateReady,
			Addresses: []string{"127.0.0.2"}})
	})
	hub.sub(1) <- store.Event{InfraID: "i1", Type: "nodeready"}
	f.waitFor("the change named by the new subscription", func(s *Set) bool {
		return slices.Equal(readyIDs(s, "i1", "app"), []string{"lost", "next"})
	})
}

func TestNewer(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		a, b Infra
		want bool
	}{
		{name: "later creation wins", a: Infra{ID: "a", Created: t0.Add(time.Second)}, b: Infra{ID: "b", Created: t0}, want: true},
		{name: "earlier creation loses", a: Infra{ID: "z", Created: t0}, b: Infra{ID: "b", Created: t0.Add(time.Second)}, want: false},
		{name: "same instant: greater id wins", a: Infra{ID: "b", Created: t0}, b: Infra{ID: "a", Created: t0}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Newer(&tt.a, &tt.b); got != tt.want {
				t.Errorf("Newer = %v, want %v", got, tt.want)
			}
		})
	}
}
