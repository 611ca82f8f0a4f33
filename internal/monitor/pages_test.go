package monitor

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// TestPagesGolden renders the /alerts and /targets pages from fixed data and compares them
// with testdata/golden; run with -update after an intended change and review the diff.
func TestPagesGolden(t *testing.T) {
	now := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name, template string
		data           any
	}{
		{"alerts.html", "alerts.html", alertsPage{
			Now: now, Firing: 1, Pending: 1, Inactive: 1,
			Rules: []ruleRow{
				{Group: "app", File: "/etc/skyfleet/rules.yml", Name: "application_overloaded", State: "firing",
					Expr: "application_cpu_utilization > 50", For: time.Minute, Health: "ok",
					Labels: labels.FromStrings("alert", "overloaded", "node", "app", "infra_id", "4c3a"),
					Alerts: []alertRow{{
						Labels: labels.FromStrings("alertname", "application_overloaded", "alert", "overloaded", "node", "app", "infra_id", "4c3a"),
						State:  "firing", ActiveAt: now.Add(-95 * time.Second), Value: 87.5,
					}}},
				{Group: "lb", File: "/etc/skyfleet/rules.yml", Name: "lb_overloaded", State: "pending",
					Expr: `lb_cpu_utilization > 50`, For: time.Minute, Health: "ok",
					Labels: labels.FromStrings("alert", "overloaded", "node", "lb", "infra_id", "4c3a"),
					Alerts: []alertRow{{
						Labels: labels.FromStrings("alertname", "lb_overloaded", "node", "lb", "infra_id", "4c3a"),
						State:  "pending", ActiveAt: now.Add(-10 * time.Second), Value: 61,
					}}},
				{Group: "app", File: "/etc/skyfleet/rules.yml", Name: "application_underloaded", State: "inactive",
					Expr: "application_cpu_utilization < 20", For: 2 * time.Minute, Health: "err",
					LastError: `query timed out in expression evaluation`,
					Labels:    labels.FromStrings("alert", "underloaded", "node", "app", "infra_id", "<4c3a>")},
			},
		}},
		{"alerts_empty.html", "alerts.html", alertsPage{Now: now}},
		{"targets.html", "targets.html", targetsPage{Now: now, Pools: []poolRow{{
			Name: "app", Up: 1,
			Targets: []targetRow{
				{URL: "http://127.0.0.2:9100/metrics", Health: "up", LastScrape: now.Add(-3 * time.Second), Duration: 4 * time.Millisecond,
					Labels: labels.FromStrings("group", "app_cluster", "infra_id", "4c3a", "instance", "127.0.0.2:9100", "job", "app", "node", "app")},
				{URL: "http://127.0.0.3:9100/metrics", Health: "down", LastScrape: now.Add(-1 * time.Second), Duration: time.Millisecond,
					Labels: labels.FromStrings("instance", "127.0.0.3:9100", "job", "app"),
					Error:  `Get "http://127.0.0.3:9100/metrics": dial tcp 127.0.0.3:9100: connect: connection refused`},
				{URL: "http://127.0.0.4:9100/metrics", Health: "unknown", Labels: labels.FromStrings("instance", "127.0.0.4:9100", "job", "app")},
			},
		}}}},
		{"targets_empty.html", "targets.html", targetsPage{Now: now}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := pageTemplates.ExecuteTemplate(&buf, tc.template, tc.data); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", tc.name)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s is missing; run go test -run TestPagesGolden -update", path)
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("%s differs from the rendered page (run with -update to accept):\n%s", path, buf.String())
			}
		})
	}
}
