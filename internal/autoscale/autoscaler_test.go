package autoscale

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/skyfleet/skyfleet/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const infraID = "0b7c6c9e-4f1e-4c55-9d1a-2b0a3e8f1c2d"

// fakeEngine is a Scaler and NodeSource over an in-memory table of nodes, applying Occopus'
// clamps the way the engine does.
type fakeEngine struct {
	mu    sync.Mutex
	nodes map[string]*NodeState // by infra/node
	reqs  []store.ScalingRequest
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{nodes: map[string]*NodeState{infraID + "/app": {Min: 1, Max: 3, Target: 1, Ready: 1}}}
}

func (f *fakeEngine) NodeState(_ context.Context, infra, node string) (NodeState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.nodes[infra+"/"+node]
	if !ok {
		if infra != infraID {
			return NodeState{}, fmt.Errorf("infrastructure %q does not exist: %w", infra, ErrUnknown)
		}
		return NodeState{}, fmt.Errorf("node %q does not exist in infrastructure %q: %w", node, infra, ErrUnknown)
	}
	return *n, nil
}

func (f *fakeEngine) TargetNodes(context.Context) ([]TargetNode, error) { return nil, nil }

func (f *fakeEngine) Scale(_ context.Context, r store.ScalingRequest) (ScaleOutcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, r)
	n := f.nodes[r.InfraID+"/"+r.Node]
	from := n.Target
	switch r.Kind {
	case store.ScaleUp:
		n.Target = min(n.Target+r.Count, n.Max)
	case store.ScaleTo:
		n.Target = max(min(r.Count, n.Max), n.Min)
	}
	n.Pending = n.Target - n.Ready
	if n.Pending < 0 {
		n.Pending, n.Ready = 0, n.Target
	}
	return ScaleOutcome{Applied: n.Target != from, From: from, Target: n.Target, Pending: n.Pending}, nil
}

// becomeReady makes every pending instance ready.
func (f *fakeEngine) becomeReady() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.nodes {
		n.Ready, n.Pending = n.Target, 0
	}
}

func (f *fakeEngine) target() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nodes[infraID+"/app"].Target
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newTestStore(t *testing.T) store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	err = st.Update(context.Background(), func(tx store.Tx) error {
		return tx.PutInfra(&store.InfraRecord{ID: infraID, Phase: store.InfraReady})
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newTestAutoscaler(t *testing.T, f *fakeEngine, c *clock, reg prometheus.Registerer) (*Autoscaler, store.Store) {
	t.Helper()
	st := newTestStore(t)
	a, err := New(Options{Scaler: f, Nodes: f, Store: st, Clock: c.Now, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return a, st
}

func decisions(t *testing.T, st store.Store) []*store.Decision {
	t.Helper()
	var ds []*store.Decision
	err := st.View(context.Background(), func(tx store.Tx) error {
		var err error
		ds, err = tx.Decisions(infraID, 0, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func firing(kind string, c *clock) *Alert {
	return &Alert{Name: "app_" + kind, Kind: kind, InfraID: infraID, Node: "app", Firing: true, Source: "alertmanager", Received: c.Now(),
		Labels: map[string]string{"alert": kind, "node": "app", "infra_id": infraID, "alertname": "app_" + kind}}
}

// TestLevelTriggeredSteps: one delivery of a firing alert keeps stepping after each cooldown,
// waits while instances are pending, and stops at max; each "no" is explained.
func TestLevelTriggeredSteps(t *testing.T) {
	ctx := context.Background()
	f := newFakeEngine()
	c := &clock{now: t0}
	reg := prometheus.NewRegistry()
	a, st := newTestAutoscaler(t, f, c, reg)

	res := a.Receive(ctx, []*Alert{firing(KindOverloaded, c)})
	if res.Accepted != 1 || len(res.Rejected) != 0 {
		t.Fatalf("Receive = %+v", res)
	}
	a.Evaluate(ctx)
	if got := f.target(); got != 2 {
		t.Fatalf("after first evaluation target = %d, want 2", got)
	}
	c.Add(time.Second)
	a.Evaluate(ctx) // the new instance is still pending
	if got := f.target(); got != 2 {
		t.Fatalf("stepped while pending: target = %d", got)
	}
	f.becomeReady()
	a.Evaluate(ctx) // ready, but the 15 s cooldown has not passed
	if got := f.target(); got != 2 {
		t.Fatalf("stepped inside cooldown: target = %d", got)
	}
	c.Add(DefaultScaleOutCooldown)
	a.Evaluate(ctx)
	if got := f.target(); got != 3 {
		t.Fatalf("no second step after cooldown with the alert still firing: target = %d", got)
	}
	f.becomeReady()
	c.Add(DefaultScaleOutCooldown)
	a.Evaluate(ctx)
	if got := f.target(); got != 3 {
		t.Fatalf("went past max: %d", got)
	}

	var got []string
	for _, d := range decisions(t, st) {
		got = append(got, d.Outcome+": "+d.Reason)
	}
	want := []string{
		`scaled: yes: "app_overloaded" firing; target 1 -> 2`,
		`pending: no: 1 instance still pending`,
		`cooldown: no: scale-out cooldown 14s left`,
		`scaled: yes: "app_overloaded" firing; target 2 -> 3`,
		`at_max: no: at max (3)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("decision log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := testutil.ToFloat64(a.metrics.decisions.WithLabelValues(DirOut, OutcomeScaled)); n != 2 {
		t.Errorf("skyfleet_scaling_decisions_total{direction=out,outcome=scaled} = %v, want 2", n)
	}
}

// TestStaleAlertStops: a firing alert that is not re-delivered stops counting after StaleAfter.
func TestStaleAlertStops(t *testing.T) {
	ctx := context.Background()
	f := newFakeEngine()
	c := &clock{now: t0}
	a, st := newTestAutoscaler(t, f, c, nil)
	a.Receive(ctx, []*Alert{firing(KindOverloaded, c)})
	a.Evaluate(ctx)
	f.becomeReady()
	c.Add(5*time.Minute + time.Second)
	a.Evaluate(ctx)
	if got := f.target(); got != 2 {
		t.Fatalf("stale alert stepped: target = %d", got)
	}
	if len(a.Active()) != 0 {
		t.Fatalf("stale alert still active: %+v", a.Active())
	}
	ds := decisions(t, st)
	last := ds[len(ds)-1]
	if last.Outcome != OutcomeStale || !strings.Contains(last.Reason, "treated as resolved") {
		t.Fatalf("last decision = %+v, want stale", last)
	}
}

// TestResolvedAndStaleKeepTheTarget: the decisions that end an alert record the size the node
// stays at as their from and to, not zero.
func TestResolvedAndStaleKeepTheTarget(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		end     func(a *Autoscaler, c *clock)
		outcome string
	}{
		{"resolved", func(a *Autoscaler, c *clock) {
			r := firing(KindOverloaded, c)
			r.Firing = false
			a.Receive(ctx, []*Alert{r})
		}, OutcomeResolved},
		{"stale", func(a *Autoscaler, c *clock) {
			c.Add(5*time.Minute + time.Second)
			a.Evaluate(ctx)
		}, OutcomeStale},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeEngine()
			c := &clock{now: t0}
			a, st := newTestAutoscaler(t, f, c, nil)
			a.Receive(ctx, []*Alert{firing(KindOverloaded, c)})
			a.Evaluate(ctx) // 1 -> 2
			f.becomeReady()
			tc.end(a, c)
			ds := decisions(t, st)
			last := ds[len(ds)-1]
			if last.Outcome != tc.outcome || last.From != 2 || last.To != 2 {
				t.Fatalf("last decision = %+v, want %s 2->2", last, tc.outcome)
			}
		})
	}
}

// TestOppositeAlertsDoNothing: overloaded and underloaded at once resolve to no action.
func TestOppositeAlertsDoNothing(t *testing.T) {
	ctx := context.Background()
	f := newFakeEngine()
	f.nodes[infraID+"/app"].Target, f.nodes[infraID+"/app"].Ready = 2, 2
	c := &clock{now: t0}
	a, st := newTestAutoscaler(t, f, c, nil)
	a.Receive(ctx, []*Alert{firing(KindOverloaded, c), firing(KindUnderloaded, c)})
	a.Evaluate(ctx)
	if got := f.target(); got != 2 {
		t.Fatalf("target changed to %d", got)
	}
	ds := decisions(t, st)
	if len(ds) != 1 || ds[0].Outcome != OutcomeConflict {
		t.Fatalf("decisions = %+v", ds)
	}
}

// TestFlappingRespectsCooldown: an alert that resolves and fires again does not reset the
// cooldown, so flapping cannot step faster than the cooldown allows.
func TestFlappingRespectsCooldown(t *testing.T) {
	ctx := context.Background()
	f := newFakeEngine()
	c := &clock{now: t0}
	a, _ := newTestAutoscaler(t, f, c, nil)
	for i := 0; i < 5; i++ {
		a.Receive(ctx, []*Alert{firing(KindOverloaded, c)})
		a.Evaluate(ctx)
		f.becomeReady()
		resolved := firing(KindOverloaded, c)
		resolved.Firing = false
		a.Receive(ctx, []*Alert{resolved})
		a.Evaluate(ctx)
		c.Add(2 * time.Second)
	}
	if got := f.target(); got != 2 {
		t.Fatalf("flapping alert stepped %d times within one cooldown", got-1)
	}
}

func TestUnknownTargetsRefused(t *testing.T) {
	ctx := context.Background()
	f := newFakeEngine()
	c := &clock{now: t0}
	a, st := newTestAutoscaler(t, f, c, nil)
	bad := firing(KindOverloaded, c)
	bad.Node = "nosuch"
	otherInfra := firing(KindOverloaded, c)
	otherInfra.InfraID = "nope"
	res := a.Receive(ctx, []*Alert{bad, otherInfra})
	if res.Accepted != 0 || len(res.Rejected) != 2 {
		t.Fatalf("Receive = %+v", res)
	}
	if !strings.Contains(res.Rejected[0].Reason, `node "nosuch" does not exist`) || !strings.Contains(res.Rejected[1].Reason, `infrastructure "nope" does not exist`) {
		t.Fatalf("reasons = %+v", res.Rejected)
	}
	a.Evaluate(ctx)
	if len(f.reqs) != 0 || len(decisions(t, st)) != 0 || len(a.Active()) != 0 {
		t.Fatal("refused alerts changed state")
	}
}

func TestWebhookHandlerRecordedPayloads(t *testing.T) {
	ctx := context.Background()
	f := newFakeEngine()
	c := &clock{now: time.Date(2026, 11, 29, 5, 55, 0, 0, time.UTC)}
	a, _ := newTestAutoscaler(t, f, c, nil)
	srv := httptest.NewServer(a.WebhookHandler(nil))
	defer srv.Close()

	post := func(file string) (int, map[string]any) {
		body, err := os.ReadFile("testdata/payloads/" + file)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(srv.URL, "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	code, out := post("alertmanager-0.25-webhook-firing.json")
	if code != 200 || out["accepted"] != 1.0 {
		t.Fatalf("firing webhook: %d %v", code, out)
	}
	a.Evaluate(ctx)
	if f.target() != 2 {
		t.Fatalf("target = %d after firing webhook", f.target())
	}
	code, out = post("alertmanager-0.25-webhook-resolved.json")
	if code != 200 || out["resolved"] != 1.0 {
		t.Fatalf("resolved webhook: %d %v", code, out)
	}
	if len(a.Active()) != 0 {
		t.Fatalf("alert still active after resolution: %+v", a.Active())
	}
}

func TestAlertsV2HandlerRecordedPayloads(t *testing.T) {
	ctx := context.Background()
	f := newFakeEngine()
	c := &clock{now: time.Date(2026, 11, 29, 5, 55, 0, 0, time.UTC)}
	a, _ := newTestAutoscaler(t, f, c, nil)
	h := a.AlertsV2Handler(nil)
	do := func(file string) *httptest.ResponseRecorder {
		body, err := os.ReadFile("testdata/payloads/" + file)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v2/alerts", strings.NewReader(string(body))))
		return rec
	}
	if rec := do("prometheus-2.42-v2-firing.json"); rec.Code != 200 {
		t.Fatalf("firing: %d %s", rec.Code, rec.Body)
	}
	if len(a.Active()) != 1 {
		t.Fatal("firing alert not active")
	}
	a.Evaluate(ctx)
	// Prometheus sends the resolution with endsAt = resolution time, before "now".
	c.now = time.Date(2026, 11, 29, 5, 57, 1, 0, time.UTC)
	if rec := do("prometheus-2.42-v2-resolved.json"); rec.Code != 200 {
		t.Fatalf("resolved: %d %s", rec.Code, rec.Body)
	}
	if len(a.Active()) != 0 {
		t.Fatalf("alert still active: %+v", a.Active())
	}
}

func TestIntakeRejectsBadInput(t *testing.T) {
	f := newFakeEngine()
	c := &clock{now: t0}
	a, _ := newTestAutoscaler(t, f, c, nil)
	tests := []struct {
		name    string
		h       http.Handler
		body    string
		code    int
		message string
	}{
		{"empty", a.WebhookHandler(nil), "", 400, "empty body"},
		{"malformed", a.WebhookHandler(nil), "{", 400, "malformed JSON"},
		{"old version", a.WebhookHandler(nil), `{"version":"3","alerts":[]}`, 400, `payload version \"3\" is not supported`},
		{"bad labels", a.WebhookHandler(nil), `{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alert":"hot","node":"app"}}]}`, 422, "all 1 alerts refused"},
		{"v2 unrendered infra id", a.AlertsV2Handler(nil), `[{"labels":{"alert":"overloaded","node":"app","infra_id":"{{infra_id}}"}}]`, 422, "all 1 alerts refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.h.ServeHTTP(rec, httptest.NewRequest("POST", "/", strings.NewReader(tt.body)))
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.message) {
				t.Fatalf("got %d %s, want %d containing %q", rec.Code, rec.Body, tt.code, tt.message)
			}
		})
	}
	if len(f.reqs) != 0 || len(a.Active()) != 0 {
		t.Fatal("bad input changed state")
	}
}

func TestFromLabelsMessages(t *testing.T) {
	_, err := fromLabels(map[string]string{"alert": "hot", "step": "0"})
	want := `label "alert" is "hot" (want overloaded or underloaded); label "infra_id" is missing (want the infrastructure id; write infra_id="{{infra_id}}" in the rule); label "node" is missing (want the node name, e.g. app); label "step" is "0" (want an integer from 1 to 100)`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	f := newFakeEngine()
	c := &clock{now: t0}
	a, _ := newTestAutoscaler(t, f, c, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	a.Receive(ctx, []*Alert{firing(KindOverloaded, c)})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
