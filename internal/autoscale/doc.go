// Package autoscale turns monitoring data into scaling requests and explains every decision.
//
// Two kinds of input drive it: alerts (the Alertmanager webhook, and the Alertmanager v2 alerts
// API so that a Prometheus can send straight to skyfleet) carrying the seed's label contract
// (alert=overloaded|underloaded, node, infra_id, optional step), and target tracking, where a
// PromQL query is evaluated against a Prometheus-compatible API and the node is resized so the
// value per instance approaches a target.
//
// The policy is level-triggered: while an alert stays firing the node keeps stepping, once per
// cooldown, never while the previous step's instances are still pending, always within
// min..max. Each decision, including each decision not to act, is stored with its cause.
//
// The package does not create or destroy instances: it asks the engine through the Scaler
// interface, and the engine applies the request.
package autoscale
