// Package promrules converts Prometheus 1.x rule files (the `ALERT … IF … FOR … LABELS …
// ANNOTATIONS …` syntax and `name = expr` recording rules, as the seed's Occopus examples
// ship them) into the 2.x YAML rule format, renaming node_exporter metrics that changed name
// since then and validating the result with Prometheus' own rule parser.
//
// It does not evaluate rules; the monitor role and real Prometheus servers do that.
package promrules
