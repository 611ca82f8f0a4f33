package promrules

import (
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestConvertSeed(t *testing.T) {
	src, err := os.ReadFile("testdata/seed.rules")
	if err != nil {
		t.Fatal(err)
	}
	out, warns, err := Convert("testdata/seed.rules", src)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("testdata/seed.yml.golden", out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/seed.yml.golden")
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(want) {
		t.Errorf("output differs from golden:\n%s", out)
	}
	var ws []string
	for _, w := range warns {
		ws = append(ws, w.String())
	}
	wantWarns := []string{
		"testdata/seed.rules:2: warning: metric node_cpu was renamed node_cpu_seconds_total in node_exporter 0.16; the rule now uses the new name",
		"testdata/seed.rules:3: warning: metric node_cpu was renamed node_cpu_seconds_total in node_exporter 0.16; the rule now uses the new name",
		"testdata/seed.rules:4: warning: metric node_memory_MemFree was renamed node_memory_MemFree_bytes in node_exporter 0.16; the rule now uses the new name",
		"testdata/seed.rules:4: warning: metric node_memory_MemTotal was renamed node_memory_MemTotal_bytes in node_exporter 0.16; the rule now uses the new name",
	}
	if strings.Join(ws, "\n") != strings.Join(wantWarns, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(ws, "\n"), strings.Join(wantWarns, "\n"))
	}
}

func TestConvertErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"garbage first line", "hello world\n", `r.rules:1: unexpected "hello world": a rule starts with ` + "`ALERT name` or `name = expression`"},
		{"bad expression", "x = rate(foo[5m]\n", `r.rules:1: expression "rate(foo[5m]": `},
		{"no IF", "ALERT a\n  FOR 1m\n", `r.rules:1: alert "a" has no IF expression`},
		{"bad for", "ALERT a\n  IF up == 0\n  FOR soon\n", `r.rules:3: FOR "soon" is not a duration (want e.g. 30s, 1m, 2h)`},
		{"unquoted label", "ALERT a\n  IF up == 0\n  LABELS {severity=page}\n", `r.rules:3: LABELS: value of severity must be a double-quoted string`},
		{"bad label name", "ALERT a\n  IF up == 0\n  LABELS {1x=\"y\"}\n", `r.rules:3: LABELS: "1x" is not a valid label name`},
		{"annotations without keyword", "ALERT a\n  IF up == 0\n  LABELS {a=\"b\"}\n  summary = \"x\"}\n", "r.rules:4: \"summary = \\\"x\\\"}\" follows LABELS {…} in alert \"a\"; annotations need their own `ANNOTATIONS {` line"},
		{"stray keyword", "ALERT a\n  WHEN up == 0\n", `r.rules:2: unexpected "WHEN up == 0" in alert "a": want IF, FOR, LABELS or ANNOTATIONS`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Convert("r.rules", []byte(tt.src))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error = %v\nwant prefix %s", err, tt.want)
			}
		})
	}
}

func TestConvertAllErrorsAtOnce(t *testing.T) {
	_, _, err := Convert("r.rules", []byte("ALERT a\n  IF up ==\nALERT b\n  IF up == 0\n  FOR later\n"))
	var es Errors
	if !errors.As(err, &es) || len(es) != 2 || es[0].Line != 5 && es[1].Line != 5 {
		t.Fatalf("want two errors (lines 2 and 5), got %v", err)
	}
}

func FuzzConvert(f *testing.F) {
	src, _ := os.ReadFile("testdata/seed.rules")
	f.Add(string(src))
	f.Add("x = up\n")
	f.Add("ALERT a IF up == 0 FOR 5m\n  LABELS {a=\"\\\"\"}\n")
	f.Fuzz(func(t *testing.T, s string) {
		out, _, err := Convert("f.rules", []byte(s))
		if err == nil && len(out) == 0 {
			t.Fatal("no error and no output")
		}
	})
}
