package registry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/store"
)

var update = flag.Bool("update", false, "rewrite golden files")

func serve(t *testing.T, r *Registry) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(EndpointsPattern, r.EndpointsHandler())
	mux.Handle(LBReportPattern, r.LBReportHandler())
	mux.Handle(PrometheusSDPattern, r.PrometheusSDHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestEndpointsJSONAndErrors(t *testing.T) {
	f := newFixture(t, Options{})
	f.set("da", "n1", store.StateReady, "127.0.0.1")
	srv := serve(t, f.reg)
	tests := []struct {
		name, path string
		status     int
		body       string
	}{
		{"snapshot", "/v1/infrastructures/inf1/nodes/da/endpoints", 200,
			`{"infra_id":"inf1","node":"da","revision":1,"endpoints":[{"node_id":"n1","address":"127.0.0.1","addresses":["127.0.0.1"],"state":"ready"}]}`},
		{"unknown infra", "/v1/infrastructures/nope/nodes/da/endpoints", 404,
			`{"error":{"code":"not_found","message":"infrastructure \"nope\": not found"}}`},
		{"unknown node", "/v1/infrastructures/inf1/nodes/nope/endpoints?watch=1", 404,
			`{"error":{"code":"not_found","message":"node \"nope\" of infrastructure \"inf1\": not found"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			if resp.StatusCode != tc.status || strings.TrimSpace(buf.String()) != tc.body {
				t.Fatalf("GET %s = %d %s\nwant %d %s", tc.path, resp.StatusCode, buf.String(), tc.status, tc.body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type = %q", ct)
			}
		})
	}
}

// sseMessage is one parsed server-sent event.
type sseMessage struct {
	id, event string
	snap      Snapshot
}

// sseClient reads a stream the way an EventSource does.
type sseClient struct {
	t      *testing.T
	cancel context.CancelFunc
	msgs   chan sseMessage
}

func dialSSE(t *testing.T, url, lastEventID string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c := &sseClient{t: t, cancel: cancel, msgs: make(chan sseMessage, 16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(c.msgs)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var m sseMessage
		var data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if data != "" {
					if err := json.Unmarshal([]byte(data), &m.snap); err != nil {
						t.Errorf("bad data line %q: %v", data, err)
						return
					}
					c.msgs <- m
				}
				m, data = sseMessage{}, ""
			case strings.HasPrefix(line, "id: "):
				m.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				m.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

func (c *sseClient) next() sseMessage {
	c.t.Helper()
	select {
	case m, ok := <-c.msgs:
		if !ok {
			c.t.Fatal("stream ended")
		}
		return m
	case <-time.After(10 * time.Second):
		c.t.Fatal("no event within 10s")
	}
	return sseMessage{}
}

func TestEndpointsWatchStream(t *testing.T) {
	f := newFixture(t, Options{})
	f.set("da", "n1", store.StateReady, "127.0.0.1")
	srv := serve(t, f.reg)
	url := srv.URL + "/v1/infrastructures/inf1/nodes/da/endpoints?watch=1"

	c := dialSSE(t, url, "")
	first := c.next()
	if first.event != "endpoints" || first.id != strconv.FormatUint(first.snap.Revision, 10) || !equal(ids(first.snap), []string{"n1"}) {
		t.Fatalf("first message = %+v", first)
	}
	f.set("da", "n2", store.StateReady, "127.0.0.2")
	m := c.next()
	if !equal(ids(m.snap), []string{"n1", "n2"}) || m.snap.Revision <= first.snap.Revision {
		t.Fatalf("after n2 ready: %+v", m)
	}
	c.cancel()

	t.Run("reconnect with the current revision skips the snapshot it has", func(t *testing.T) {
		c := dialSSE(t, url, m.id)
		f.set("da", "n1", store.StateDraining, "127.0.0.1")
		got := c.next()
		if !equal(ids(got.snap), []string{"n2"}) {
			t.Fatalf("first message after resuming = %v, want the change [n2]", ids(got.snap))
		}
		m = got
	})
	t.Run("reconnect with an old revision gets the full current snapshot", func(t *testing.T) {
		c := dialSSE(t, url, first.id)
		got := c.next()
		if got.id != m.id || !equal(ids(got.snap), []string{"n2"}) {
			t.Fatalf("first message = %+v, want the current snapshot %s", got, m.id)
		}
	})
}

func TestEndpointsWatchOutlivesTheServerWriteTimeout(t *testing.T) {
	f := newFixture(t, Options{Heartbeat: 10 * time.Millisecond})
	mux := http.NewServeMux()
	mux.Handle(EndpointsPattern, f.reg.EndpointsHandler())
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.WriteTimeout = 100 * time.Millisecond
	srv.Start()
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/infrastructures/inf1/nodes/da/endpoints?watch=true", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	start := time.Now()
	beats := 0
	for sc.Scan() {
		if sc.Text() == ": heartbeat" {
			beats++
			if time.Since(start) > 4*srv.Config.WriteTimeout {
				return // still streaming well past the server's write timeout
			}
		}
	}
	t.Fatalf("stream ended after %v and %d heartbeats: %v", time.Since(start), beats, sc.Err())
}

func TestLBReportHandler(t *testing.T) {
	f := newFixture(t, Options{})
	f.set("da", "n1", store.StateReady, "127.0.0.1")
	srv := serve(t, f.reg)
	tests := []struct {
		name, path, body string
		status           int
	}{
		{"accepted", "/v1/infrastructures/inf1/nodes/da/lbreport", `{"reporter":"lb1","revision":1,"backends":[{"node_id":"n1","address":"127.0.0.1:8080","active":4}]}`, 204},
		{"missing reporter", "/v1/infrastructures/inf1/nodes/da/lbreport", `{"backends":[]}`, 400},
		{"unknown field", "/v1/infrastructures/inf1/nodes/da/lbreport", `{"reporter":"a","bogus":1}`, 400},
		{"negative count", "/v1/infrastructures/inf1/nodes/da/lbreport", `{"reporter":"a","backends":[{"node_id":"n1","active":-1}]}`, 400},
		{"unknown node", "/v1/infrastructures/inf1/nodes/zz/lbreport", `{"reporter":"a"}`, 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(srv.URL+tc.path, "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
	if n, known := f.reg.ActiveConnections("inf1", "n1"); n != 4 || !known {
		t.Fatalf("ActiveConnections after report = %d, %v; want 4, true", n, known)
	}
}

func TestPrometheusSD(t *testing.T) {
	f := newFixture(t, Options{})
	f.set("da", "n1", store.StateReady, "127.0.0.1")
	f.set("da", "n2", store.StateDraining, "127.0.0.2")
	f.set("lb", "l1", store.StateReady, "127.0.1.1")
	f.set("db", "d1", store.StateReady, "::1")
	f.update(func(tx store.Tx) error {
		if err := tx.PutInfra(&store.InfraRecord{ID: "inf2", Descriptor: "infra_name: other\nnodes:\n  - name: app\n    type: app\n"}); err != nil {
			return err
		}
		return tx.PutInstance(&store.InstanceRecord{InfraID: "inf2", Node: "app", NodeID: "a1", State: store.StateReady, Addresses: []string{"127.0.3.1"}})
	})
	srv := serve(t, f.reg)
	tests := []struct {
		name, query string
		status      int
	}{
		{"all", "", 200},
		{"one infra", "?infra_id=inf1", 200},
		{"one node", "?infra_id=inf1&node=lb", 200},
		{"unknown infra", "?infra_id=zz", 404},
		{"unknown node", "?infra_id=inf1&node=zz", 404},
		{"node without infra", "?node=lb", 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + "/v1/sd/prometheus" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tc.status, buf.String())
			}
			if tc.status != 200 {
				return
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, buf.Bytes(), "", "  "); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "sd_"+strings.ReplaceAll(tc.name, " ", "_")+".json")
			if *update {
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Fatalf("SD output differs from %s:\n%s", golden, pretty.String())
			}
		})
	}
}
