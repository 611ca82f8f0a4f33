package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skyfleet/skyfleet/internal/api"
)

// TestVerbsAgainstServer drives import, build, status, scale, events and destroy against a
// real server with the sim provider.
func TestVerbsAgainstServer(t *testing.T) {
	d := startDaemon(t)
	srv := []string{"--server", d.URL}
	nodes := filepath.Join("testdata", "serve", "nodes.yaml")
	infra := filepath.Join("testdata", "serve", "infra.yaml")

	out, errOut, code := runCLI(t, append([]string{"import", nodes}, srv...)...)
	if code != 0 || out != "Successfully imported nodes: app, lb\n" {
		t.Fatalf("import: %d %q %q", code, out, errOut)
	}
	out, errOut, code = runCLI(t, append([]string{"build", infra}, srv...)...)
	if code != 0 {
		t.Fatalf("build: %d %q %q", code, out, errOut)
	}
	id := strings.TrimSpace(out)
	if !strings.Contains(errOut, "is ready") || !strings.Contains(errOut, "lb: 1/1 ready") || !strings.Contains(errOut, "127.") {
		t.Errorf("build progress lacks readiness or addresses:\n%s", errOut)
	}

	out, _, code = runCLI(t, append([]string{"status", "--infraid", id, "-o", "json"}, srv...)...)
	var detail api.InfraDetail
	if code != 0 || json.Unmarshal([]byte(out), &detail) != nil || detail.ID != id || len(detail.Nodes) != 2 {
		t.Fatalf("status json: %d %s", code, out)
	}
	if out, _, code = runCLI(t, append([]string{"status", "-o", "yaml"}, srv...)...); code != 0 || !strings.Contains(out, "name: cli-test") {
		t.Errorf("status yaml: %d %s", code, out)
	}
	if out, _, code = runCLI(t, append([]string{"status", "-i", id}, srv...)...); code != 0 || !strings.Contains(out, "NODE ID") {
		t.Errorf("status table: %d %s", code, out)
	}

	scale := func(args ...string) (string, string, int) {
		return runCLI(t, append(append([]string{"scale", "-i", id, "-n", "app"}, args...), srv...)...)
	}
	if out, errOut, code := scale("-c", "2"); code != 0 || out != "app: target 1 -> 3\n" {
		t.Errorf("scale -c 2: %d %q %q", code, out, errOut)
	}
	if out, _, code := scale("-c", "1"); code != 0 || out != "app: request ignored: maximum count reached (3) (target stays 3)\n" {
		t.Errorf("scale past max: %d %q", code, out)
	}
	if out, _, code := scale("-c", "-1"); code != 0 || out != "app: target 3 -> 2\n" {
		t.Errorf("scale -c -1: %d %q", code, out)
	}
	for _, bad := range [][]string{{"-c", "0"}, {"-s", "0"}, {"-s", "-2"}, {"-c", "1", "-s", "2"}, {}} {
		if _, errOut, code := scale(bad...); code == 0 {
			t.Errorf("scale %v accepted", bad)
		} else if errOut == "" {
			t.Errorf("scale %v: no message", bad)
		}
	}
	if _, errOut, code := runCLI(t, append([]string{"scale", "-i", id, "-n", "web", "-c", "1"}, srv...)...); code == 0 || !strings.Contains(errOut, "web") {
		t.Errorf("scale unknown node: %d %q", code, errOut)
	}

	out, _, code = runCLI(t, append([]string{"events", "-i", id}, srv...)...)
	if code != 0 || !strings.Contains(out, "infrastart") || !strings.Contains(out, "scaling_ignored") {
		t.Errorf("events: %d\n%s", code, out)
	}

	// events -f follows until the infrastructure is gone.
	type result struct {
		out, errOut string
		code        int
	}
	followed := make(chan result, 1)
	go func() {
		o, e, c := runCLI(t, append([]string{"events", "-i", id, "-f", "--json"}, srv...)...)
		followed <- result{o, e, c}
	}()

	out, errOut, code = runCLI(t, append([]string{"destroy", "-i", id}, srv...)...)
	if code != 0 || !strings.Contains(errOut, "is gone") {
		t.Fatalf("destroy: %d %q %q", code, out, errOut)
	}
	f := <-followed
	if f.code != 0 || !strings.Contains(f.errOut, "is gone") || !strings.Contains(f.out, `"type":"infradrop"`) {
		t.Errorf("events -f: %d\nstdout: %s\nstderr: %s", f.code, f.out, f.errOut)
	}
	var seqs []uint64
	for _, line := range strings.Split(strings.TrimSpace(f.out), "\n") {
		var ev api.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("events -f --json line %q: %v", line, err)
		}
		seqs = append(seqs, ev.Seq)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Errorf("events -f sequence numbers %v: gap or repeat at %d", seqs, i)
			break
		}
	}
	if _, errOut, code := runCLI(t, append([]string{"destroy", "-i", id}, srv...)...); code == 0 || !strings.Contains(errOut, "does not exist") && !strings.Contains(errOut, "not found") {
		t.Errorf("destroy again: %d %q", code, errOut)
	}
}
