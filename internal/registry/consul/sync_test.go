package consul

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/skyfleet/skyfleet/internal/events"
	"github.com/skyfleet/skyfleet/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testToken = "s3cr3t-acl-token-0f9a"

const testDescriptor = `infra_name: dataavenue
nodes:
  - name: da
    type: da
    scaling: {min: 1, max: 10}
    variables:
      port: 8080
  - name: lb
    type: lb
    variables:
      metrics_port: 9101
  - name: db
    type: db
    variables:
      consul_port: 3306
      metrics_port: 9104
`

type fixture struct {
	t     *testing.T
	st    store.Store
	hub   *events.Hub
	agent *fakeAgent
	logs  *syncBuffer
	reg   *prometheus.Registry
	sync  *Syncer
}

// syncBuffer collects log output for inspection and echoes it to the test log.
type syncBuffer struct {
	t  *testing.T
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.t.Log(strings.TrimSpace(string(p)))
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f := &fixture{t: t, st: st, hub: events.NewHub(), agent: newFakeAgent(t, testToken), logs: &syncBuffer{t: t}}
	t.Cleanup(f.hub.Close)
	f.update(func(tx store.Tx) error {
		return tx.PutInfra(&store.InfraRecord{ID: "inf1", Descriptor: testDescriptor, Targets: map[string]int{}})
	})
	return f
}

// start builds a syncer over the fixture (opts may adjust it) and runs it until the
// returned stop function is called or the test ends.
func (f *fixture) start(adjust func(*Options)) (stop func()) {
	f.t.Helper()
	f.reg = prometheus.NewRegistry()
	opts := Options{
		Store:      f.st,
		Hub:        f.hub,
		Address:    f.agent.addr(),
		Token:      testToken,
		Datacenter: "dataavenue",
		Logger:     slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: f.reg,
		Resync:     time.Hour,
		MinBackoff: 5 * time.Millisecond,
		MaxBackoff: 20 * time.Millisecond,
	}
	if adjust != nil {
		adjust(&opts)
	}
	s, err := New(opts)
	if err != nil {
		f.t.Fatalf("new: %v", err)
	}
	f.sync = s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				f.t.Errorf("run: %v", err)
			}
		})
	}
	f.t.Cleanup(stop)
	return stop
}

func (f *fixture) update(fn func(tx store.Tx) error) {
	f.t.Helper()
	if err := f.st.Update(context.Background(), fn); err != nil {
		f.t.Fatalf("store update: %v", err)
	}
}

// set writes an instance and publishes an event about it, as the engine does.
func (f *fixture) set(node, nodeID string, state store.InstanceState, addrs ...string) {
	f.t.Helper()
	f.update(func(tx store.Tx) error {
		return tx.PutInstance(&store.InstanceRecord{InfraID: "inf1", Node: node, NodeID: nodeID, State: state, Addresses: addrs})
	})
	f.hub.Publish(store.Event{InfraID: "inf1", Type: "node" + string(state), Node: node, NodeID: nodeID})
}

func (f *fixture) drop(nodeID string) {
	f.t.Helper()
	f.update(func(tx store.Tx) error { return tx.DeleteInstance("inf1", nodeID) })
	f.hub.Publish(store.Event{InfraID: "inf1", Type: "nodedropped", NodeID: nodeID})
}

// waitServices waits until the agent holds exactly the service IDs want.
func (f *fixture) waitServices(what string, want ...string) map[string]*api.AgentServiceRegistration {
	f.t.Helper()
	slices.Sort(want)
	if want == nil {
		want = []string{}
	}
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		svcs, changed := f.agent.snapshot()
		got := []string{}
		for id := range svcs {
			got = append(got, id)
		}
		slices.Sort(got)
		if slices.Equal(got, want) {
			return svcs
		}
		select {
		case <-changed:
		case <-deadline.C:
			f.t.Fatalf("timed out waiting for %s: agent holds %v, want %v", what, got, want)
		}
	}
}

// waitFor polls cond until it holds, failing after a deadline.
func (f *fixture) waitFor(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestRegistersReadyInstances(t *testing.T) {
	f := newFixture(t)
	f.set("da", "d1", store.StateReady, "127.0.0.11")
	f.set("da", "d2", store.StatePending, "127.0.0.12")
	f.set("lb", "l1", store.StateReady, "127.0.0.21", "10.0.0.21")
	f.set("db", "b1", store.StateReady, "127.0.0.31")
	f.start(nil)

	svcs := f.waitServices("the ready instances", "skyfleet-d1", "skyfleet-l1", "skyfleet-b1")
	tests := []struct {
		id          string
		name        string
		address     string
		port        int
		appPort     string
		checkTarget string
	}{
		{id: "skyfleet-d1", name: "da_cluster", address: "127.0.0.11", port: 9100, appPort: "8080", checkTarget: "127.0.0.11:9100"},
		{id: "skyfleet-l1", name: "lb_cluster", address: "127.0.0.21", port: 9101, checkTarget: "127.0.0.21:9101"},
		{id: "skyfleet-b1", name: "db_cluster", address: "127.0.0.31", port: 3306, checkTarget: "127.0.0.31:3306"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			s := svcs[tt.id]
			if s.Name != tt.name || s.Address != tt.address || s.Port != tt.port {
				t.Errorf("service = %s at %s:%d, want %s at %s:%d", s.Name, s.Address, s.Port, tt.name, tt.address, tt.port)
			}
			node := strings.TrimSuffix(tt.name, "_cluster")
			if want := []string{"skyfleet", "infra:inf1", "node:" + node}; !slices.Equal(s.Tags, want) {
				t.Errorf("tags = %v, want %v", s.Tags, want)
			}
			wantMeta := map[string]string{"infra_id": "inf1", "node": node, "node_id": strings.TrimPrefix(tt.id, "skyfleet-"),
				"infra_name": "dataavenue", "skyfleet_check": "tcp"}
			if tt.appPort != "" {
				wantMeta["app_port"] = tt.appPort
			}
			if fmt.Sprint(s.Meta) != fmt.Sprint(wantMeta) {
				t.Errorf("meta = %v, want %v", s.Meta, wantMeta)
			}
			if s.Check == nil || s.Check.TCP != tt.checkTarget || s.Check.Interval != "10s" || s.Check.Timeout != "5s" {
				t.Errorf("check = %+v, want TCP %s every 10s, timeout 5s", s.Check, tt.checkTarget)
			}
		})
	}

	for _, r := range f.agent.requestLog() {
		if strings.HasPrefix(r, "PUT /v1/agent/service/register") && !strings.Contains(r, "replace-existing-checks=true") {
			t.Errorf("%s: registrations must replace existing checks, so that a changed check does not pile up", r)
		}
		if !strings.Contains(r, "dc=dataavenue") {
			t.Errorf("%s: the datacenter is not passed", r)
		}
	}
	f.waitFor("skyfleet_consul_services = 3", func() bool { return testutil.ToFloat64(f.sync.services) == 3 })
}

func TestFollowsScalingAndDrain(t *testing.T) {
	f := newFixture(t)
	f.set("da", "d1", store.StateReady, "127.0.0.11")
	f.start(nil)
	f.waitServices("d1", "skyfleet-d1")

	f.set("da", "d2", store.StatePending, "127.0.0.12")
	f.set("da", "d2", store.StateReady, "127.0.0.12")
	f.waitServices("scale-up registers d2", "skyfleet-d1", "skyfleet-d2")

	f.set("da", "d1", store.StateDraining, "127.0.0.11")
	f.waitServices("drain deregisters d1 at once", "skyfleet-d2")

	f.drop("d1")
	f.set("da", "d3", store.StateReady, "127.0.0.13")
	f.waitServices("d3", "skyfleet-d2", "skyfleet-d3")
	f.drop("d3")
	f.waitServices("a dropped instance is deregistered", "skyfleet-d2")

	f.set("da", "d2", store.StateReady, "127.0.0.99")
	svcs := f.waitServices("d2", "skyfleet-d2")
	f.waitFor("the new address", func() bool {
		svcs, _ = f.agent.snapshot()
		return svcs["skyfleet-d2"].Address == "127.0.0.99"
	})

	f.update(func(tx store.Tx) error { return tx.DeleteInfra("inf1") })
	f.hub.Publish(store.Event{InfraID: "inf1", Type: "infradrop"})
	f.waitServices("a deleted infrastructure's services are deregistered")
}

func TestReconcilesAfterRestart(t *testing.T) {
	f := newFixture(t)
	f.set("da", "d1", store.StateReady, "127.0.0.11")
	stop := f.start(nil)
	f.waitServices("d1", "skyfleet-d1")
	stop()

	// While skyfleet is down: d1 drains and is gone, d2 becomes ready, someone else
	// registers a service of their own, and a service skyfleet registered long ago lingers.
	f.set("da", "d1", store.StateDraining, "127.0.0.11")
	f.set("da", "d2", store.StateReady, "127.0.0.12")
	f.set("lb", "l1", store.StateReady, "127.0.0.21")
	foreign := &api.AgentServiceRegistration{ID: "web-1", Name: "web", Tags: []string{"skyfleet"}, Port: 80}
	f.agent.put(foreign)
	f.agent.put(&api.AgentServiceRegistration{ID: "skyfleet-old", Name: "da_cluster", Tags: []string{"skyfleet"}, Port: 9100})
	// l1 is registered already, but with a stale address: it must be registered again.
	f.agent.put(&api.AgentServiceRegistration{ID: "skyfleet-l1", Name: "lb_cluster", Address: "127.0.0.99", Port: 9100,
		Tags: []string{"skyfleet", "infra:inf1", "node:lb"}})

	f.start(nil)
	svcs := f.waitServices("reconciled", "skyfleet-d2", "skyfleet-l1", "web-1")
	f.waitFor("l1's address fixed", func() bool {
		svcs, _ = f.agent.snapshot()
		return svcs["skyfleet-l1"].Address == "127.0.0.21"
	})
	if svcs["web-1"] != foreign {
		t.Errorf("a service skyfleet did not register was changed: %+v", svcs["web-1"])
	}
}

func TestConsulUnavailableIsRetriedWithBackoff(t *testing.T) {
	f := newFixture(t)
	f.agent.setDown(true)
	f.set("da", "d1", store.StateReady, "127.0.0.11")
	f.start(nil)

	f.waitFor("three failed attempts", func() bool { return testutil.ToFloat64(f.sync.syncErrors) >= 3 })
	f.agent.setDown(false)
	f.waitServices("registration once Consul is back", "skyfleet-d1")
	f.waitFor("the recovery message", func() bool { return strings.Contains(f.logs.String(), "consul sync recovered") })

	logs := f.logs.String()
	for _, want := range []string{"consul sync failed; retrying", "attempt=1", "attempt=2", "attempt=3", "No cluster leader"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q", want)
		}
	}
	if strings.Contains(logs, testToken) {
		t.Error("the token appears in the logs")
	}
}

func TestUnreachableAgentNeverEndsRun(t *testing.T) {
	f := newFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	_ = ln.Close()
	f.set("da", "d1", store.StateReady, "127.0.0.11")
	stop := f.start(func(o *Options) { o.Address = "http://" + closed })
	f.waitFor("repeated attempts", func() bool { return testutil.ToFloat64(f.sync.syncErrors) >= 3 })
	stop() // Run returns nil (checked by stop)
	if logs := f.logs.String(); !strings.Contains(logs, closed) || strings.Contains(logs, testToken) {
		t.Errorf("logs should name the agent address and never the token:\n%s", logs)
	}
}

func TestWrongTokenIsReportedWithoutTheToken(t *testing.T) {
	f := newFixture(t)
	f.set("da", "d1", store.StateReady, "127.0.0.11")
	f.start(func(o *Options) { o.Token = "wrong-" + testToken })
	f.waitFor("a failed attempt", func() bool { return testutil.ToFloat64(f.sync.syncErrors) >= 1 })
	logs := f.logs.String()
	if !strings.Contains(logs, "ACL not found") {
		t.Errorf("logs lack Consul's answer:\n%s", logs)
	}
	if strings.Contains(logs, testToken) {
		t.Error("the token appears in the logs")
	}
}

func TestCheckNone(t *testing.T) {
	f := newFixture(t)
	f.set("da", "d1", store.StateReady, "127.0.0.11")
	f.start(func(o *Options) { o.Check = CheckNone })
	svcs := f.waitServices("d1", "skyfleet-d1")
	if svcs["skyfleet-d1"].Check != nil || svcs["skyfleet-d1"].Meta["skyfleet_check"] != "none" {
		t.Errorf("check = %+v, meta %v; want no check", svcs["skyfleet-d1"].Check, svcs["skyfleet-d1"].Meta)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tests := []struct {
		name string
		opts Options
		want []string
	}{
		{name: "no store", opts: Options{}, want: []string{"a store is required"}},
		{name: "bad check", opts: Options{Store: st, Check: "http"}, want: []string{`check "http": want "tcp" or "none"`}},
		{name: "bad scheme", opts: Options{Store: st, Address: "unix:///tmp/consul.sock"},
			want: []string{`scheme "unix" is not allowed`}},
		{name: "every problem at once", opts: Options{Check: "x", Address: "ftp://h"},
			want: []string{"a store is required", `check "x"`, `scheme "ftp"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil {
				t.Fatal("New accepted bad options")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		attempt int
		want    time.Duration
	}{
		{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {6, 32 * time.Second}, {7, time.Minute}, {100, time.Minute},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.attempt), func(t *testing.T) {
			if got := Backoff(tt.attempt, time.Second, time.Minute); got != tt.want {
				t.Errorf("Backoff(%d) = %v, want %v", tt.attempt, got, tt.want)
			}
		})
	}
}
