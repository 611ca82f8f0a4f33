package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/skyfleet/skyfleet/internal/autoscale"
	"github.com/skyfleet/skyfleet/internal/store"
)

var update = flag.Bool("update", false, "write the dashboard screenshot to docs/images/dashboard.png")

// loadCurve is a fake metric source for target tracking: it answers a scripted CPU
// percentage, one step per query, holding the last value.
type loadCurve struct {
	mu     sync.Mutex
	values []float64
	n      int
}

func (l *loadCurve) Query(context.Context, string, string, time.Time) (float64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := l.values[min(l.n, len(l.values)-1)]
	l.n++
	return v, nil
}

// queried tells how many queries were answered.
func (l *loadCurve) queried() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// engineScaler gives the autoscaler the engine, as the daemon does.
type engineScaler struct{ s *stack }

func (e engineScaler) Scale(ctx context.Context, req store.ScalingRequest) (autoscale.ScaleOutcome, error) {
	r, err := e.s.eng.Scale(ctx, req)
	return autoscale.ScaleOutcome{Applied: r.Applied, Reason: r.Reason, From: r.From, Target: r.Target, Pending: r.Pending}, err
}

// TestDashboardAutoscaling runs the real autoscaler against the sim cloud (target tracking on
// app from a scripted metric, an overloaded alert on lb sent to the v2 alerts route) and checks
// that the page draws what it decided: the decision log with reasons, the scaling markers,
// the alert markers, the firing alert and the measured series. With -update it also writes
// docs/images/dashboard.png.
func TestDashboardAutoscaling(t *testing.T) {
	ctx := newBrowser(t)
	s := newStack(t, "")
	curve := &loadCurve{values: []float64{42, 58, 96, 97, 92, 85, 74, 71, 66, 63, 61, 38, 34, 52, 57, 59}}
	a, err := autoscale.New(autoscale.Options{
		Scaler:   engineScaler{s},
		Nodes:    &autoscale.StoreNodes{Store: s.st},
		Store:    s.st,
		Logger:   testLogger(t),
		Interval: 100 * time.Millisecond,
		Query:    curve,
	})
	if err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("autoscaler: %v", err)
		}
	})
	s.mux.Handle("POST /api/v2/alerts", a.AlertsV2Handler(nil))
	s.mux.Handle("GET /v1/alerts", a.ActiveHandler())

	id := s.buildFrom("infra_autoscaled.yaml")
	if err := chromedp.Do(ctx, chromedp.Navigate(s.srv.URL+"/ui/#/infra/"+id)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "detail", `document.getElementById('live').dataset.state === 'live'`, 10*time.Second)

	// Halfway through the load curve, lb becomes overloaded.
	for curve.queried() < 6 {
		time.Sleep(50 * time.Millisecond)
	}
	startsAt := time.Now().Add(-2 * time.Second)
	postAlert(t, s.srv.URL, id, startsAt, true)
	waitJS(t, ctx, "firing alert shown", `document.querySelector('.firing li') !== null && document.querySelector('.firing').textContent.includes('LbOverloaded')`, 10*time.Second)
	waitJS(t, ctx, "lb scaled by the alert", `document.querySelector('.node-card[data-node=lb]').dataset.target === '2'`, 20*time.Second)
	for curve.queried() < len(curve.values) {
		time.Sleep(50 * time.Millisecond)
	}
	postAlert(t, s.srv.URL, id, startsAt, false)
	waitJS(t, ctx, "alert resolved", `document.querySelector('.firing li') === null &&
		[...document.querySelectorAll('#decisions tbody tr')].some((r) => r.dataset.outcome === 'resolved')`, 10*time.Second)

	checks := []struct{ what, expr string }{
		{"a scale-out decision with its reason and measured cause", `[...document.querySelectorAll('#decisions tbody tr')].some((r) =>
			r.dataset.outcome === 'scaled' && r.textContent.includes('scaled out') && r.textContent.includes('vs target 60') && r.textContent.includes('measured'))`},
		{"a scale-in decision", `[...document.querySelectorAll('#decisions tbody tr')].some((r) => r.dataset.outcome === 'scaled' && r.textContent.includes('scaled in'))`},
		{"the alert as the lb decision's cause", `[...document.querySelectorAll('#decisions tbody tr')].some((r) => r.textContent.includes('alert LbOverloaded (overloaded)'))`},
		{"newest decision first", `(() => { const s = [...document.querySelectorAll('#decisions tbody tr')].map((r) => Number(r.dataset.seq)); return s.length > 2 && s.every((v, i) => i === 0 || s[i - 1] > v); })()`},
		{"scale markers on the chart", `document.querySelectorAll('#timeline .decision.outcome-scaled').length >= 3`},
		{"alert marker on the chart", `document.querySelectorAll('#timeline .alert-mark').length >= 1`},
		{"measured series on the chart", `document.querySelectorAll('#timeline .measured-point').length >= 5 && document.querySelector('#timeline .target-value') !== null`},
		{"ready lines per node", `document.querySelectorAll('#timeline .ready-line').length === 2`},
	}
	for _, c := range checks {
		waitJS(t, ctx, c.what, c.expr, 10*time.Second)
	}

	// A clean picture: no toast, scrolled to the top.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('toasts').replaceChildren(); window.scrollTo(0, 0); true`)); err != nil {
		t.Fatal(err)
	}
	p := screenshot(t, ctx, "dashboard.png")
	if *update {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join("..", "..", "docs", "images", "dashboard.png")
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", dst)
	}
}

// postAlert sends the seed's overloaded alert for lb to the Alertmanager v2 route, firing or
// resolved, as Prometheus would.
func postAlert(t *testing.T, base, infraID string, startsAt time.Time, firing bool) {
	t.Helper()
	now := time.Now().UTC()
	ends := now.Add(time.Minute)
	if !firing {
		ends = now.Add(-time.Second)
	}
	body, _ := json.Marshal([]map[string]any{{
		"labels":   map[string]string{"alertname": "LbOverloaded", "alert": "overloaded", "node": "lb", "infra_id": infraID},
		"startsAt": startsAt.UTC().Format(time.RFC3339Nano),
		"endsAt":   ends.Format(time.RFC3339Nano),
	}})
	res, err := http.Post(base+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v2/alerts: %s", res.Status)
	}
}
