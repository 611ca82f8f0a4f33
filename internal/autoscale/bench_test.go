package autoscale

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/cloud/sim"
	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/engine"
	"github.com/skyfleet/skyfleet/internal/store"
	"github.com/skyfleet/skyfleet/internal/template"
)

// timedDriver binds sim providers whose Create first reports the time it was first called
// for a token (the engine may repeat a Create with the same token; only the first counts).
type timedDriver struct {
	sim     *sim.Sim
	created chan time.Time

	mu   sync.Mutex
	seen map[string]bool
}

func (d *timedDriver) Bind(resource map[string]any, creds *cloud.Credentials) (cloud.Provider, error) {
	p, err := d.sim.Bind(resource, creds)
	if err != nil {
		return nil, err
	}
	return &timedProvider{Provider: p, d: d}, nil
}

type timedProvider struct {
	cloud.Provider
	d *timedDriver
}

func (p *timedProvider) Create(ctx context.Context, spec cloud.InstanceSpec) (string, error) {
	now := time.Now()
	p.d.mu.Lock()
	first := !p.d.seen[spec.Token]
	p.d.seen[spec.Token] = true
	p.d.mu.Unlock()
	if first {
		select {
		case p.d.created <- now:
		default:
		}
	}
	return p.Provider.Create(ctx, spec)
}

// engineScaler presents the engine to the autoscaler, as the daemon does.
type engineScaler struct{ e *engine.Engine }

func (s engineScaler) Scale(ctx context.Context, req store.ScalingRequest) (ScaleOutcome, error) {
	r, err := s.e.Scale(ctx, req)
	if err != nil {
		return ScaleOutcome{}, err
	}
	return ScaleOutcome{Applied: r.Applied, Reason: r.Reason, From: r.From, Target: r.Target, Pending: r.Pending}, nil
}

const benchNodeDefs = `'node_def:app':
  - resource: {type: sim}
`

const benchInfra = `user_id: bench
infra_name: alert-to-create
nodes:
  - name: app
    type: app
    scaling: {min: 1, max: 100000, scale_out_cooldown: 1ms}
`

// BenchmarkAlertToCreate measures the latency from an Alertmanager webhook arriving at the
// intake handler to the provider's Create being called for the new instance, through the real
// engine (bbolt store on disk, fsync on) and the sim provider (zero boot time). One op is one
// alert: the node is ready and idle before it, and the alert is resolved after the Create
// (untimed), so each op measures one step from a standing start. Reports p50 and p99.
func BenchmarkAlertToCreate(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	drv := &timedDriver{sim: sim.New(sim.Options{}), created: make(chan time.Time, 1), seen: map[string]bool{}}
	providers := cloud.NewRegistry()
	if err := providers.Register("sim", drv); err != nil {
		b.Fatal(err)
	}
	eng, err := engine.New(engine.Options{Store: st, Providers: providers, Renderer: template.New(template.Options{}),
		Resync: 20 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	nodes := &StoreNodes{Store: st}
	a, err := New(Options{Scaler: engineScaler{eng}, Nodes: nodes, Store: st})
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = eng.Run(ctx) }()
	go func() { defer wg.Done(); _ = a.Run(ctx) }()
	defer wg.Wait()
	defer cancel()

	defs, _, err := descriptor.ParseNodeDefs("nodes.yaml", []byte(benchNodeDefs), descriptor.ImportOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := eng.ImportNodeDefs(ctx, defs, "nodes.yaml"); err != nil {
		b.Fatal(err)
	}
	id, _, err := eng.Submit(ctx, "", "infra.yaml", []byte(benchInfra))
	if err != nil {
		b.Fatal(err)
	}
	<-drv.created // the first instance
	idle := func(target int) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			ns, err := nodes.NodeState(ctx, id, "app")
			if err != nil {
				b.Fatal(err)
			}
			if ns.Target == target && ns.Ready == target && ns.Pending == 0 {
				return
			}
			if time.Now().After(deadline) {
				b.Fatalf("node not idle at %d within 30s: %+v", target, ns)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	webhook := func(status string) string {
		return fmt.Sprintf(`{"version":"4","status":%q,"receiver":"skyfleet","groupKey":"{}","alerts":[{"status":%q,
		  "labels":{"alertname":"app_overloaded","alert":"overloaded","node":"app","infra_id":%q},"startsAt":"2026-11-29T06:00:00Z"}]}`, status, status, id)
	}
	handler := a.WebhookHandler(nil)
	post := func(body string) {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/alerts/alertmanager", strings.NewReader(body)))
		if rec.Code != http.StatusOK {
			b.Fatalf("webhook: %d %s", rec.Code, rec.Body)
		}
	}
	firing, resolved := webhook("firing"), webhook("resolved")

	var lat []time.Duration
	target := 1
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		idle(target)
		b.StartTimer()
		start := time.Now()
		post(firing)
		var created time.Time
		select {
		case created = <-drv.created:
		case <-time.After(30 * time.Second):
			b.Fatal("no Create within 30s of the alert")
		}
		b.StopTimer()
		lat = append(lat, created.Sub(start))
		post(resolved)
		target++
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// benchNodes is a NodeSource and Scaler over n nodes of one infrastructure whose instances
// are ready at once, so that only the cooldown holds a node back.
type benchNodes struct {
	mu    sync.Mutex
	nodes map[string]*NodeState
}

func (f *benchNodes) NodeState(_ context.Context, _, node string) (NodeState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.nodes[node]
	if !ok {
		return NodeState{}, fmt.Errorf("node %q: %w", node, ErrUnknown)
	}
	return *n, nil
}

func (f *benchNodes) TargetNodes(context.Context) ([]TargetNode, error) { return nil, nil }

func (f *benchNodes) Scale(_ context.Context, r store.ScalingRequest) (ScaleOutcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.nodes[r.Node]
	from := n.Target
	if r.Kind == store.ScaleUp {
		n.Target = min(n.Target+r.Count, n.Max)
	} else {
		n.Target = max(min(r.Count, n.Max), n.Min)
	}
	n.Ready = n.Target
	return ScaleOutcome{Applied: n.Target != from, From: from, Target: n.Target}, nil
}

// BenchmarkDecisions1000Nodes measures the decisions per second the policy engine sustains
// with 1,000 nodes, each under a firing overloaded alert: one op is one Evaluate over the
// 1,000 active alerts, with a real bbolt store on disk (fsync on) for the decision log.
//
//   - stepping: the clock passes the cooldown between evaluations, so every node steps every
//     time and every decision is a stored "scaled" decision (one transaction each).
//   - holding: every node is inside its cooldown, so each evaluation decides "no" 1,000 times
//     and stores none of them again (an unchanged "no" is stored at most every 30 s).
func BenchmarkDecisions1000Nodes(b *testing.B) {
	const n = 1000
	for _, mode := range []string{"stepping", "holding"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			st, err := store.Open(b.TempDir(), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			if err := st.Update(ctx, func(tx store.Tx) error {
				return tx.PutInfra(&store.InfraRecord{ID: infraID, Phase: store.InfraReady})
			}); err != nil {
				b.Fatal(err)
			}
			f := &benchNodes{nodes: map[string]*NodeState{}}
			c := &clock{now: t0}
			a, err := New(Options{Scaler: f, Nodes: f, Store: st, Clock: c.Now})
			if err != nil {
				b.Fatal(err)
			}
			alerts := make([]*Alert, 0, n)
			for i := range n {
				node := fmt.Sprintf("app-%04d", i)
				f.nodes[node] = &NodeState{Min: 1, Max: 1 << 30, Target: 1, Ready: 1, ScaleOutCooldown: time.Second}
				alerts = append(alerts, &Alert{Name: node + "_overloaded", Kind: KindOverloaded, InfraID: infraID, Node: node,
					Firing: true, Source: "alertmanager", Received: c.Now(), EndsAt: t0.Add(24 * time.Hour),
					Labels: map[string]string{"alert": KindOverloaded, "node": node, "infra_id": infraID}})
			}
			if res := a.Receive(ctx, alerts); res.Accepted != n {
				b.Fatalf("accepted %d of %d alerts: %+v", res.Accepted, n, res.Rejected)
			}
			a.Evaluate(ctx) // every node steps once
			if mode == "holding" {
				a.Evaluate(ctx) // every node is in its cooldown: the first "no" is stored
			}
			stored := func() int {
				var ds []*store.Decision
				_ = st.View(ctx, func(tx store.Tx) error { ds, err = tx.Decisions(infraID, 0, 0); return err })
				return len(ds)
			}
			before := stored()
			b.ResetTimer()
			for b.Loop() {
				if mode == "stepping" {
					c.Add(2 * time.Second)
				}
				a.Evaluate(ctx)
			}
			b.StopTimer()
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "decisions/s")
			after := stored()
			switch mode {
			case "stepping":
				if after-before != n*b.N {
					b.Fatalf("stored %d decisions in %d evaluations, want %d", after-before, b.N, n*b.N)
				}
			case "holding":
				// Repeats of an unchanged "no" within 30 s are not stored.
				if after != before {
					b.Fatalf("stored %d decisions while holding, want none", after-before)
				}
			}
		})
	}
}
