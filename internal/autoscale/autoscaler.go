package autoscale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyfleet/skyfleet/internal/store"
)

// ErrUnknown is wrapped by NodeSource errors for an infrastructure or node that does not exist.
var ErrUnknown = errors.New("unknown infrastructure or node")

// Scaler applies scaling requests; the engine implements it.
type Scaler interface {
	Scale(ctx context.Context, req store.ScalingRequest) (ScaleOutcome, error)
}

// ScaleOutcome is the engine's answer to one scaling request.
type ScaleOutcome struct {
	Applied bool
	Reason  string
	From    int
	Target  int
	Pending int
}

// NodeSource tells the autoscaler about nodes. Errors for unknown infrastructures or nodes
// wrap ErrUnknown.
type NodeSource interface {
	NodeState(ctx context.Context, infraID, node string) (NodeState, error)
	// TargetNodes lists every node that has a target-tracking policy.
	TargetNodes(ctx context.Context) ([]TargetNode, error)
}

// Options configure an Autoscaler.
type Options struct {
	Scaler Scaler
	Nodes  NodeSource
	// Store keeps the decision log.
	Store      store.Store
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Clock      func() time.Time
	// Interval is how often active alerts are re-evaluated (default 1s).
	Interval time.Duration
	// StaleAfter: an alert not received again for this long (and past its own endsAt) is
	// treated as resolved (default 5m). Keep Alertmanager's repeat_interval below it.
	StaleAfter time.Duration
	// RepeatEvery: an unchanged "no" decision is stored again at most this often (default 30s).
	RepeatEvery time.Duration
	// Query runs PromQL for target tracking; nil uses HTTPQuerier.
	Query Querier
}

// Autoscaler keeps the active alerts, evaluates the policy and records decisions.
type Autoscaler struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	wake    chan struct{}
	metrics *metrics

	mu     sync.Mutex
	alerts map[alertKey]*Alert
	nodes  map[nodeKey]*nodeTrack
}

type nodeKey struct{ infra, node string }

type nodeTrack struct {
	lastOut, lastIn time.Time
	lastRec         struct {
		dir, outcome, reason string
		at                   time.Time
	}
	target *targetTrack
}

type metrics struct {
	decisions *prometheus.CounterVec
	alerts    *prometheus.CounterVec
}

// New returns an Autoscaler; call Run to start evaluating.
func New(opts Options) (*Autoscaler, error) {
	if opts.Scaler == nil || opts.Nodes == nil || opts.Store == nil {
		return nil, errors.New("autoscale: Scaler, Nodes and Store are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = 5 * time.Minute
	}
	if opts.RepeatEvery <= 0 {
		opts.RepeatEvery = 30 * time.Second
	}
	if opts.Query == nil {
		opts.Query = &HTTPQuerier{}
	}
	a := &Autoscaler{
		opts:   opts,
		log:    opts.Logger.With("component", "autoscale"),
		now:    opts.Clock,
		wake:   make(chan struct{}, 1),
		alerts: map[alertKey]*Alert{},
		nodes:  map[nodeKey]*nodeTrack{},
		metrics: &metrics{
			decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "skyfleet_scaling_decisions_total",
				Help: "Autoscaling decisions recorded, by direction and outcome.",
			}, []string{"direction", "outcome"}),
			alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "skyfleet_alerts_received_total",
				Help: "Alerts received, by source and result (accepted, resolved, rejected).",
			}, []string{"source", "result"}),
		},
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{a.metrics.decisions, a.metrics.alerts} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("autoscale: register metrics: %w", err)
			}
		}
	}
	return a, nil
}

// Receive takes parsed alerts. Firing alerts for existing nodes become active; resolved ones
// end the matching active alert. Alerts naming an unknown infrastructure or node are refused
// and change nothing.
func (a *Autoscaler) Receive(ctx context.Context, alerts []*Alert) ReceiveResult {
	res := ReceiveResult{Rejected: []RejectedAlert{}}
	changed := false
	for _, al := range alerts {
		if al.Firing {
			if _, err := a.opts.Nodes.NodeState(ctx, al.InfraID, al.Node); err != nil {
				reason := err.Error()
				a.log.Warn("alert refused", "alert", al.Name, "infra_id", al.InfraID, "node", al.Node, "reason", reason)
				a.metrics.alerts.WithLabelValues(al.Source, "rejected").Inc()
				res.Rejected = append(res.Rejected, RejectedAlert{Labels: al.Labels, Reason: reason})
				continue
			}
		}
		a.mu.Lock()
		k := al.key()
		_, wasActive := a.alerts[k]
		if al.Firing {
			a.alerts[k] = al
			if !wasActive {
				a.log.Info("alert firing", "alert", al.Name, "kind", al.Kind, "infra_id", al.InfraID, "node", al.Node, "source", al.Source)
			}
		} else {
			delete(a.alerts, k)
		}
		a.mu.Unlock()
		result := "accepted"
		if al.Firing {
			res.Accepted++
		} else {
			result = "resolved"
			res.Resolved++
			if wasActive {
				a.log.Info("alert resolved", "alert", al.Name, "infra_id", al.InfraID, "node", al.Node)
				t := a.targetOf(ctx, al.InfraID, al.Node)
				a.record(ctx, al.InfraID, al.Node, decisionFor(al, OutcomeResolved, fmt.Sprintf("%q resolved", al.Name)), t, t, true)
			}
		}
		a.metrics.alerts.WithLabelValues(al.Source, result).Inc()
		changed = true
	}
	if changed {
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
	return res
}

// ReceiveResult says what became of delivered alerts.
type ReceiveResult struct {
	Accepted int             `json:"accepted"`
	Resolved int             `json:"resolved"`
	Rejected []RejectedAlert `json:"rejected"`
}

// Active returns the active alerts, sorted, for status pages.
func (a *Autoscaler) Active() []Alert {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Alert, 0, len(a.alerts))
	for _, al := range a.alerts {
		out = append(out, *al)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].InfraID != out[j].InfraID {
			return out[i].InfraID < out[j].InfraID
		}
		if out[i].Node != out[j].Node {
			return out[i].Node < out[j].Node
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Run evaluates active alerts every Interval and at once when alerts arrive, and runs the
// target-tracking policies, until ctx is done.
func (a *Autoscaler) Run(ctx context.Context) error {
	t := time.NewTicker(a.opts.Interval)
	defer t.Stop()
	for {
		a.Evaluate(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-a.wake:
		}
	}
}

// Evaluate runs one evaluation of every active alert and every due target-tracking policy.
func (a *Autoscaler) Evaluate(ctx context.Context) {
	now := a.now()
	type group struct{ over, under *Alert }
	groups := map[nodeKey]*group{}
	var stale []*Alert

	a.mu.Lock()
	for k, al := range a.alerts {
		if now.After(a.validUntil(al)) {
			delete(a.alerts, k)
			stale = append(stale, al)
			continue
		}
		nk := nodeKey{al.InfraID, al.Node}
		g := groups[nk]
		if g == nil {
			g = &group{}
			groups[nk] = g
		}
		switch al.Kind {
		case KindOverloaded:
			if g.over == nil || al.Name < g.over.Name {
				g.over = al
			}
		case KindUnderloaded:
			if g.under == nil || al.Name < g.under.Name {
				g.under = al
			}
		}
	}
	a.mu.Unlock()

	for _, al := range stale {
		dir := DirOut
		if al.Kind == KindUnderloaded {
			dir = DirIn
		}
		a.log.Info("alert stale", "alert", al.Name, "infra_id", al.InfraID, "node", al.Node)
		t := a.targetOf(ctx, al.InfraID, al.Node)
		a.record(ctx, al.InfraID, al.Node, Verdict{Direction: dir, Outcome: OutcomeStale, Alert: al,
			Reason: fmt.Sprintf("%q not received since %s; treated as resolved", al.Name, al.Received.UTC().Format(time.RFC3339))}, t, t, true)
	}

	keys := make([]nodeKey, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].infra != keys[j].infra {
			return keys[i].infra < keys[j].infra
		}
		return keys[i].node < keys[j].node
	})
	for _, k := range keys {
		g := groups[k]
		a.evaluateNode(ctx, now, k, g.over, g.under)
	}
	a.evaluateTargets(ctx, now)
}

// targetOf is the node's current target, for decisions that change nothing (a resolved or
// stale alert) so that their from and to read as the size the node stays at; 0 when the node
// cannot be read.
func (a *Autoscaler) targetOf(ctx context.Context, infraID, node string) int {
	ns, err := a.opts.Nodes.NodeState(ctx, infraID, node)
	if err != nil {
		return 0
	}
	return ns.Target
}

func (a *Autoscaler) validUntil(al *Alert) time.Time {
	until := al.Received.Add(a.opts.StaleAfter)
	if al.EndsAt.After(until) {
		until = al.EndsAt
	}
	return until
}

func (a *Autoscaler) track(k nodeKey) *nodeTrack {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.nodes[k]
	if t == nil {
		t = &nodeTrack{}
		a.nodes[k] = t
	}
	return t
}

func (a *Autoscaler) evaluateNode(ctx context.Context, now time.Time, k nodeKey, over, under *Alert) {
	ns, err := a.opts.Nodes.NodeState(ctx, k.infra, k.node)
	if err != nil {
		if errors.Is(err, ErrUnknown) {
			// The infrastructure or node went away: forget its alerts.
			a.mu.Lock()
			for ak := range a.alerts {
				if ak.infra == k.infra && ak.node == k.node {
					delete(a.alerts, ak)
				}
			}
			delete(a.nodes, k)
			a.mu.Unlock()
			return
		}
		a.record(ctx, k.infra, k.node, Verdict{Direction: DirNone, Outcome: OutcomeError, Reason: "no: cannot read node state: " + err.Error()}, 0, 0, false)
		return
	}
	tr := a.track(k)
	a.mu.Lock()
	lastOut, lastIn := tr.lastOut, tr.lastIn
	a.mu.Unlock()
	v := Decide(Input{Now: now, Node: ns, Overloaded: over, Underloaded: under, LastOut: lastOut, LastIn: lastIn})
	if v.Outcome != OutcomeScaled {
		a.record(ctx, k.infra, k.node, v, ns.Target, ns.Target, false)
		return
	}
	a.apply(ctx, now, k, tr, v, ns)
}

// apply asks the engine to change the target by v.Delta and records the decision with the
// engine's answer.
func (a *Autoscaler) apply(ctx context.Context, now time.Time, k nodeKey, tr *nodeTrack, v Verdict, ns NodeState) {
	var res ScaleOutcome
	var err error
	if v.Delta > 0 {
		res, err = a.opts.Scaler.Scale(ctx, store.ScalingRequest{InfraID: k.infra, Node: k.node, Kind: store.ScaleUp, Count: v.Delta, Source: "autoscale", At: now})
	} else {
		res, err = a.opts.Scaler.Scale(ctx, store.ScalingRequest{InfraID: k.infra, Node: k.node, Kind: store.ScaleTo, Count: ns.Target + v.Delta, Source: "autoscale", At: now})
	}
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
	a.log.Info("scaled", "infra_id", k.infra, "node", k.node, "direction", v.Direction, "from", res.From, "to", res.Target, "reason", v.Reason)
	a.record(ctx, k.infra, k.node, v, res.From, res.Target, true)
}

func decisionFor(al *Alert, outcome, reason string) Verdict {
	dir := DirOut
	if al.Kind == KindUnderloaded {
		dir = DirIn
	}
	return Verdict{Direction: dir, Outcome: outcome, Alert: al, Reason: reason}
}

// record stores the decision unless it repeats the node's previous one within RepeatEvery
// (a firing alert is evaluated every second; the log keeps changes, not every tick).
func (a *Autoscaler) record(ctx context.Context, infraID, node string, v Verdict, from, to int, always bool) {
	now := a.now()
	tr := a.track(nodeKey{infraID, node})
	a.mu.Lock()
	last := tr.lastRec
	same := last.dir == v.Direction && last.outcome == v.Outcome && now.Sub(last.at) < a.opts.RepeatEvery
	if same && !always {
		a.mu.Unlock()
		return
	}
	tr.lastRec.dir, tr.lastRec.outcome, tr.lastRec.reason, tr.lastRec.at = v.Direction, v.Outcome, v.Reason, now
	a.mu.Unlock()

	d := &store.Decision{InfraID: infraID, At: now, Node: node, Direction: v.Direction, Outcome: v.Outcome, From: from, To: to, Reason: v.Reason, Cause: causeOf(v)}
	a.metrics.decisions.WithLabelValues(v.Direction, v.Outcome).Inc()
	err := a.opts.Store.Update(ctx, func(tx store.Tx) error { return tx.AddDecision(d) })
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		a.log.Warn("cannot store decision", "infra_id", infraID, "node", node, "err", err)
	}
}

func causeOf(v Verdict) map[string]any {
	if v.Alert == nil {
		return v.cause
	}
	al := v.Alert
	c := map[string]any{
		"alert":    al.Name,
		"kind":     al.Kind,
		"source":   al.Source,
		"labels":   al.Labels,
		"received": al.Received.UTC().Format(time.RFC3339Nano),
	}
	if !al.StartsAt.IsZero() {
		c["starts_at"] = al.StartsAt.UTC().Format(time.RFC3339)
	}
	return c
}
