package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSeedTutorialCommands runs the seed tutorial's commands as written — occopus-import,
// occopus-rest-service --host/--port, then curl POST --data-binary, scaleup, GET and DELETE —
// against a real `skyfleet serve` binary with the local provider. curl is used when it is
// installed; otherwise net/http sends the identical requests.
func TestSeedTutorialCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the skyfleet binary")
	}
	work := t.TempDir()
	bin := filepath.Join(work, "skyfleet")
	build := exec.Command("go", "build", "-o", bin, "./cmd/skyfleet")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The tutorial's directory: nodes/node_definitions.yaml and infrastructure_descriptor.yaml.
	for _, f := range []string{"nodes/node_definitions.yaml", "infrastructure_descriptor.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", "tutorial", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(work, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dataDir := filepath.Join(work, "state")
	run := func(name string, args ...string) string {
		t.Helper()
		// A bound, so that a server that never answers fails the test instead of hanging it.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = work
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %v: %v\nstdout: %s\nstderr: %s", name, args, err, stdout.String(), stderr.String())
		}
		return stdout.String()
	}

	// occopus-import nodes/node_definitions.yaml
	if out := run(bin, "import", "--data-dir", dataDir, "nodes/node_definitions.yaml"); !strings.Contains(out, "Successfully imported nodes: app, lb") {
		t.Fatalf("import printed %q", out)
	}

	// occopus-rest-service --host [ip] --port [port]
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	serve := exec.Command(bin, "serve", "--host", "127.0.0.1", "--port", fmt.Sprint(port), "--data-dir", dataDir, "--resync", "1s")
	serve.Dir = work
	var serveLog bytes.Buffer
	serve.Stdout, serve.Stderr = &serveLog, &serveLog
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	var infraID string
	t.Cleanup(func() {
		if t.Failed() && infraID != "" {
			// Do not leave the test's processes behind.
			req, _ := http.NewRequest("DELETE", base+"/infrastructures/"+infraID, nil)
			hc := &http.Client{Timeout: time.Minute}
			if resp, err := hc.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		_ = serve.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- serve.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve exited with %v after SIGTERM", err)
			}
		case <-time.After(30 * time.Second):
			_ = serve.Process.Kill()
			<-done
			t.Errorf("serve did not stop within 30s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("serve log:\n%s", serveLog.String())
		}
	})
	waitFor(t, 20*time.Second, "the server to answer", func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	curl := func(args ...string) string {
		t.Helper()
		if _, err := exec.LookPath("curl"); err == nil {
			return run("curl", args...)
		}
		if os.Getenv("SKYFLEET_REQUIRE_INTEGRATION") != "" {
			t.Fatal("curl is missing and SKYFLEET_REQUIRE_INTEGRATION is set")
		}
		return sendLikeCurl(t, work, args)
	}

	// curl -X POST http://[ip]:[port]/infrastructures/ --data-binary @infrastructure_descriptor.yaml
	out := curl("-X", "POST", base+"/infrastructures/", "--data-binary", "@infrastructure_descriptor.yaml")
	var created struct{ Infraid string }
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Infraid == "" {
		t.Fatalf("POST answered %q", out)
	}
	infraID = created.Infraid

	report := func() map[string]compatReportNode {
		out := curl("-X", "GET", base+"/infrastructures/"+infraID)
		var rep map[string]compatReportNode
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("GET answered %q: %v", out, err)
		}
		return rep
	}
	readyCount := func(rep map[string]compatReportNode, node string) int {
		n := 0
		for _, in := range rep[node].Instances {
			if in.State == "ready" {
				n++
			}
		}
		return n
	}
	waitFor(t, 60*time.Second, "lb and app to be ready", func() bool {
		rep := report()
		return readyCount(rep, "lb") == 1 && readyCount(rep, "app") == 1
	})

	// curl -X POST http://[ip]:[port]/infrastructures/[infrastructure_id]/scaleup/app
	out = curl("-X", "POST", base+"/infrastructures/"+infraID+"/scaleup/app")
	var scaled map[string]any
	if err := json.Unmarshal([]byte(out), &scaled); err != nil || scaled["method"] != "scaleup" || scaled["nodename"] != "app" || scaled["count"] != float64(1) {
		t.Fatalf("scaleup answered %q", out)
	}

	// curl -X GET http://[ip]:[port]/infrastructures/[infrastructure_id]
	var rep map[string]compatReportNode
	waitFor(t, 60*time.Second, "a second ready app instance", func() bool {
		rep = report()
		return readyCount(rep, "app") == 2
	})
	if s := rep["app"].Scaling; s.Target != 2 || s.Actual != 2 || s.Min != 1 || s.Max != 10 {
		t.Errorf("app scaling = %+v, want target 2, actual 2, min 1, max 10", s)
	}
	for node, n := range rep {
		for id, in := range n.Instances {
			addr, ok := in.ResourceAddress.(string)
			if !ok || net.ParseIP(addr) == nil || !net.ParseIP(addr).IsLoopback() {
				t.Errorf("%s/%s resource_address = %#v, want a loopback address", node, id, in.ResourceAddress)
			}
		}
	}
	pids := localPIDs(t, dataDir)
	if len(pids) != 3 {
		t.Errorf("%d local instances recorded, want 3", len(pids))
	}

	// curl -X DELETE http://[ip]:[port]/infrastructures/[infra id]
	out = curl("-X", "DELETE", base+"/infrastructures/"+infraID)
	if strings.TrimSpace(out) != fmt.Sprintf("{\n  \"infraid\": %q\n}", infraID) {
		t.Fatalf("DELETE answered %q", out)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("instance process %d still runs after DELETE answered", pid)
		}
	}
	out = curl("-X", "GET", base+"/infrastructures/"+infraID)
	if !strings.Contains(out, `"status_code": 300`) || !strings.Contains(out, "does not exist!") {
		t.Errorf("GET after DELETE answered %q", out)
	}
	infraID = ""
}

// compatReportNode is one node of Occopus' GET report, as a client decodes it.
type compatReportNode struct {
	Instances map[string]struct {
		ResourceAddress any    `json:"resource_address"`
		State           string `json:"state"`
	} `json:"instances"`
	Scaling struct {
		Actual, Max, Min, Target int
	} `json:"scaling"`
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// localPIDs returns the process ids of the local provider's recorded instances.
func localPIDs(t *testing.T, dataDir string) []int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dataDir, "local", "instances", "*", "instance.json"))
	var pids []int
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rec struct{ PID int }
		if err := json.Unmarshal(data, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.PID > 0 {
			pids = append(pids, rec.PID)
		}
	}
	return pids
}

// alive reports whether a process runs (a zombie does not count).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// sendLikeCurl sends the request `curl -s args…` would send (-X METHOD, --data-binary @FILE).
func sendLikeCurl(t *testing.T, dir string, args []string) string {
	t.Helper()
	method, url := "GET", ""
	var body io.Reader
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-X":
			i++
			method = args[i]
		case "--data-binary":
			i++
			data, err := os.ReadFile(filepath.Join(dir, strings.TrimPrefix(args[i], "@")))
			if err != nil {
				t.Fatal(err)
			}
			body = bytes.NewReader(data)
		default:
			url = args[i]
		}
	}
	req, err := http.NewRequestWithContext(context.Background(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded") // what curl sends
	}
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return string(out)
}
