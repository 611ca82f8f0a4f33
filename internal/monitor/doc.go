// Package monitor is the `skyfleet monitor` node role: a small Prometheus server built from
// Prometheus' own packages (module github.com/prometheus/prometheus), so that skyfleet's
// autoscaling architecture runs with no Prometheus installed.
//
// A Monitor reads a standard Prometheus configuration file with Prometheus' own parser
// (config.LoadFile), stores samples in Prometheus' TSDB with a short retention, scrapes the
// targets of static_configs and http_sd_configs (for instance skyfleet's own
// GET /v1/sd/prometheus), evaluates rule_files (Prometheus 2.x format) with the PromQL engine
// and the rules manager, and sends alerts through Prometheus' notifier to the configured
// alerting.alertmanagers: skyfleet's POST /api/v2/alerts or a real Alertmanager.
//
// Over HTTP it serves the parts of Prometheus' API that dashboards and skyfleet's target
// tracking use (/api/v1/query, /api/v1/query_range, /api/v1/alerts, /api/v1/rules,
// /api/v1/targets, /api/v1/labels, /api/v1/label/NAME/values, /api/v1/series, /api/v1/metadata,
// /api/v1/status/buildinfo) in Prometheus' exact JSON envelope, its own /metrics, the
// /-/healthy, /-/ready and /-/reload endpoints, and plain HTML pages for people watching a
// test: /alerts, /targets and /graph (one instant query; alerts' generatorURL points there).
//
// It is not a full Prometheus: there is no remote read or write, no web UI beyond those
// pages, no admin API, no agent mode, and only static and HTTP service discovery. Other
// service-discovery types in a configuration file are refused at start with a message that
// names the file, line and the supported types.
package monitor
