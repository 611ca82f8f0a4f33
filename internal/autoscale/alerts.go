package autoscale

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Alert is one alert as received from Alertmanager or Prometheus, normalised.
type Alert struct {
	// Name is the alertname label.
	Name string `json:"name"`
	// Kind is the seed's `alert` label: overloaded or underloaded.
	Kind    string `json:"kind"`
	InfraID string `json:"infra_id"`
	Node    string `json:"node"`
	// Step is the optional `step` label (0 when absent).
	Step   int               `json:"step,omitempty"`
	Labels map[string]string `json:"labels"`
	// Firing is false for a resolved alert.
	Firing   bool      `json:"firing"`
	StartsAt time.Time `json:"starts_at"`
	// EndsAt is the alert's own expiry when the sender set one (Prometheus sets it a few
	// evaluation intervals ahead for firing alerts); zero when unknown.
	EndsAt time.Time `json:"ends_at"`
	// Source is "alertmanager" (webhook) or "prometheus" (v2 alerts API).
	Source string `json:"source"`
	// Received is when skyfleet last received this alert.
	Received time.Time `json:"received"`
}

// key identifies an alert series: one per infrastructure, node, kind and alert name.
func (a *Alert) key() alertKey {
	return alertKey{infra: a.InfraID, node: a.Node, kind: a.Kind, name: a.Name}
}

type alertKey struct{ infra, node, kind, name string }

// RejectedAlert is an alert that was refused, with the reason.
type RejectedAlert struct {
	Labels map[string]string `json:"labels"`
	Reason string            `json:"reason"`
}

// webhookPayload is Alertmanager's webhook body (version 4).
type webhookPayload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []struct {
		Status       string            `json:"status"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     time.Time         `json:"startsAt"`
		EndsAt       time.Time         `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
		Fingerprint  string            `json:"fingerprint"`
	} `json:"alerts"`
}

// postableAlert is one element of the Alertmanager v2 API's POST /api/v2/alerts body, which
// Prometheus sends when it is configured to alert to skyfleet directly.
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
}

// ParseWebhook decodes an Alertmanager webhook (payload version 4). now decides nothing
// here; it is stamped on the alerts as their receive time.
func ParseWebhook(body []byte, now time.Time) ([]*Alert, []RejectedAlert, error) {
	var p webhookPayload
	if err := decodeStrictish(body, &p); err != nil {
		return nil, nil, fmt.Errorf("alertmanager webhook: %w", err)
	}
	if p.Version != "4" {
		return nil, nil, fmt.Errorf("alertmanager webhook: payload version %q is not supported (want \"4\")", p.Version)
	}
	var alerts []*Alert
	var rejected []RejectedAlert
	for _, in := range p.Alerts {
		status := in.Status
		if status == "" {
			status = p.Status
		}
		if status != "firing" && status != "resolved" {
			rejected = append(rejected, RejectedAlert{Labels: in.Labels, Reason: fmt.Sprintf("status %q is neither firing nor resolved", status)})
			continue
		}
		a, err := fromLabels(in.Labels)
		if err != nil {
			rejected = append(rejected, RejectedAlert{Labels: in.Labels, Reason: err.Error()})
			continue
		}
		a.Firing = status == "firing"
		a.StartsAt, a.EndsAt = in.StartsAt, in.EndsAt
		if a.Firing && !a.EndsAt.IsZero() && !a.EndsAt.After(a.StartsAt) {
			a.EndsAt = time.Time{}
		}
		a.Source, a.Received = "alertmanager", now
		alerts = append(alerts, a)
	}
	return alerts, rejected, nil
}

// ParsePostableAlerts decodes the body of POST /api/v2/alerts. An alert whose endsAt is not
// after now is resolved (that is how Prometheus sends resolutions).
func ParsePostableAlerts(body []byte, now time.Time) ([]*Alert, []RejectedAlert, error) {
	var in []postableAlert
	if err := decodeStrictish(body, &in); err != nil {
		return nil, nil, fmt.Errorf("alerts v2: %w", err)
	}
	var alerts []*Alert
	var rejected []RejectedAlert
	for _, pa := range in {
		a, err := fromLabels(pa.Labels)
		if err != nil {
			rejected = append(rejected, RejectedAlert{Labels: pa.Labels, Reason: err.Error()})
			continue
		}
		a.StartsAt, a.EndsAt = pa.StartsAt, pa.EndsAt
		a.Firing = a.EndsAt.IsZero() || a.EndsAt.After(now)
		a.Source, a.Received = "prometheus", now
		alerts = append(alerts, a)
	}
	return alerts, rejected, nil
}

func decodeStrictish(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return errors.New("empty body")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("malformed JSON at byte %d: %w", se.Offset, err)
		}
		return fmt.Errorf("malformed JSON: %w", err)
	}
	return nil
}

// fromLabels applies the label contract: alert (overloaded|underloaded), node, infra_id, and an
// optional step (a positive integer).
func fromLabels(labels map[string]string) (*Alert, error) {
	var problems []string
	kind := labels["alert"]
	switch kind {
	case KindOverloaded, KindUnderloaded:
	case "":
		problems = append(problems, `label "alert" is missing (want overloaded or underloaded)`)
	default:
		problems = append(problems, fmt.Sprintf(`label "alert" is %q (want overloaded or underloaded)`, kind))
	}
	if labels["node"] == "" {
		problems = append(problems, `label "node" is missing (want the node name, e.g. app)`)
	}
	if labels["infra_id"] == "" {
		problems = append(problems, `label "infra_id" is missing (want the infrastructure id; write infra_id="{{infra_id}}" in the rule)`)
	} else if strings.Contains(labels["infra_id"], "{{") {
		problems = append(problems, fmt.Sprintf(`label "infra_id" is %q: the rule file was not rendered with the infrastructure id`, labels["infra_id"]))
	}
	step := 0
	if s, ok := labels["step"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			problems = append(problems, fmt.Sprintf(`label "step" is %q (want an integer from 1 to 100)`, s))
		} else {
			step = n
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, errors.New(strings.Join(problems, "; "))
	}
	name := labels["alertname"]
	if name == "" {
		name = labels["node"] + "_" + kind
	}
	cp := make(map[string]string, len(labels))
	for k, v := range labels {
		cp[k] = v
	}
	return &Alert{Name: name, Kind: kind, InfraID: labels["infra_id"], Node: labels["node"], Step: step, Labels: cp}, nil
}
