package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/skyfleet/skyfleet/internal/api"
	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/events"
	"github.com/skyfleet/skyfleet/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// engine is the smallest Engine the client's calls need: submissions are stored, scaling
// answers from a fixed table.
type engine struct {
	st store.Store
	mu sync.Mutex
	n  int
}

func (e *engine) ImportNodeDefs(_ context.Context, defs descriptor.NodeDefs, _ string) ([]string, error) {
	var names []string
	for n := range defs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

func (e *engine) Submit(ctx context.Context, id, file string, data []byte) (string, []api.Warning, error) {
	if _, _, err := descriptor.ParseInfra(file, data); err != nil {
		return "", nil, err
	}
	e.mu.Lock()
	if id == "" {
		e.n++
		id = fmt.Sprintf("infra-%d", e.n)
	}
	e.mu.Unlock()
	return id, nil, e.st.Update(ctx, func(tx store.Tx) error {
		return tx.PutInfra(&store.InfraRecord{ID: id, Descriptor: string(data), Targets: map[string]int{}, Phase: store.InfraBuilding})
	})
}

func (e *engine) Scale(_ context.Context, req store.ScalingRequest) (api.ScaleResult, error) {
	if req.Node != "app" {
		return api.ScaleResult{}, &api.NotFoundError{Kind: "node", Name: req.Node, InfraID: req.InfraID}
	}
	return api.ScaleResult{Applied: false, Reason: "maximum count reached (2)", From: 2, Target: 2}, nil
}

func (e *engine) Destroy(context.Context, string) error  { return nil }
func (e *engine) WaitGone(context.Context, string) error { return nil }
func (e *engine) Attach(context.Context, string) error   { return api.ErrAlreadyAttached }
func (e *engine) Detach(context.Context, string) error   { return nil }
func (e *engine) Maintained(string) bool                 { return true }

func newServer(t *testing.T, token string) *httptest.Server {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	hub := events.NewHub()
	t.Cleanup(hub.Close)
	srv := api.New(api.Options{Engine: &engine{st: st}, Store: st, Hub: hub, Token: token})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	t.Cleanup(srv.Close)
	return ts
}

const infra = `user_id: u
infra_name: demo
nodes:
  - name: app
    type: app
    scaling: {min: 1, max: 2}
`

func TestClientCalls(t *testing.T) {
	ts := newServer(t, "tok")
	ctx := context.Background()
	c, err := New(Options{Addr: ts.URL, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Health(ctx); err != nil {
		t.Fatalf("health: %v", err)
	}
	res, err := c.CreateInfra(ctx, "demo.yaml", []byte(infra))
	if err != nil || res.ID != "infra-1" || !res.Created {
		t.Fatalf("create: %+v, %v", res, err)
	}
	d, err := c.Infra(ctx, "infra-1")
	if err != nil || d.Name != "demo" || len(d.Nodes) != 1 || d.Nodes[0].Max != 2 {
		t.Fatalf("get: %+v, %v", d, err)
	}
	list, err := c.Infras(ctx)
	if err != nil || len(list) != 1 || list[0].Nodes["app"].Target != 1 {
		t.Fatalf("list: %+v, %v", list, err)
	}
	one := 1
	sr, err := c.Scale(ctx, "infra-1", "app", api.ScaleRequest{Delta: &one})
	if err != nil || sr.Applied || sr.Reason != "maximum count reached (2)" {
		t.Fatalf("scale: %+v, %v", sr, err)
	}
	names, err := c.ImportNodeDefs(ctx, "n.yaml", []byte("'node_def:app':\n  - resource: {type: sim}\n"))
	if err != nil || !slices.Equal(names, []string{"app"}) {
		t.Fatalf("import: %v, %v", names, err)
	}

	t.Run("errors carry the envelope", func(t *testing.T) {
		_, err := c.Infra(ctx, "nope")
		if !IsNotFound(err) {
			t.Errorf("unknown infra: %v, want not found", err)
		}
		_, err = c.Scale(ctx, "infra-1", "web", api.ScaleRequest{Delta: &one})
		if !IsNotFound(err) {
			t.Errorf("unknown node: %v, want not found", err)
		}
		_, err = c.CreateInfra(ctx, "bad.yaml", []byte("user_id: u\ninfra_name: x\nnodes:\n  - name: a_b\n    type: t\n"))
		var e *Error
		if !errors.As(err, &e) || e.Status != 400 || len(e.Details) == 0 || !strings.HasPrefix(e.Details[0], "bad.yaml:4:") {
			t.Errorf("invalid descriptor: %#v", err)
		}
		if !strings.Contains(err.Error(), "bad.yaml:4:") {
			t.Errorf("message lacks the position: %v", err)
		}
		err = c.Attach(ctx, "infra-1")
		if !errors.As(err, &e) || e.Status != 409 {
			t.Errorf("attach: %v", err)
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		bad, _ := New(Options{Addr: ts.URL, Token: "nope"})
		_, err := bad.Infras(ctx)
		var e *Error
		if !errors.As(err, &e) || e.Status != 401 || strings.Contains(err.Error(), "nope") {
			t.Errorf("wrong token: %v", err)
		}
	})
}

func TestNewAddr(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "http://127.0.0.1:5000",
		"127.0.0.1:8080":        "http://127.0.0.1:8080",
		"https://127.0.0.1:1/":  "https://127.0.0.1:1",
		"http://127.0.0.1:5000": "http://127.0.0.1:5000",
	} {
		c, err := New(Options{Addr: in})
		if err != nil || c.Addr() != want {
			t.Errorf("New(%q) = %v, %v; want %s", in, c, err, want)
		}
	}
	for _, bad := range []string{"ftp://x", "http://", "::"} {
		if _, err := New(Options{Addr: bad}); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}

// TestWatchResumes drops the stream after two events; the client must reconnect with
// Last-Event-ID 2 and deliver the rest once, then stop at the gone event.
func TestWatchResumes(t *testing.T) {
	var (
		mu      sync.Mutex
		lastIDs []string
	)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		n := len(lastIDs)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		switch n {
		case 1:
			// Two events, then the connection drops mid-frame.
			fmt.Fprint(w, "id: 1\nevent: infrastart\ndata: {\"seq\":1,\"type\":\"infrastart\"}\n\n")
			fmt.Fprint(w, ": heartbeat\n\n")
			fmt.Fprint(w, "id: 2\nevent: nodecreating\ndata: {\"seq\":2,\"type\":\"nodecreating\"}\n\nid: 3\nevent: nodecr")
		case 2:
			w.WriteHeader(http.StatusBadGateway) // a proxy hiccup: retried
		default:
			// The server replays from Last-Event-ID; a duplicate is ignored by the client.
			fmt.Fprint(w, "id: 2\nevent: nodecreating\ndata: {\"seq\":2,\"type\":\"nodecreating\"}\n\n")
			fmt.Fprint(w, "id: 3\nevent: nodecreated\ndata: {\"seq\":3,\"type\":\"nodecreated\"}\n\n")
			fmt.Fprint(w, "event: gone\ndata: {}\n\n")
		}
	}))
	defer ts.Close()
	c, _ := New(Options{Addr: ts.URL})
	var got []string
	reconnects := 0
	err := c.Watch(context.Background(), "x", 0, func(e api.Event) error {
		got = append(got, fmt.Sprintf("%d:%s", e.Seq, e.Type))
		return nil
	}, WatchOptions{MinBackoff: time.Millisecond, OnReconnect: func(error) { reconnects++ }})
	if !errors.Is(err, ErrGone) {
		t.Fatalf("Watch = %v, want ErrGone", err)
	}
	if want := []string{"1:infrastart", "2:nodecreating", "3:nodecreated"}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	if want := []string{"0", "2", "2"}; !slices.Equal(lastIDs, want) {
		t.Errorf("Last-Event-ID headers %v, want %v", lastIDs, want)
	}
	if reconnects != 2 {
		t.Errorf("%d reconnects, want 2", reconnects)
	}
}

func TestWatchStopsOnCallerErrorAndClientErrors(t *testing.T) {
	ts := newServer(t, "")
	c, _ := New(Options{Addr: ts.URL})
	ctx := context.Background()
	if _, err := c.CreateInfra(ctx, "demo.yaml", []byte(infra)); err != nil {
		t.Fatal(err)
	}
	// No events stored by this engine: a 404 for an unknown infrastructure comes back as is.
	err := c.Watch(ctx, "nope", 0, func(api.Event) error { return nil }, WatchOptions{})
	if !IsNotFound(err) {
		t.Errorf("unknown infra: %v", err)
	}
	// A cancelled context ends the watch.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err = c.Watch(cctx, "infra-1", 0, func(api.Event) error { return nil }, WatchOptions{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled watch: %v", err)
	}
}

// TestWatchReturnsCallbackError checks that an error from the caller's function ends the watch
// with that error, without reconnecting.
func TestWatchReturnsCallbackError(t *testing.T) {
	calls := 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "id: 1\nevent: infrastart\ndata: {\"seq\":1,\"type\":\"infrastart\"}\n\n")
	}))
	defer ts.Close()
	c, _ := New(Options{Addr: ts.URL})
	stop := errors.New("enough")
	err := c.Watch(context.Background(), "x", 0, func(api.Event) error { return stop }, WatchOptions{MinBackoff: time.Millisecond})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Watch = %v after %d connections, want the callback's error after 1", err, calls)
	}
}

func TestUnreachableServerIsNamed(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	addr := ts.URL
	ts.Close() // nothing listens there any more
	c, _ := New(Options{Addr: addr})
	_, err := c.Infras(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cannot reach the skyfleet server at "+addr) {
		t.Errorf("error %v does not name the unreachable server", err)
	}
}
