package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/api"
	"github.com/skyfleet/skyfleet/internal/client"
)

// healNodeDefs is a docker node whose container serves the storage role on its own address;
// its health check fails within seconds once the container cannot be reached.
const healNodeDefs = `'node_def:store':
  - resource:
      type: docker
      endpoint: unix:///var/run/docker.sock
      origin: local
      image: %s
      tag: '%s'
    contextualisation:
      type: docker
      env: []
      command: storage --listen 0.0.0.0:8081 --shutdown-grace 1s
    health_check:
      ping: false
      urls: ['http://{{ip}}:8081/healthz']
      interval: 1s
      timeout: 5
`

const healInfra = `user_id: e2e
infra_name: docker-heal
nodes:
  - name: store
    type: store
    scaling: {min: 2, max: 2}
`

// TestDockerNodesHealAdoptAndCleanUp drives the docker provider through the real
// orchestrator (`skyfleet serve` as a subprocess): a killed container is replaced, a restart
// of the server adopts the running containers instead of starting new ones, a container cut
// off from its network fails its health check and is replaced, and deleting the
// infrastructure leaves no container and no network behind.
func TestDockerNodesHealAdoptAndCleanUp(t *testing.T) {
	requirePrograms(t, "go", "docker")
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		if os.Getenv("SKYFLEET_REQUIRE_INTEGRATION") != "" {
			t.Fatalf("the Docker engine does not answer: %v: %s", err, out)
		}
		t.Skipf("the Docker engine does not answer (%v); set SKYFLEET_REQUIRE_INTEGRATION to make this a failure", err)
	}
	bin := skyfleetBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The image holds the binary under test; its tag is this run's own.
	image, tag := "skyfleet-heal-test", fmt.Sprintf("t%08x", rand.Uint32())
	build := exec.Command(filepath.Join(repoRoot(), "examples", "autoscaling-docker", "build-image.sh"), image+":"+tag)
	build.Env = append(os.Environ(), "SKYFLEET_BIN="+bin)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build-image.sh: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = runCmd("docker", "rmi", "-f", image+":"+tag) })

	// Registered before the server starts, so it runs after the server was stopped: whatever
	// the infrastructure still has on the engine is removed.
	var infraID string
	t.Cleanup(func() {
		if infraID == "" {
			return
		}
		if left := dockerLines(t, "ps", "-a", "-q", "--filter", "label=skyfleet-infra-id="+infraID); len(left) > 0 {
			_, _ = runCmd("docker", append([]string{"rm", "-f", "-v"}, left...)...)
		}
		if left := dockerLines(t, "network", "ls", "-q", "--filter", "label=skyfleet-infra-id="+infraID); len(left) > 0 {
			_, _ = runCmd("docker", append([]string{"network", "rm"}, left...)...)
		}
	})

	arts := artifactsDir(t)
	dataDir := filepath.Join(t.TempDir(), "state")
	localRange := fmt.Sprintf("127.61.%d.0/24", rand.IntN(256))
	srv := startServe(t, bin, dataDir, localRange, filepath.Join(arts, "serve-1.log"))
	c := srv.client(t)

	if _, err := c.ImportNodeDefs(ctx, "nodes.yaml", fmt.Appendf(nil, healNodeDefs, image, tag)); err != nil {
		t.Fatalf("import node definitions: %v", err)
	}
	created, err := c.CreateInfra(ctx, "infra.yaml", []byte(healInfra))
	if err != nil {
		t.Fatalf("create infrastructure: %v", err)
	}
	infraID = created.ID
	t.Logf("infrastructure %s", infraID)

	d := waitStore(ctx, t, c, infraID, srv, "2 ready containers", 90*time.Second, func(n *api.NodeDetail) bool {
		return twoReady(n)
	})
	first := readyIDs(d)
	ctrs := containersOf(t, infraID)
	if got := nodeIDs(ctrs); !slices.Equal(got, first) {
		t.Fatalf("containers carry node ids %v, the server reports %v", got, first)
	}
	for _, ct := range ctrs {
		if ct.state != "running" || ct.labels["skyfleet"] != "1" || ct.labels["skyfleet-node"] != "store" {
			t.Fatalf("container %s: state %s, labels %v; want running with skyfleet=1, skyfleet-node=store", ct.id, ct.state, ct.labels)
		}
	}

	// (1) A killed container is replaced by a new node, and the dead one is removed.
	killed := first[0]
	if _, err := runCmd("docker", "kill", containerOf(t, ctrs, killed)); err != nil {
		t.Fatalf("docker kill: %v", err)
	}
	t.Logf("killed the container of %s", killed)
	d = waitStore(ctx, t, c, infraID, srv, "the killed container replaced", 60*time.Second, func(n *api.NodeDetail) bool {
		return twoReady(n) && !slices.Contains(ids(n), killed)
	})
	afterKill := readyIDs(d)
	if !slices.Contains(afterKill, first[1]) {
		t.Fatalf("the surviving node %s was replaced too: now %v", first[1], afterKill)
	}
	waitContainers(ctx, t, infraID, "the killed container removed", 30*time.Second, afterKill)
	evs := eventsSince(ctx, t, c, infraID, 0)
	requireEvents(t, evs, killed, "exited with code", "nodefailed", "nodedropped")

	// The restart must create nothing: no nodecreating after this point.
	mark := uint64(0)
	if len(evs) > 0 {
		mark = evs[len(evs)-1].Seq
	}

	// (2) A restarted server adopts the running containers: same node ids, same containers.
	before := containersOf(t, infraID)
	if err := srv.stop(30 * time.Second); err != nil {
		t.Fatalf("stop serve: %v", err)
	}
	if got := containersOf(t, infraID); !sameContainers(got, before) {
		t.Fatalf("stopping the server changed the containers: before %v, after %v", before, got)
	}
	srv = startServe(t, bin, dataDir, localRange, filepath.Join(arts, "serve-2.log"))
	c = srv.client(t)
	d = waitStore(ctx, t, c, infraID, srv, "the containers adopted", 60*time.Second, func(n *api.NodeDetail) bool {
		return twoReady(n)
	})
	if got := readyIDs(d); !slices.Equal(got, afterKill) {
		t.Fatalf("after the restart the node ids are %v, want the adopted %v", got, afterKill)
	}
	// Several maintenance passes (1 s each) later, still the very same two containers.
	time.Sleep(3 * time.Second)
	if got := containersOf(t, infraID); !sameContainers(got, before) {
		t.Fatalf("the restarted server changed the containers: before %v, after %v", before, got)
	}
	d, err = c.Infra(ctx, infraID)
	if err != nil {
		t.Fatal(err)
	}
	if got := readyIDs(d); !slices.Equal(got, afterKill) {
		t.Fatalf("after the restart the node ids became %v, want %v", got, afterKill)
	}

	for _, ev := range eventsSince(ctx, t, c, infraID, mark) {
		if ev.Type == "nodecreating" || ev.Type == "nodecreated" {
			t.Fatalf("the restarted server created an instance: %s %s %s", ev.Type, ev.NodeID, ev.Message)
		}
	}

	// (3) A container cut off from its network fails its health check and is replaced.
	cut := afterKill[0]
	var cutCtr container
	for _, ct := range before {
		if ct.labels["skyfleet-node-id"] == cut {
			cutCtr = ct
		}
	}
	netName := cutCtr.labels["skyfleet-network"]
	if netName == "" {
		t.Fatalf("container %s has no skyfleet-network label: %v", cutCtr.id, cutCtr.labels)
	}
	if _, err := runCmd("docker", "network", "disconnect", netName, cutCtr.id); err != nil {
		t.Fatalf("docker network disconnect: %v", err)
	}
	t.Logf("disconnected the container of %s from %s", cut, netName)
	d = waitStore(ctx, t, c, infraID, srv, "the disconnected container replaced", 60*time.Second, func(n *api.NodeDetail) bool {
		return twoReady(n) && !slices.Contains(ids(n), cut)
	})
	afterCut := readyIDs(d)
	if !slices.Contains(afterCut, afterKill[1]) {
		t.Fatalf("the healthy node %s was replaced too: now %v", afterKill[1], afterCut)
	}
	waitContainers(ctx, t, infraID, "the disconnected container destroyed", 30*time.Second, afterCut)
	requireEvents(t, eventsSince(ctx, t, c, infraID, mark), cut, "health checks failing", "nodefailed", "nodedropped")

	// (4) Deleting the infrastructure leaves no container and no network behind.
	if _, err := c.DeleteInfra(ctx, infraID, true); err != nil {
		t.Fatalf("delete infrastructure: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := dockerLines(t, "ps", "-a", "--format", "{{.ID}} {{.Names}}", "--filter", "label=skyfleet-infra-id="+infraID)
		nets := dockerLines(t, "network", "ls", "--format", "{{.Name}}", "--filter", "label=skyfleet-infra-id="+infraID)
		_, gerr := c.Infra(ctx, infraID)
		if len(left) == 0 && len(nets) == 0 && client.IsNotFound(gerr) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the delete: containers %v, networks %v, infrastructure lookup %v\n%s", left, nets, gerr, srv.logTail())
		}
		time.Sleep(500 * time.Millisecond)
	}
	if got := dockerLines(t, "network", "ls", "--format", "{{.Name}}", "--filter", "name=^"+netName+"$"); len(got) > 0 {
		t.Fatalf("network %s is still there after the delete", netName)
	}
}

// eventsSince returns every event of the infrastructure after the sequence number after.
func eventsSince(ctx context.Context, t *testing.T, c *client.Client, infraID string, after uint64) []api.Event {
	t.Helper()
	var out []api.Event
	for {
		page, err := c.Events(ctx, infraID, after, 500)
		if err != nil {
			t.Fatalf("events: %v", err)
		}
		out = append(out, page.Events...)
		if len(page.Events) == 0 || page.Next == after {
			return out
		}
		after = page.Next
	}
}

// requireEvents fails unless the events hold each of types for the node id, in that order,
// with a nodefailed event whose message says why.
func requireEvents(t *testing.T, evs []api.Event, nodeID, failedBecause string, types ...string) {
	t.Helper()
	i := 0
	because := false
	var seen []string
	for _, ev := range evs {
		if ev.NodeID != nodeID {
			continue
		}
		seen = append(seen, ev.Type+": "+ev.Message)
		if ev.Type == "nodefailed" && strings.Contains(ev.Message, failedBecause) {
			because = true
		}
		if i < len(types) && ev.Type == types[i] {
			i++
		}
	}
	if i < len(types) || !because {
		t.Fatalf("events of %s: %q; want %v in this order, nodefailed saying %q", nodeID, seen, types, failedBecause)
	}
	t.Logf("events of %s: %q", short(nodeID), seen)
}

// serveRun is one `skyfleet serve` subprocess.
type serveRun struct {
	cmd     *exec.Cmd
	done    chan error
	addr    string
	logPath string
}

// startServe runs `skyfleet serve` on a free loopback port with dataDir and waits until it
// answers /healthz.
func startServe(t *testing.T, bin, dataDir, localRange, logPath string) *serveRun {
	t.Helper()
	s := &serveRun{done: make(chan error, 1), addr: freeAddr(t), logPath: logPath}
	args := []string{"serve", "--listen", s.addr, "--data-dir", dataDir, "--local-address-range", localRange, "--resync", "1s", "--log-level", "info"}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout = logf
	s.cmd.Stderr = logf
	if err := s.cmd.Start(); err != nil {
		_ = logf.Close()
		t.Fatal(err)
	}
	go func() {
		s.done <- s.cmd.Wait()
		_ = logf.Close()
	}()
	t.Cleanup(func() {
		if err := s.stop(30 * time.Second); err != nil {
			t.Errorf("stop serve: %v", err)
		}
	})
	t.Logf("skyfleet %s", strings.Join(args, " "))
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := httpGet("http://" + s.addr + "/healthz"); err == nil {
			return s
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("serve exited (%v) before it answered:\n%s", err, s.logTail())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer /healthz within 30s:\n%s", s.logTail())
		}
	}
}

func (s *serveRun) client(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{Addr: "http://" + s.addr})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// stop sends SIGTERM and waits for the server to exit (SIGKILL after within); stopping a
// server that exited already is a no-op.
func (s *serveRun) stop(within time.Duration) error {
	select {
	case err := <-s.done:
		s.done <- err
		return nil
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal serve: %w", err)
	}
	select {
	case err := <-s.done:
		s.done <- err
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			return err
		}
		if err != nil {
			return fmt.Errorf("serve exited after SIGTERM: %w\n%s", err, s.logTail())
		}
		return nil
	case <-time.After(within):
		_ = s.cmd.Process.Kill()
		s.done <- <-s.done
		return fmt.Errorf("serve did not exit within %s of SIGTERM", within)
	}
}

// logTail is the end of the server's log, for failure messages.
func (s *serveRun) logTail() string {
	data, _ := os.ReadFile(s.logPath)
	if len(data) > 6000 {
		data = data[len(data)-6000:]
	}
	return string(data)
}

// waitStore polls the infrastructure's store node until cond holds, logging each change of
// its instances, or fails the test after within.
func waitStore(ctx context.Context, t *testing.T, c *client.Client, infraID string, srv *serveRun, what string, within time.Duration, cond func(*api.NodeDetail) bool) *api.InfraDetail {
	t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for {
		d, err := c.Infra(ctx, infraID)
		if err == nil {
			if n := node(d, "store"); n != nil {
				line := describeNode(n)
				if line != last {
					t.Logf("%s", line)
					last = line
				}
				if cond(n) {
					return d
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last: %s, %v)\n%s", what, within, last, err, srv.logTail())
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func describeNode(n *api.NodeDetail) string {
	parts := []string{fmt.Sprintf("store %d/%d ready:", n.Ready, n.Target)}
	for _, in := range n.Instances {
		parts = append(parts, fmt.Sprintf("%s=%s%v", short(in.NodeID), in.State, in.Addresses))
	}
	return strings.Join(parts, " ")
}

func short(id string) string { return id[:min(8, len(id))] }

// twoReady tells whether the node has exactly two instances, both ready with an address.
func twoReady(n *api.NodeDetail) bool {
	if len(n.Instances) != 2 || n.Ready != 2 {
		return false
	}
	for _, in := range n.Instances {
		if in.State != "ready" || len(in.Addresses) == 0 {
			return false
		}
	}
	return true
}

func ids(n *api.NodeDetail) []string {
	var out []string
	for _, in := range n.Instances {
		out = append(out, in.NodeID)
	}
	slices.Sort(out)
	return out
}

// readyIDs returns the sorted node ids of the store node's ready instances.
func readyIDs(d *api.InfraDetail) []string {
	var out []string
	if n := node(d, "store"); n != nil {
		for _, in := range n.Instances {
			if in.State == "ready" {
				out = append(out, in.NodeID)
			}
		}
	}
	slices.Sort(out)
	return out
}

// container is one container as `docker ps` shows it.
type container struct {
	id     string
	state  string
	labels map[string]string
}

func (c container) String() string {
	return short(c.id) + "(" + short(c.labels["skyfleet-node-id"]) + " " + c.state + ")"
}

// containersOf lists every container (running or not) labelled with the infrastructure id.
func containersOf(t *testing.T, infraID string) []container {
	t.Helper()
	var out []container
	for _, line := range dockerLines(t, "ps", "-a", "--no-trunc", "--format", "{{.ID}}\t{{.State}}\t{{.Labels}}", "--filter", "label=skyfleet-infra-id="+infraID) {
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 {
			t.Fatalf("docker ps line %q", line)
		}
		ct := container{id: f[0], state: f[1], labels: map[string]string{}}
		for _, kv := range strings.Split(f[2], ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				ct.labels[k] = v
			}
		}
		out = append(out, ct)
	}
	slices.SortFunc(out, func(a, b container) int {
		return strings.Compare(a.labels["skyfleet-node-id"], b.labels["skyfleet-node-id"])
	})
	return out
}

func nodeIDs(cs []container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.labels["skyfleet-node-id"])
	}
	slices.Sort(out)
	return out
}

func containerOf(t *testing.T, cs []container, nodeID string) string {
	t.Helper()
	for _, c := range cs {
		if c.labels["skyfleet-node-id"] == nodeID {
			return c.id
		}
	}
	t.Fatalf("no container labelled skyfleet-node-id=%s among %v", nodeID, cs)
	return ""
}

// sameContainers tells whether two listings hold the same containers, all running.
func sameContainers(a, b []container) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].id != b[i].id || a[i].state != "running" || b[i].state != "running" {
			return false
		}
	}
	return true
}

// waitContainers polls the engine until exactly the containers of nodeIDs exist for the
// infrastructure, all running.
func waitContainers(ctx context.Context, t *testing.T, infraID, what string, within time.Duration, nodeIDsWant []string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		cs := containersOf(t, infraID)
		ok := slices.Equal(nodeIDs(cs), nodeIDsWant)
		for _, c := range cs {
			ok = ok && c.state == "running"
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: containers %v, want those of %v", what, within, cs, nodeIDsWant)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// dockerLines runs a docker command and returns its non-empty output lines.
func dockerLines(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := runCmd("docker", args...)
	if err != nil {
		t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}
