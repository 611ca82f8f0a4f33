package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRulesConvert(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "prometheus.rules")
	src := "ALERT app_overloaded\n  IF avg(rate(node_cpu{mode=\"idle\"}[1m])) < 0.5\n  FOR 1m\n  LABELS {alert=\"overloaded\", node=\"app\", infra_id=\"{{infra_id}}\"}\n"
	if err := os.WriteFile(in, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{"rules", "convert", in}, nil, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "expr: avg(rate(node_cpu_seconds_total{mode=\"idle\"}[1m])) < 0.5") || !strings.Contains(stdout.String(), "infra_id: '{{infra_id}}'") {
		t.Errorf("output:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "prometheus.rules:2: warning: metric node_cpu was renamed node_cpu_seconds_total") {
		t.Errorf("stderr: %s", stderr.String())
	}

	bad := filepath.Join(dir, "bad.rules")
	if err := os.WriteFile(bad, []byte("ALERT x\n  IF up ==\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	if code := Main(context.Background(), []string{"rules", "convert", bad}, nil, &stdout, &stderr); code != 1 {
		t.Fatalf("bad file: exit %d", code)
	}
	if !strings.Contains(stderr.String(), "bad.rules:2: expression \"up ==\"") || stdout.Len() != 0 {
		t.Errorf("bad file: stdout %q stderr %q", stdout.String(), stderr.String())
	}
}
