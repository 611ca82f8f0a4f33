package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/cloud/local"
	"github.com/skyfleet/skyfleet/internal/cloud/sim"
	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/health"
	"github.com/skyfleet/skyfleet/internal/store"
)

// helperEnv makes the test binary act as a node's process: a tiny HTTP server on
// $SKYFLEET_IP:helperPort that answers 200 until SIGTERM.
const (
	helperEnv  = "SKYFLEET_ENGINE_TEST_HELPER"
	helperPort = 18080
)

func serveHelper() {
	ip := os.Getenv("SKYFLEET_IP")
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(helperPort)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper listen:", err)
		return
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "%s %s backend=%s templated_ip=%s\n", os.Getenv("SKYFLEET_NODE"), ip, os.Getenv("BACKEND"), os.Getenv("TEMPLATED_IP"))
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		_ = srv.Close()
	}()
	_ = srv.Serve(ln)
}

// localNodeDefs are node definitions whose processes re-execute this test binary.
func localNodeDefs(t *testing.T) descriptor.NodeDefs {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(`
'node_def:app':
  - resource:
      type: local
    contextualisation:
      type: process
      command: [%[1]q, "-test.run=^$"]
      env:
        %[2]s: serve
    health_check:
      ping: false
      urls: ["http://{{ip}}:%[3]d/"]
      timeout: 600
'node_def:lb':
  - resource:
      type: local
    contextualisation:
      type: process
      command: [%[1]q, "-test.run=^$"]
      env:
        %[2]s: serve
        BACKEND: "{{ getip('app') }}"
        TEMPLATED_IP: "{{ ip }}"
    health_check:
      ping: false
      ports: [%[3]d]
`, exe, helperEnv, helperPort)
	defs, _, err := descriptor.ParseNodeDefs("local_nodes.yaml", []byte(text), descriptor.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return defs
}

const localInfra = `
user_id: tester
infra_name: local-two-level
nodes:
  - &app
    name: app
    type: app
    scaling: {min: 2, max: 3}
  - &lb
    name: lb
    type: lb
    scaling: {min: 1, max: 1}
dependencies:
  - connection: [*lb, *app]
`

// localPID reads the pid the local provider recorded for an instance.
func localPID(t *testing.T, dataDir, providerID string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "instances", providerID, "instance.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	return rec.PID
}

// alive reports whether pid names a process that has not exited (a zombie has exited).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestLocalProcessesEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	h := newHarness(t, sim.Options{})
	dataDir := t.TempDir()
	newLocal := func() *local.Local {
		l, err := local.New(local.Options{DataDir: dataDir, AddressRange: "127.91.0.0/16", KillGrace: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	loc := newLocal()
	t.Cleanup(func() {
		// Whatever happened, leave no process behind.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		l := newLocal()
		defer l.Close()
		found, _ := l.List(ctx, map[string]string{cloud.TagManaged: "1"})
		for _, in := range found {
			_ = l.Destroy(ctx, in.ID)
		}
	})
	start := func(l *local.Local) {
		opts := h.engineOpts(map[string]cloud.Driver{"local": l})
		opts.Checker = health.NewChecker(health.CheckerOptions{CheckTimeout: 2 * time.Second})
		opts.Resync = 100 * time.Millisecond
		h.start(opts)
	}
	start(loc)
	ctx := context.Background()
	if _, err := h.eng.ImportNodeDefs(ctx, localNodeDefs(t), "local_nodes.yaml"); err != nil {
		t.Fatal(err)
	}
	id, _, err := h.eng.Submit(ctx, "", "local.yaml", []byte(localInfra))
	if err != nil {
		t.Fatal(err)
	}
	ready := func() bool {
		rs := h.instances(id)
		return len(rs) == 3 && count(rs, "app", store.StateReady) == 2 && count(rs, "lb", store.StateReady) == 1
	}
	waitFor(t, "two-level infrastructure ready", ready)
	waitFor(t, "phase ready", func() bool { return h.infra(id).Phase == store.InfraReady })

	// The lb was contextualised with the first app instance's address, and serves.
	var lb *store.InstanceRecord
	for _, r := range h.instances(id) {
		if r.Node == "lb" {
			lb = r
		}
	}
	resp, err := http.Get(fmt.Sprintf("http://%s:%d/", lb.Addresses[0], helperPort))
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 256)
	n, _ := resp.Body.Read(body)
	resp.Body.Close()
	if !strings.Contains(string(body[:n]), "backend=127.91.") {
		t.Errorf("lb answered %q, want its BACKEND to be an app address", body[:n])
	}
	// The contextualisation saw the instance's own address as {{ ip }}.
	if want := "templated_ip=" + lb.Addresses[0] + "\n"; !strings.HasSuffix(string(body[:n]), want) {
		t.Errorf("lb answered %q, want it to end in %q", body[:n], want)
	}

	// kill -9 of an app process: the instance is failed, archived, destroyed and replaced.
	victim := h.instances(id)[0]
	for _, r := range h.instances(id) {
		if r.Node == "app" {
			victim = r
			break
		}
	}
	pid := localPID(t, dataDir, victim.ProviderID)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "killed instance replaced", func() bool {
		return ready() && !slices.ContainsFunc(h.instances(id), func(r *store.InstanceRecord) bool { return r.NodeID == victim.NodeID })
	})
	if !slices.ContainsFunc(h.archived(id), func(r *store.InstanceRecord) bool { return r.NodeID == victim.NodeID }) {
		t.Error("killed instance not archived")
	}

	// Restart the orchestrator (engine and provider): the running processes are adopted.
	before := map[string]string{}
	for _, r := range h.instances(id) {
		before[r.NodeID] = r.ProviderID
	}
	h.stop()
	loc.Close()
	loc = newLocal()
	defer loc.Close()
	start(loc)
	for range 10 {
		h.eng.wake(id)
		time.Sleep(100 * time.Millisecond)
	}
	waitFor(t, "ready after restart", ready)
	after := map[string]string{}
	var pids []int
	for _, r := range h.instances(id) {
		after[r.NodeID] = r.ProviderID
		pids = append(pids, localPID(t, dataDir, r.ProviderID))
	}
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("instances changed across the restart:\nbefore %v\nafter  %v", before, after)
	}

	// Destroy leaves no process behind.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := h.eng.Destroy(wctx, id); err != nil {
		t.Fatal(err)
	}
	if err := h.eng.WaitGone(wctx, id); err != nil {
		t.Fatal(err)
	}
	for _, p := range pids {
		if alive(p) {
			t.Errorf("process %d still running after destroy", p)
		}
	}
	found, err := loc.List(ctx, map[string]string{cloud.TagManaged: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if live := slices.DeleteFunc(found, func(in cloud.Instance) bool { return in.State == cloud.StateGone }); len(live) > 0 {
		t.Errorf("local provider still lists %d instances", len(live))
	}
}
