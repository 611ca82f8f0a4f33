package lb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/events"
	"github.com/skyfleet/skyfleet/internal/registry"
	"github.com/skyfleet/skyfleet/internal/store"
)

// orchestrator is a store, hub and registry served over HTTP as skyfleet serve mounts them.
type orchestrator struct {
	t      *testing.T
	st     store.Store
	hub    *events.Hub
	reg    *registry.Registry
	srv    *httptest.Server
	mu     sync.Mutex
	tokens []string
}

func newOrchestrator(t *testing.T) *orchestrator {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	o := &orchestrator{t: t, st: st, hub: events.NewHub()}
	t.Cleanup(o.hub.Close)
	o.reg, err = registry.New(registry.Options{Store: st, Hub: o.hub})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(registry.EndpointsPattern, o.reg.EndpointsHandler())
	mux.Handle(registry.LBReportPattern, o.reg.LBReportHandler())
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.tokens = append(o.tokens, r.Header.Get("Authorization"))
		o.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(o.srv.Close)
	o.update(func(tx store.Tx) error {
		return tx.PutInfra(&store.InfraRecord{ID: "inf", Descriptor: "infra_name: t\nnodes:\n  - name: app\n    type: app\n"})
	})
	return o
}

func (o *orchestrator) update(fn func(tx store.Tx) error) {
	o.t.Helper()
	if err := o.st.Update(context.Background(), fn); err != nil {
		o.t.Fatal(err)
	}
}

// set records an instance state change and its event, as the engine does.
func (o *orchestrator) set(nodeID, addr string, state store.InstanceState) {
	o.t.Helper()
	ev := &store.Event{InfraID: "inf", Type: "node" + string(state), Node: "app", NodeID: nodeID}
	o.update(func(tx store.Tx) error {
		if err := tx.PutInstance(&store.InstanceRecord{InfraID: "inf", Node: "app", NodeID: nodeID, State: state, Addresses: []string{addr}}); err != nil {
			return err
		}
		return tx.AddEvent(ev)
	})
	o.hub.Publish(*ev)
}

func recvMembership(t *testing.T, ch <-chan Membership) Membership {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatal("source closed")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no membership within 10s")
	}
	return Membership{}
}

func TestWatchSourceFollowsTheRegistry(t *testing.T) {
	o := newOrchestrator(t)
	o.set("n1", "127.0.0.1", store.StateReady)
	src := &WatchSource{Server: o.srv.URL, InfraID: "inf", Node: "app", Port: 8080, Token: "s3cret",
		MinBackoff: 10 * time.Millisecond, Logger: testLogger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := src.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		for range ch {
		}
	}()
	m := recvMembership(t, ch)
	if len(m.Backends) != 1 || m.Backends[0] != (Backend{ID: "n1", Addr: "127.0.0.1:8080"}) || m.Revision == 0 {
		t.Fatalf("first membership = %+v", m)
	}
	o.set("n2", "::1", store.StateReady)
	m = recvMembership(t, ch)
	if len(m.Backends) != 2 || m.Backends[1] != (Backend{ID: "n2", Addr: "[::1]:8080"}) {
		t.Fatalf("after n2 = %+v", m)
	}

	t.Run("resumes after the connection drops", func(t *testing.T) {
		o.srv.CloseClientConnections()
		o.set("n1", "127.0.0.1", store.StateDraining)
		got := recvMembership(t, ch)
		if len(got.Backends) != 1 || got.Backends[0].ID != "n2" || got.Revision <= m.Revision {
			t.Fatalf("after reconnecting = %+v, want only n2 at a revision above %d", got, m.Revision)
		}
	})
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, tok := range o.tokens {
		if tok != "Bearer s3cret" {
			t.Fatalf("request carried Authorization %q", tok)
		}
	}
}

func TestWatchSourceRejectsBadSettings(t *testing.T) {
	tests := []struct {
		name string
		src  WatchSource
	}{
		{"no scheme", WatchSource{Server: "127.0.0.1:9000", InfraID: "i", Node: "n", Port: 80}},
		{"no node", WatchSource{Server: "http://127.0.0.1:9000", InfraID: "i", Port: 80}},
		{"bad port", WatchSource{Server: "http://127.0.0.1:9000", InfraID: "i", Node: "n", Port: 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.src.Watch(context.Background()); err == nil {
				t.Fatal("Watch accepted bad settings")
			}
		})
	}
}

// samePortBackends starts named backends on 127.0.0.2, 127.0.0.3, … sharing one port, as
// instances of one node share their application port.
func samePortBackends(t *testing.T, names ...string) (map[string]*namedBackend, int) {
	t.Helper()
	for attempt := 0; attempt < 20; attempt++ {
		first, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Fatal(err)
		}
		port := first.Addr().(*net.TCPAddr).Port
		lns := []net.Listener{first}
		for i := 1; i < len(names); i++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:%d", i+2, port))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		if len(lns) < len(names) {
			for _, ln := range lns {
				ln.Close()
			}
			continue
		}
		out := map[string]*namedBackend{}
		for i, name := range names {
			out[name] = newNamedBackendOn(t, name, lns[i])
		}
		return out, port
	}
	t.Fatal("no port free on every loopback address")
	return nil, 0
}

func TestRoleFollowsScalingAndReportsDrains(t *testing.T) {
	o := newOrchestrator(t)
	bs, port := samePortBackends(t, "a", "b")
	o.set("a", "127.0.0.2", store.StateReady)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := NewBuiltin(BuiltinOptions{Listener: ln, Logger: testLogger(t), DrainTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	role := &Role{
		Source:         &WatchSource{Server: o.srv.URL, InfraID: "inf", Node: "app", Port: port, Logger: testLogger(t)},
		Engine:         eng,
		Reporter:       &Reporter{Server: o.srv.URL, InfraID: "inf", Node: "app", Name: ln.Addr().String()},
		ReportInterval: 20 * time.Millisecond,
		Logger:         testLogger(t),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- role.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("role: %v", err)
		}
	}()
	url := "http://" + ln.Addr().String()
	c := newClient(t)
	answers := func() map[string]int {
		seen := map[string]int{}
		for range 10 {
			resp, err := c.Get(url + "/")
			if err != nil {
				seen["error"]++
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			seen[strconv.Itoa(resp.StatusCode)+" "+string(body)]++
		}
		return seen
	}
	eventually(t, "a serves through the role", func() bool { return answers()["200 a"] == 10 })

	o.set("b", "127.0.0.3", store.StateReady)
	eventually(t, "b receives traffic once ready", func() bool { s := answers(); return s["200 b"] > 0 && s["200 a"] > 0 })

	held := make(chan string, 1)
	go func() {
		resp, err := newClient(t).Get(url + "/hold")
		if err != nil {
			held <- err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		held <- string(body)
	}()
	var victim *namedBackend
	select {
	case <-bs["a"].holding:
		victim = bs["a"]
	case <-bs["b"].holding:
		victim = bs["b"]
	case <-time.After(10 * time.Second):
		t.Fatal("held request reached no backend")
	}
	addr := map[string]string{"a": "127.0.0.2", "b": "127.0.0.3"}[victim.name]
	o.set(victim.name, addr, store.StateDraining) // the engine picks a scale-in victim

	eventually(t, "the orchestrator learns of the open connection on the victim", func() bool {
		n, known := o.reg.ActiveConnections("inf", victim.name)
		return known && n == 1
	})
	if s := answers(); s["200 "+victim.name] != 0 || s["error"] != 0 {
		t.Fatalf("requests during the drain: %v", s)
	}
	victim.releaseAll()
	if got := <-held; got != victim.name {
		t.Fatalf("held request = %q", got)
	}
	eventually(t, "the orchestrator sees the victim drained", func() bool {
		n, known := o.reg.ActiveConnections("inf", victim.name)
		return known && n == 0
	})
}

// fakeEngine records updates and returns fixed counts.
type fakeEngine struct {
	mu      sync.Mutex
	updates [][]Backend
	active  map[string]int
	applied chan struct{}
}

func (f *fakeEngine) Run(ctx context.Context) error { <-ctx.Done(); return nil }

func (f *fakeEngine) Update(bs []Backend) {
	f.mu.Lock()
	f.updates = append(f.updates, bs)
	f.mu.Unlock()
	f.applied <- struct{}{}
}

func (f *fakeEngine) Active() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for k, v := range f.active {
		out[k] = v
	}
	return out
}

func TestRoleReportsWhatTheEngineHolds(t *testing.T) {
	src := NewStaticSource(Backend{ID: "b", Addr: "127.0.0.3:80"}, Backend{ID: "a", Addr: "127.0.0.2:80"})
	eng := &fakeEngine{applied: make(chan struct{}, 4), active: map[string]int{"a": 2, "b": 0}}
	role := &Role{Source: src, Engine: eng}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- role.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	<-eng.applied
	eng.mu.Lock()
	first := eng.updates[0]
	eng.mu.Unlock()
	if len(first) != 2 || first[0].ID != "a" || first[1].ID != "b" {
		t.Fatalf("first update = %v, want a and b sorted by id", first)
	}

	// b is removed; the engine still drains a, which keeps its address in reports.
	src.Set(7, Backend{ID: "c", Addr: "127.0.0.4:80"})
	<-eng.applied
	eng.mu.Lock()
	eng.active = map[string]int{"a": 1, "c": 0}
	eng.mu.Unlock()
	var rep registry.LBReport
	eventually(t, "revision 7 counts as applied", func() bool { rep = role.Report("lb1"); return rep.Revision == 7 })
	want := registry.LBReport{Reporter: "lb1", Revision: 7, Backends: []registry.LBBackend{
		{NodeID: "a", Address: "127.0.0.2:80", Active: 1},
		{NodeID: "c", Address: "127.0.0.4:80", Active: 0},
	}}
	if fmt.Sprint(rep) != fmt.Sprint(want) {
		t.Fatalf("report = %+v\nwant     %+v", rep, want)
	}
}

// failingEngine cannot start.
type failingEngine struct{ fakeEngine }

func (f *failingEngine) Run(context.Context) error {
	return errors.New("listen on 127.0.0.1:1: address in use")
}

func TestRoleReturnsWhenTheEngineFails(t *testing.T) {
	eng := &failingEngine{fakeEngine{applied: make(chan struct{}, 16)}}
	role := &Role{Source: NewStaticSource(Backend{ID: "a", Addr: "127.0.0.2:80"}), Engine: eng}
	done := make(chan error, 1)
	go func() { done <- role.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || err.Error() != "run lb role: listen on 127.0.0.1:1: address in use" {
			t.Fatalf("Run = %v, want the engine's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the engine failed")
	}
}

func TestWatchSourceReplacesASilentStream(t *testing.T) {
	var mu sync.Mutex
	conns := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns++
		n := conns
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		if n > 1 {
			fmt.Fprintf(w, "id: 5\nevent: endpoints\ndata: {\"infra_id\":\"inf\",\"node\":\"app\",\"revision\":5,"+
				"\"endpoints\":[{\"node_id\":\"n1\",\"address\":\"127.0.0.1\",\"addresses\":[\"127.0.0.1\"],\"state\":\"ready\"}]}\n\n")
		}
		// The first connection goes silent after the headers, as a dead peer does.
		_ = http.NewResponseController(w).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	src := &WatchSource{Server: srv.URL, InfraID: "inf", Node: "app", Port: 80,
		IdleTimeout: 50 * time.Millisecond, MinBackoff: time.Millisecond, Logger: testLogger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := src.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		for range ch {
		}
	}()
	m := recvMembership(t, ch)
	if m.Revision != 5 || len(m.Backends) != 1 {
		t.Fatalf("membership after replacing the silent stream = %+v", m)
	}
}
