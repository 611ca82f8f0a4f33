package autoscale

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/store"
)

// Defaults of target tracking, after Kubernetes' HPA: a 10% tolerance band and a 5 minute
// scale-in stabilization window; queries every 15 s.
const (
	DefaultTargetInterval       = 15 * time.Second
	DefaultTargetTolerance      = 0.1
	DefaultScaleInStabilization = 5 * time.Minute
)

// TargetNode is a node with a target-tracking policy; Policy.Query is already rendered.
type TargetNode struct {
	InfraID string
	Node    string
	Policy  descriptor.TargetTracking
}

// Querier evaluates an instant PromQL query against the Prometheus-compatible API at source
// and returns its single numeric value.
type Querier interface {
	Query(ctx context.Context, source, query string, at time.Time) (float64, error)
}

// HTTPQuerier queries any Prometheus-compatible HTTP API (/api/v1/query).
type HTTPQuerier struct {
	// Client is the HTTP client; nil uses a client with a 10 s timeout.
	Client *http.Client
}

// Query implements Querier. The query must yield a scalar or a vector of exactly one sample.
func (q *HTTPQuerier) Query(ctx context.Context, source, query string, at time.Time) (float64, error) {
	hc := q.Client
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	c, err := api.NewClient(api.Config{Address: source, Client: hc})
	if err != nil {
		return 0, fmt.Errorf("query %s: %w", source, err)
	}
	v, _, _, err := promv1.NewAPI(c).Query(ctx, query, at)
	if err != nil {
		return 0, fmt.Errorf("query %s: %w", source, err)
	}
	switch r := v.(type) {
	case *model.Scalar:
		return float64(r.Value), nil
	case model.Vector:
		if len(r) == 0 {
			return 0, errors.New("query returned no data")
		}
		if len(r) > 1 {
			return 0, fmt.Errorf("query returned %d series; want one (aggregate it, e.g. avg(...))", len(r))
		}
		return float64(r[0].Value), nil
	default:
		return 0, fmt.Errorf("query returned a %s; want a scalar or a one-sample vector", v.Type())
	}
}

type targetTrack struct {
	next time.Time
	recs []recommendation
}

type recommendation struct {
	at      time.Time
	desired int
}

// TargetInput is one evaluation of a target-tracking policy.
type TargetInput struct {
	Now      time.Time
	Node     NodeState
	Policy   descriptor.TargetTracking
	Measured float64
	// Recent recommendations inside the scale-in stabilization window (oldest first).
	Recent []int
}

// DecideTarget computes desired = ceil(current × measured / value), ignoring deviations within
// the tolerance, bounding the change by MaxStep, clamping to min..max, and scaling in only to
// the highest recommendation of the stabilization window. It returns the verdict and the raw
// recommendation to remember.
func DecideTarget(in TargetInput) (Verdict, int) {
	p, n := in.Policy, in.Node
	tol := p.Tolerance
	if tol <= 0 {
		tol = DefaultTargetTolerance
	}
	current := n.Target
	cause := map[string]any{"query": p.Query, "measured": in.Measured, "target_value": p.Value, "current": current}
	if n.Pending > 0 {
		return Verdict{Direction: DirNone, Outcome: OutcomePending, cause: cause,
			Reason: fmt.Sprintf("no: %s still pending", plural(n.Pending, "instance"))}, current
	}
	ratio := in.Measured / p.Value
	if math.IsNaN(ratio) || math.IsInf(ratio, 0) {
		return Verdict{Direction: DirNone, Outcome: OutcomeError, cause: cause,
			Reason: fmt.Sprintf("no: measured value %v is not a number", in.Measured)}, current
	}
	if math.Abs(ratio-1) <= tol {
		return Verdict{Direction: DirNone, Outcome: OutcomeWithinTolerance, cause: cause,
			Reason: fmt.Sprintf("no: %.3g is within %.0f%% of the target %.3g", in.Measured, tol*100, p.Value)}, current
	}
	raw := int(math.Ceil(float64(max(current, 1)) * ratio))
	desired := raw
	if p.MaxStep > 0 {
		desired = max(min(desired, current+p.MaxStep), current-p.MaxStep)
	}
	desired = max(min(desired, n.Max), n.Min)
	cause["desired"] = desired
	if desired < current {
		for _, r := range in.Recent {
			if r > desired {
				desired = min(r, current)
			}
		}
		if desired >= current {
			return Verdict{Direction: DirIn, Outcome: OutcomeStabilizing, cause: cause,
				Reason: "no: a higher recommendation is inside the scale-in stabilization window"}, raw
		}
	}
	switch {
	case desired > current:
		return Verdict{Direction: DirOut, Outcome: OutcomeScaled, Delta: desired - current, cause: cause,
			Reason: fmt.Sprintf("yes: %.3g vs target %.3g; target %d -> %d", in.Measured, p.Value, current, desired)}, raw
	case desired < current:
		return Verdict{Direction: DirIn, Outcome: OutcomeScaled, Delta: desired - current, cause: cause,
			Reason: fmt.Sprintf("yes: %.3g vs target %.3g; target %d -> %d", in.Measured, p.Value, current, desired)}, raw
	case ratio > 1:
		return Verdict{Direction: DirOut, Outcome: OutcomeAtMax, cause: cause, Reason: fmt.Sprintf("no: at max (%d)", n.Max)}, raw
	default:
		return Verdict{Direction: DirIn, Outcome: OutcomeAtMin, cause: cause, Reason: fmt.Sprintf("no: at min (%d)", n.Min)}, raw
	}
}

func (a *Autoscaler) evaluateTargets(ctx context.Context, now time.Time) {
	nodes, err := a.opts.Nodes.TargetNodes(ctx)
	if err != nil {
		a.log.Warn("cannot list target-tracking nodes", "err", err)
		return
	}
	for _, tn := range nodes {
		k := nodeKey{tn.InfraID, tn.Node}
		tr := a.track(k)
		a.mu.Lock()
		if tr.target == nil {
			tr.target = &targetTrack{}
		}
		tt := tr.target
		due := !now.Before(tt.next)
		interval := tn.Policy.Interval
		if interval <= 0 {
			interval = DefaultTargetInterval
		}
		if due {
			tt.next = now.Add(interval)
		}
		a.mu.Unlock()
		if !due {
			continue
		}
		a.evaluateTarget(ctx, now, k, tr, tn, min(interval, 10*time.Second))
	}
}

func (a *Autoscaler) evaluateTarget(ctx context.Context, now time.Time, k nodeKey, tr *nodeTrack, tn TargetNode, timeout time.Duration) {
	ns, err := a.opts.Nodes.NodeState(ctx, k.infra, k.node)
	if err != nil {
		return
	}
	qctx, cancel := context.WithTimeout(ctx, timeout)
	measured, err := a.opts.Query.Query(qctx, tn.Policy.Source, tn.Policy.Query, now)
	cancel()
	if err != nil {
		a.record(ctx, k.infra, k.node, Verdict{Direction: DirNone, Outcome: OutcomeError,
			cause:  map[string]any{"query": tn.Policy.Query, "source": tn.Policy.Source},
			Reason: "no: " + err.Error()}, ns.Target, ns.Target, false)
		return
	}
	window := tn.Policy.ScaleInStabilization
	if window <= 0 {
		window = DefaultScaleInStabilization
	}
	a.mu.Lock()
	tt := tr.target
	kept := tt.recs[:0]
	for _, r := range tt.recs {
		if now.Sub(r.at) <= window {
			kept = append(kept, r)
		}
	}
	tt.recs = kept
	recent := make([]int, len(kept))
	for i, r := range kept {
		recent[i] = r.desired
	}
	a.mu.Unlock()

	v, raw := DecideTarget(TargetInput{Now: now, Node: ns, Policy: tn.Policy, Measured: measured, Recent: recent})
	a.mu.Lock()
	tt.recs = append(tt.recs, recommendation{at: now, desired: raw})
	a.mu.Unlock()
	if v.Outcome != OutcomeScaled {
		a.record(ctx, k.infra, k.node, v, ns.Target, ns.Target, false)
		return
	}
	res, err := a.opts.Scaler.Scale(ctx, store.ScalingRequest{InfraID: k.infra, Node: k.node, Kind: store.ScaleTo, Count: ns.Target + v.Delta, Source: "autoscale", At: now})
	switch {
	case err != nil:
		v.Outcome, v.Reason = OutcomeError, "no: scaling request failed: "+err.Error()
		a.record(ctx, k.infra, k.node, v, ns.Target, ns.Target, false)
		return
	case !res.Applied:
		v.Outcome, v.Reason = OutcomeRejected, "no: engine ignored the request: "+res.Reason
		a.record(ctx, k.infra, k.node, v, res.From, res.Target, false)
		return
	}
	a.mu.Lock()
	if v.Delta > 0 {
		tr.lastOut = now
	} else {
		tr.lastIn = now
	}
	a.mu.Unlock()
	a.record(ctx, k.infra, k.node, v, res.From, res.Target, true)
}
