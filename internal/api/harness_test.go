package api

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/skyfleet/skyfleet/internal/events"
	"github.com/skyfleet/skyfleet/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// now is the fixed time of every test server's clock.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type harness struct {
	t   testing.TB
	srv *Server
	ts  *httptest.Server
	eng *fakeEngine
	st  store.Store
	hub *events.Hub
	reg *prometheus.Registry
}

func newHarness(t testing.TB, mutate func(*Options)) *harness {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	hub := events.NewHub()
	t.Cleanup(hub.Close)
	clock := func() time.Time { return now }
	eng := newFakeEngine(st, hub, clock)
	reg := prometheus.NewRegistry()
	opts := Options{
		Engine: eng, Store: st, Hub: hub, Registerer: reg, Gatherer: reg, Clock: clock,
		Logger: testLogger(t),
	}
	if mutate != nil {
		mutate(&opts)
	}
	srv := New(opts)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	t.Cleanup(srv.Close) // runs first: ends event streams so ts.Close does not wait for them
	return &harness{t: t, srv: srv, ts: ts, eng: eng, st: st, hub: hub, reg: reg}
}

// do sends one request; headers are given as "Name: value" strings.
func (h *harness) do(method, path, body string, headers ...string) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.ts.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatalf("new request: %v", err)
	}
	for _, hd := range headers {
		k, v, _ := strings.Cut(hd, ": ")
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, data
}

// mustStatus fails unless the response has the status.
func mustStatus(t testing.TB, resp *http.Response, body []byte, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d; body: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, want, body)
	}
}

func readFixture(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return string(data)
}

// golden compares a JSON body with testdata/golden/NAME.json (rewritten with -update).
func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		t.Fatalf("%s: body is not JSON: %v: %s", name, err, body)
	}
	buf.WriteByte('\n')
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatalf("write golden: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if !bytes.Equal(bytes.TrimSpace(want), bytes.TrimSpace(buf.Bytes())) {
		t.Errorf("%s: body differs from %s\n got: %s\nwant: %s", name, path, buf.Bytes(), want)
	}
}

// createInfra submits testdata/infra.yaml through the compat route and returns its id.
func (h *harness) createInfra() string {
	h.t.Helper()
	resp, body := h.do("POST", "/infrastructures/", readFixture(h.t, "infra.yaml"))
	mustStatus(h.t, resp, body, 200)
	var out struct{ Infraid string }
	if err := json.Unmarshal(body, &out); err != nil || out.Infraid == "" {
		h.t.Fatalf("create: unexpected body %s (%v)", body, err)
	}
	return out.Infraid
}

// seedInstances stores the instances the engine would have created: two lb (one ready, one
// still being created) and one ready app with an ec2-like address list.
func (h *harness) seedInstances(id string) {
	h.t.Helper()
	recs := []*store.InstanceRecord{
		{InfraID: id, Node: "lb", NodeID: "0b3c5a3e-0000-4000-8000-000000000001", State: store.StateReady, ResourceType: "sim",
			ProviderID: "sim-1", Addresses: []string{"127.77.0.1"}, Created: now.Add(-90 * time.Second),
			Ready: now.Add(-60 * time.Second), Health: "ok", HealthAt: now.Add(-5 * time.Second)},
		{InfraID: id, Node: "lb", NodeID: "0b3c5a3e-0000-4000-8000-000000000002", State: store.StateCreating, ResourceType: "sim",
			Created: now.Add(-2 * time.Second)},
		{InfraID: id, Node: "app", NodeID: "0b3c5a3e-0000-4000-8000-000000000003", State: store.StateReady, ResourceType: "ec2",
			ProviderID: "i-0abc", Addresses: []string{"ec2-1.example", "127.77.0.3"}, PrivateAddress: "127.77.0.3",
			ResourceAddress: []any{"ec2-1.example", "127.77.0.3"}, Created: now.Add(-30 * time.Second), Ready: now.Add(-10 * time.Second),
			Health: "port 8080: connection refused", HealthAt: now.Add(-1 * time.Second), FailingSince: now.Add(-1 * time.Second)},
	}
	err := h.st.Update(context.Background(), func(tx store.Tx) error {
		for _, r := range recs {
			if err := tx.PutInstance(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		h.t.Fatalf("seed instances: %v", err)
	}
}
