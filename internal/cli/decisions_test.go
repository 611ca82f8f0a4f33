package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/client"
	"github.com/skyfleet/skyfleet/internal/store"
)

// TestDecisionsTable: the table's columns and the JSON lines, compared with golden files.
func TestDecisionsTable(t *testing.T) {
	at := time.Date(2026, 11, 29, 7, 4, 5, 0, time.UTC)
	ds := []store.Decision{
		{InfraID: "i1", Seq: 1, At: at, Node: "app", Direction: "out", Outcome: "scaled", From: 1, To: 2,
			Reason: `yes: "app_overloaded" firing; target 1 -> 2`, Cause: map[string]any{"alert": "app_overloaded", "kind": "overloaded"}},
		{InfraID: "i1", Seq: 2, At: at.Add(time.Second), Node: "app", Direction: "out", Outcome: "pending", From: 2, To: 2,
			Reason: "no: 1 instance still pending"},
		{InfraID: "i1", Seq: 3, At: at.Add(20 * time.Second), Node: "a-long-node-name", Direction: "none", Outcome: "within_tolerance", From: 10, To: 10,
			Reason: "no: 61.0 per instance is within 10% of 60"},
	}
	for _, format := range []string{"table", "json"} {
		t.Run(format, func(t *testing.T) {
			var out bytes.Buffer
			p := &decisionPrinter{w: &out, json: format == "json", loc: time.UTC}
			// Two batches, as -f prints them: one header, aligned rows.
			if err := p.print(ds[:1]); err != nil {
				t.Fatal(err)
			}
			if err := p.print(nil); err != nil {
				t.Fatal(err)
			}
			if err := p.print(ds[1:]); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "decisions", format+".golden"), out.Bytes())
		})
	}
}

const decisionsInfra = `user_id: u
infra_name: decisions
nodes:
  - name: app
    type: app
    scaling: {min: 1, max: 3, scale_out_cooldown: 1h}
`

// TestDecisionsCommand runs `skyfleet decisions` through Main against a daemon whose node was
// scaled by an alert: the table, JSON, the node filter, following, and the errors a user sees.
func TestDecisionsCommand(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte("main-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--token-file", tokFile)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New(client.Options{Addr: d.URL, Token: "main-token"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportNodeDefs(ctx, "nodes.yaml", []byte(mountsNodeDefs)); err != nil {
		t.Fatal(err)
	}
	created, err := c.CreateInfra(ctx, "infra.yaml", []byte(decisionsInfra))
	if err != nil {
		t.Fatal(err)
	}
	id := created.ID
	postWebhook := func(status string) {
		t.Helper()
		body := fmt.Sprintf(`{"version":"4","status":%q,"receiver":"skyfleet","groupKey":"{}","alerts":[{"status":%q,
		  "labels":{"alertname":"app_overloaded","alert":"overloaded","node":"app","infra_id":%q},"startsAt":"2026-11-29T06:00:00Z"}]}`, status, status, id)
		req, _ := http.NewRequestWithContext(ctx, "POST", d.URL+"/v1/alerts/alertmanager", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer main-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("webhook %s: %d %s", status, resp.StatusCode, b)
		}
	}
	postWebhook("firing")
	waitDecision := func(outcome string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			ds, err := c.Decisions(ctx, id, 0, "app")
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				if d.Outcome == outcome {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q decision within 30s: %+v", outcome, ds)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitDecision("scaled")

	remote := []string{"--server", d.URL, "--token-file", tokFile, "-i", id}
	run := func(ctx context.Context, stdout, stderr io.Writer, args ...string) int {
		return Main(ctx, append([]string{"decisions"}, args...), strings.NewReader(""), stdout, stderr)
	}

	t.Run("table", func(t *testing.T) {
		var out, errb bytes.Buffer
		if code := run(ctx, &out, &errb, remote...); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if !strings.HasPrefix(lines[0], "TIME ") || !strings.Contains(lines[0], "FROM→TO") || !strings.HasSuffix(lines[0], "REASON") {
			t.Errorf("header: %q", lines[0])
		}
		if len(lines) < 2 {
			t.Fatalf("no rows:\n%s", out.String())
		}
		// The first instance may still have been pending when the alert came: look for the step.
		found := false
		for _, l := range lines[1:] {
			row := strings.Fields(l)
			// date, time, node, direction, outcome, from→to, reason…
			if len(row) >= 7 && row[4] == "scaled" {
				found = true
				if row[2] != "app" || row[3] != "out" || row[5] != "1→2" || row[6] != "yes:" {
					t.Errorf("scaling row: %q", l)
				}
			}
		}
		if !found {
			t.Errorf("no scaling row:\n%s", out.String())
		}
	})
	t.Run("json lines", func(t *testing.T) {
		var out, errb bytes.Buffer
		if code := run(ctx, &out, &errb, append(remote, "-o", "json")...); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		var scaled []store.Decision
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var got store.Decision
			if err := json.Unmarshal([]byte(line), &got); err != nil {
				t.Fatalf("line is not a decision: %v: %q", err, line)
			}
			if got.Outcome == "scaled" {
				scaled = append(scaled, got)
			}
		}
		if len(scaled) != 1 {
			t.Fatalf("%d scaling decisions, want 1:\n%s", len(scaled), out.String())
		}
		if got := scaled[0]; got.InfraID != id || got.From != 1 || got.To != 2 || got.Cause["alert"] != "app_overloaded" {
			t.Errorf("decision: %+v", got)
		}
	})
	t.Run("another node has none", func(t *testing.T) {
		var out, errb bytes.Buffer
		if code := run(ctx, &out, &errb, append(remote, "-n", "lb")...); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		if out.Len() != 0 || !strings.Contains(errb.String(), "no decisions recorded for "+id+" node lb yet") {
			t.Errorf("stdout %q, stderr %q", out.String(), errb.String())
		}
	})
	t.Run("follow prints new decisions once", func(t *testing.T) {
		fctx, stop := context.WithCancel(ctx)
		defer stop()
		var out, errb syncBuffer
		done := make(chan int, 1)
		go func() { done <- run(fctx, &out, &errb, append(remote, "-f", "-n", "app")...) }()
		waitFor := func(what string, cond func(string) bool) {
			t.Helper()
			deadline := time.Now().Add(30 * time.Second)
			for !cond(out.String()) {
				if time.Now().After(deadline) {
					t.Fatalf("%s: not within 30s; stdout:\n%s\nstderr:\n%s", what, out.String(), errb.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		waitFor("the existing log", func(s string) bool { return strings.Contains(s, " scaled ") })
		postWebhook("resolved")
		waitFor("the resolution", func(s string) bool { return strings.Contains(s, " resolved ") })
		stop()
		if code := <-done; code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		s := out.String()
		if n := strings.Count(s, "TIME "); n != 1 {
			t.Errorf("%d headers, want 1:\n%s", n, s)
		}
		if n := strings.Count(s, " scaled "); n != 1 {
			t.Errorf("the scaling decision printed %d times, want once:\n%s", n, s)
		}
	})

	errCases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown infrastructure", []string{"--server", d.URL, "--token-file", tokFile, "-i", "nope"}, `infrastructure "nope" does not exist`},
		{"bad output", append(remote, "-o", "yaml"), `-o "yaml": want table or json`},
		{"no id", []string{"--server", d.URL}, `required flag(s) "infra-id" not set`},
		{"no token", []string{"--server", d.URL, "-i", id}, "missing or invalid bearer token"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SKYFLEET_TOKEN", "")
			var out, errb bytes.Buffer
			if code := run(ctx, &out, &errb, tc.args...); code == 0 {
				t.Fatalf("exit 0, want an error; stdout %q", out.String())
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Errorf("stderr %q, want it to contain %q", errb.String(), tc.want)
			}
		})
	}

	t.Run("follow ends when the infrastructure is destroyed", func(t *testing.T) {
		var out, errb syncBuffer
		done := make(chan int, 1)
		go func() { done <- run(ctx, &out, &errb, append(remote, "-f")...) }()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(out.String(), " scaled ") {
			if time.Now().After(deadline) {
				t.Fatalf("the log was not printed within 30s: %q %q", out.String(), errb.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := c.DeleteInfra(ctx, id, true); err != nil {
			t.Fatal(err)
		}
		select {
		case code := <-done:
			if code != 0 || !strings.Contains(errb.String(), "infrastructure "+id+" is gone") {
				t.Errorf("exit %d, stderr %q", code, errb.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatal("decisions -f still running 30s after the infrastructure was destroyed")
		}
	})
}
