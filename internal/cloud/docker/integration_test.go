package docker

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"go.uber.org/goleak"

	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/health"
)

func TestMain(m *testing.M) {
	code := m.Run()
	fixture.cleanup()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// engineFixture is the test image, built once per test binary from a static build of
// testdata/app into a FROM-scratch image through the Engine API (no registry is involved).
type engineFixture struct {
	once     sync.Once
	err      error
	endpoint string
	dir      string // holds the app binary and archives
	ref      string // skyfleet-test-app:<random>
	extra    []string
}

var fixture engineFixture

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// requireEngine skips when the docker binary is missing and SKYFLEET_REQUIRE_INTEGRATION is
// unset, and otherwise returns a ready fixture (failing the test when it cannot be built).
func requireEngine(t *testing.T) *engineFixture {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil && os.Getenv("SKYFLEET_REQUIRE_INTEGRATION") == "" {
		t.Skip("docker is not installed and SKYFLEET_REQUIRE_INTEGRATION is unset")
	}
	fixture.once.Do(func() { fixture.err = fixture.build() })
	if fixture.err != nil {
		t.Fatalf("test image: %v", fixture.err)
	}
	return &fixture
}

func (f *engineFixture) build() error {
	f.endpoint = "unix:///var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		f.endpoint = h
	}
	dir, err := os.MkdirTemp("", "skyfleet-docker-test-")
	if err != nil {
		return err
	}
	f.dir = dir
	bin := filepath.Join(dir, "app")
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("go toolchain for the test binary: %w", err)
	}
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./testdata/app")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build test app: %w: %s", err, out)
	}
	cli, err := client.NewClientWithOpts(client.WithHost(f.endpoint), client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	f.ref = "skyfleet-test-app:" + randomHex(4)
	dockerfile := "FROM scratch\nCOPY app /app\nEXPOSE 8080\nCMD [\"/app\"]\n"
	bctx, err := tarOf(map[string]string{"Dockerfile": dockerfile}, map[string]string{"app": bin})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	resp, err := cli.ImageBuild(ctx, bctx, build.ImageBuildOptions{
		Tags: []string{f.ref}, Remove: true, ForceRemove: true, Version: build.BuilderV1,
	})
	if err != nil {
		return fmt.Errorf("image build: %w", err)
	}
	defer resp.Body.Close()
	if err := streamError(resp.Body); err != nil {
		return fmt.Errorf("image build: %w", err)
	}
	return nil
}

func (f *engineFixture) cleanup() {
	if f.ref == "" {
		return
	}
	cli, err := client.NewClientWithOpts(client.WithHost(f.endpoint), client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		for _, ref := range append(f.extra, f.ref) {
			_, _ = cli.ImageRemove(ctx, ref, image.RemoveOptions{Force: true, PruneChildren: true})
		}
		cancel()
		cli.Close()
	}
	_ = os.RemoveAll(f.dir)
}

// tarOf builds a tar stream from inline files and files on disk (name → path).
func tarOf(inline map[string]string, files map[string]string) (io.Reader, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, content := range inline {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			return nil, err
		}
	}
	for name, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &buf, nil
}

// env is one test's view: a provider, an infrastructure id of its own, and clean-up of
// everything labelled with that id.
type env struct {
	t       *testing.T
	f       *engineFixture
	p       *Provider
	infraID string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	f := requireEngine(t)
	p, err := New(f.endpoint, Options{Logger: testLogger(t), StopTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, f: f, p: p, infraID: "test" + randomHex(6)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cs, _ := p.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", cloud.TagInfraID+"="+e.infraID))})
		for _, c := range cs {
			_ = p.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
		}
		if err := p.Cleanup(ctx, e.infraID); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		p.Close()
	})
	return e
}

func (e *env) spec(node string, resource map[string]any, ctxSection map[string]any) cloud.InstanceSpec {
	token := newToken()
	return cloud.InstanceSpec{
		Token: token, InfraID: e.infraID, InfraName: "test", Node: node,
		Resource: resource, Context: ctxSection,
		Tags: map[string]string{cloud.TagManaged: "1", cloud.TagInfraID: e.infraID, cloud.TagNode: node, cloud.TagNodeID: token, cloud.TagInfraName: "test"},
	}
}

func (e *env) resource(kv ...any) map[string]any {
	name, tag, _ := strings.Cut(e.f.ref, ":")
	m := map[string]any{"type": "docker", "endpoint": e.f.endpoint, "origin": "local", "image": name, "tag": tag}
	return with(m, kv...)
}

func newToken() string {
	b := randomHex(16)
	return b[:8] + "-" + b[8:12] + "-" + b[12:16] + "-" + b[16:20] + "-" + b[20:]
}

func testLogger(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(tWriter{t}, nil)) }

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// waitState polls Describe until pred holds or a deadline passes.
func waitState(t *testing.T, p *Provider, id string, pred func(cloud.Instance) bool) cloud.Instance {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		in, err := p.Describe(ctxT(t), id)
		if err != nil {
			t.Fatalf("Describe: %v", err)
		}
		if pred(in) {
			return in
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s never reached the wanted state; last: %+v", short(id), in)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// httpGet polls url until it answers 200 or a deadline passes.
func httpGet(t *testing.T, url string) []byte {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := c.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return body
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func running(in cloud.Instance) bool { return in.State == cloud.StateRunning && in.Address() != "" }

func TestLifecycleAgainstEngine(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	spec := e.spec("web", e.resource("cpus", 0.5, "memory", "64m"),
		map[string]any{"type": "docker", "env": []any{"GREETING=hello world"}, "command": "/app --listen=:8080 'extra arg'"})

	id, err := e.p.Create(ctx, spec)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	in := waitState(t, e.p, id, running)
	if in.Token != spec.Token || in.Tags[cloud.TagInfraID] != e.infraID || in.Tags[cloud.TagNode] != "web" {
		t.Errorf("instance labels = %v, token %q", in.Tags, in.Token)
	}
	if in.PrivateAddress != in.Address() {
		t.Errorf("private address %q != address %q", in.PrivateAddress, in.Address())
	}
	// The node's address is on the infrastructure's own network and serves from the host.
	if body := httpGet(t, "http://"+in.Address()+":8080/healthz"); strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("healthz = %q", body)
	}
	var info struct {
		Env      []string
		Args     []string
		Hostname string
	}
	if err := json.Unmarshal(httpGet(t, "http://"+in.Address()+":8080/info"), &info); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"GREETING=hello world", "SKYFLEET_NODE_ID=" + spec.Token, "SKYFLEET_INFRA_ID=" + e.infraID, "SKYFLEET_NODE=web"} {
		if !contains(info.Env, want) {
			t.Errorf("container env lacks %q: %v", want, info.Env)
		}
	}
	if strings.Join(info.Args, "|") != "--listen=:8080|extra arg" {
		t.Errorf("container args = %q", info.Args)
	}
	c, err := e.p.cli.ContainerInspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if c.HostConfig.NanoCPUs != 500_000_000 || c.HostConfig.Memory != 64<<20 {
		t.Errorf("limits = %d nano CPUs, %d bytes; want 0.5 CPU, 64 MiB", c.HostConfig.NanoCPUs, c.HostConfig.Memory)
	}
	if want := DefaultContainerName("web", spec.Token); strings.TrimPrefix(c.Name, "/") != want {
		t.Errorf("container name = %q, want %q", c.Name, want)
	}
	netName := DefaultNetworkName(e.infraID)
	if ep := c.NetworkSettings.Networks[netName]; ep == nil || !contains(ep.Aliases, "web") {
		t.Errorf("container is not on %s with the alias web: %+v", netName, c.NetworkSettings.Networks)
	}
	n, err := e.p.cli.NetworkInspect(ctx, netName, network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Driver != "bridge" || len(n.IPAM.Config) != 1 || !strings.HasPrefix(n.IPAM.Config[0].Subnet, "10.213.") {
		t.Errorf("network %s = driver %s, IPAM %+v; want a bridge with a subnet of 10.213.0.0/16", netName, n.Driver, n.IPAM.Config)
	}

	// Idempotent on the token: a retried create returns the same container.
	again, err := e.p.Create(ctx, spec)
	if err != nil || again != id {
		t.Fatalf("repeated Create = %s, %v; want %s", short(again), err, short(id))
	}

	// An orchestrator restart: a fresh provider finds the instance by its labels and a
	// create for the same node id adopts it instead of starting a second container.
	p2, err := New(e.f.endpoint, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	list, err := p2.List(ctx, map[string]string{cloud.TagInfraID: e.infraID})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != id || list[0].Token != spec.Token || list[0].State != cloud.StateRunning || list[0].Address() != in.Address() {
		t.Fatalf("List after restart = %+v; want the one running container", list)
	}
	adopted, err := p2.Create(ctx, spec)
	if err != nil || adopted != id {
		t.Fatalf("Create after restart = %s, %v; want %s", short(adopted), err, short(id))
	}

	// A killed container is reported as not running (failed, so that it gets replaced).
	if err := e.p.cli.ContainerKill(ctx, id, "KILL"); err != nil {
		t.Fatal(err)
	}
	killed := waitState(t, e.p, id, func(in cloud.Instance) bool { return in.State != cloud.StateRunning })
	if killed.State != cloud.StateFailed || killed.Detail != "exited with code 137" {
		t.Errorf("killed container = %s (%s); want failed (exited with code 137)", killed.State, killed.Detail)
	}

	// Destroy leaves nothing behind, twice over, and Cleanup removes the empty network.
	if err := e.p.Destroy(ctx, id); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if err := e.p.Destroy(ctx, id); err != nil {
		t.Fatalf("second Destroy: %v", err)
	}
	if gone, err := e.p.Describe(ctx, id); err != nil || gone.State != cloud.StateGone {
		t.Errorf("Describe after Destroy = %+v, %v; want gone", gone, err)
	}
	if list, err := p2.List(ctx, map[string]string{cloud.TagInfraID: e.infraID}); err != nil || len(list) != 0 {
		t.Errorf("List after Destroy = %+v, %v; want nothing", list, err)
	}
	if err := e.p.Cleanup(ctx, e.infraID); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if _, err := e.p.cli.NetworkInspect(ctx, netName, network.InspectOptions{}); err == nil {
		t.Errorf("network %s still exists after Cleanup", netName)
	}
}

func TestDisconnectedContainerFailsHealthCheck(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	id, err := e.p.Create(ctx, e.spec("api", e.resource(), nil))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	in := waitState(t, e.p, id, running)
	addr := in.Address()
	checker := health.NewChecker(health.CheckerOptions{CheckTimeout: 2 * time.Second})
	spec := health.Spec{Ports: []int{8080}, URLs: []string{"http://" + addr + ":8080/healthz"}}
	httpGet(t, "http://"+addr+":8080/healthz") // wait until it serves
	if r := checker.Check(ctx, addr, spec); !r.OK {
		t.Fatalf("health check before the cut = %+v", r)
	}
	if err := e.p.cli.NetworkDisconnect(ctx, DefaultNetworkName(e.infraID), id, true); err != nil {
		t.Fatal(err)
	}
	cut, err := e.p.Describe(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if cut.State != cloud.StateRunning || cut.Address() != "" || cut.Detail != "not attached to network "+DefaultNetworkName(e.infraID) {
		t.Errorf("Describe after the cut = %+v; want running, no address, a detail naming the network", cut)
	}
	if r := checker.Check(ctx, addr, spec); r.OK {
		t.Errorf("health check after the cut passed; want a failure")
	} else {
		t.Logf("health check after the cut: %s", r.Detail)
	}
	if err := e.p.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
}

func TestCreateErrors(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	missing := "skyfleet-test-absent"
	tests := []struct {
		name     string
		resource map[string]any
		context  map[string]any
		want     []string
	}{
		{"local image missing", e.resource("image", missing, "tag", "x1"), nil,
			[]string{"docker image " + missing + ":x1 is not on the Docker host", "origin: local never pulls"}},
		{"registry unreachable", e.resource("image", missing, "tag", "x2", "origin", "dockerhub"), nil,
			[]string{"docker pull image " + missing + ":x2 (origin: dockerhub): the registry was unreachable"}},
		{"tarball missing", e.resource("image", missing, "tag", "x3", "origin", "file:///nonexistent/app.tar"), nil,
			[]string{"docker image " + missing + ":x3 from file:///nonexistent/app.tar", "no such file"}},
		{"command that cannot start", e.resource(), map[string]any{"type": "docker", "env": []any{}, "command": []any{"/app-missing"}},
			[]string{"docker create bad: start container", "/app-missing"}},
		{"bad context", e.resource(), map[string]any{"type": "cloudinit"},
			[]string{"contextualisation.type: cloudinit is not allowed for a docker resource"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := e.spec("bad", tt.resource, tt.context)
			_, err := e.p.Create(ctx, spec)
			if err == nil {
				t.Fatal("Create succeeded, want error")
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q\ndoes not contain %q", err, s)
				}
			}
			// A failed create leaves no container behind.
			if list, err := e.p.List(ctx, map[string]string{cloud.TagNodeID: spec.Token}); err != nil || len(list) != 0 {
				t.Errorf("List after a failed create = %+v, %v", list, err)
			}
		})
	}
}

func TestNameTakenByAnotherInstance(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	name := "skyfleet-fixed-" + randomHex(3)
	id, err := e.p.Create(ctx, e.spec("fixed", e.resource("name", name), nil))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.p.Create(ctx, e.spec("fixed", e.resource("name", name), nil))
	if err == nil || !strings.Contains(err.Error(), "container name \""+name+"\" is taken by another container") {
		t.Errorf("second Create with a fixed name = %v", err)
	}
	if err := e.p.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
}

func TestDestroyRefusesForeignContainer(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	c, err := e.p.cli.ContainerCreate(ctx, &container.Config{Image: e.f.ref}, nil, nil, nil, "skyfleet-test-foreign-"+randomHex(3))
	if err != nil {
		t.Fatal(err)
	}
	defer e.p.cli.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true})
	err = e.p.Destroy(ctx, c.ID)
	if err == nil || !strings.Contains(err.Error(), "was not created by skyfleet") {
		t.Fatalf("Destroy of a foreign container = %v", err)
	}
	if _, err := e.p.cli.ContainerInspect(ctx, c.ID); err != nil {
		t.Errorf("the foreign container was removed: %v", err)
	}
}

func TestImageFromTarballs(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)

	// A `docker save` archive, loaded under its own tag.
	savedRef := "skyfleet-test-saved:" + randomHex(4)
	e.f.extra = append(e.f.extra, savedRef)
	if err := e.p.cli.ImageTag(ctx, e.f.ref, savedRef); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "saved.tar")
	rc, err := e.p.cli.ImageSave(ctx, []string{savedRef})
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	out.Close()
	if _, err := e.p.cli.ImageRemove(ctx, savedRef, image.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	name, tag, _ := strings.Cut(savedRef, ":")

	// The archive holds one tag; asking it for another says which it holds.
	_, err = e.p.Create(ctx, e.spec("saved", e.resource("origin", "file://"+archive, "image", name, "tag", "other"), nil))
	if err == nil || !strings.Contains(err.Error(), "holds "+savedRef+", not "+name+":other") {
		t.Errorf("Create with a tag the archive lacks = %v", err)
	}

	id, err := e.p.Create(ctx, e.spec("saved", e.resource("origin", "file://"+archive, "image", name, "tag", tag), nil))
	if err != nil {
		t.Fatalf("Create from a saved archive: %v", err)
	}
	in := waitState(t, e.p, id, running)
	httpGet(t, "http://"+in.Address()+":8080/healthz")

	// A root filesystem archive (gzip), imported as Occopus does; it has no command of its
	// own, so the contextualisation gives one.
	rootfs := filepath.Join(t.TempDir(), "rootfs.tar.gz")
	tr, err := tarOf(nil, map[string]string{"app": filepath.Join(e.f.dir, "app")})
	if err != nil {
		t.Fatal(err)
	}
	if err := writeGzip(rootfs, tr); err != nil {
		t.Fatal(err)
	}
	importRef := "skyfleet-test-imported:" + randomHex(4)
	e.f.extra = append(e.f.extra, importRef)
	iname, itag, _ := strings.Cut(importRef, ":")
	id2, err := e.p.Create(ctx, e.spec("imported", e.resource("origin", rootfs, "image", iname, "tag", itag),
		map[string]any{"type": "docker", "env": []any{}, "command": "/app"}))
	if err != nil {
		t.Fatalf("Create from a root filesystem archive: %v", err)
	}
	in2 := waitState(t, e.p, id2, running)
	httpGet(t, "http://"+in2.Address()+":8080/healthz")

	// The same root filesystem from an http URL: the engine downloads it itself, as
	// Occopus' URL origin does (the server listens on loopback only).
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, rootfs)
	}))
	defer srv.Close()
	urlRef := "skyfleet-test-url:" + randomHex(4)
	e.f.extra = append(e.f.extra, urlRef)
	uname, utag, _ := strings.Cut(urlRef, ":")
	id3, err := e.p.Create(ctx, e.spec("fromurl", e.resource("origin", srv.URL+"/rootfs.tar.gz", "image", uname, "tag", utag),
		map[string]any{"type": "docker", "env": []any{}, "command": "/app"}))
	if err != nil {
		t.Fatalf("Create from a URL: %v", err)
	}
	in3 := waitState(t, e.p, id3, running)
	httpGet(t, "http://"+in3.Address()+":8080/healthz")

	for _, id := range []string{id, id2, id3} {
		if err := e.p.Destroy(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConcurrentCreatesShareOneNetwork(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	const n = 4
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = e.p.Create(ctx, e.spec("worker", e.resource(), nil))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	nets, err := e.p.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", cloud.TagInfraID+"="+e.infraID))})
	if err != nil {
		t.Fatal(err)
	}
	if len(nets) != 1 {
		t.Errorf("%d networks for one infrastructure; want 1", len(nets))
	}
	seen := map[string]bool{}
	for _, id := range ids {
		in := waitState(t, e.p, id, running)
		if seen[in.Address()] {
			t.Errorf("address %s handed out twice", in.Address())
		}
		seen[in.Address()] = true
	}
	for _, id := range ids {
		if err := e.p.Destroy(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}

func writeGzip(path string, r io.Reader) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(f)
	if _, err := io.Copy(zw, r); err != nil {
		f.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func TestNetworkAvoidsTakenSubnetsAndKeepsForeignNetworks(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if err := e.p.ready(ctx); err != nil {
		t.Fatal(err)
	}
	netName := DefaultNetworkName(e.infraID)
	// Occupy the subnet the search would try first with a network skyfleet did not make.
	first, err := e.p.freeSubnet(ctx, netName)
	if err != nil {
		t.Fatal(err)
	}
	blocker := "skyfleet-test-blocker-" + randomHex(3)
	if _, err := e.p.cli.NetworkCreate(ctx, blocker, network.CreateOptions{Driver: "bridge",
		IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: first.String()}}}}); err != nil {
		t.Fatal(err)
	}
	defer e.p.cli.NetworkRemove(context.Background(), blocker)

	id, err := e.p.Create(ctx, e.spec("db", e.resource(), nil))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	n, err := e.p.cli.NetworkInspect(ctx, netName, network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := n.IPAM.Config[0].Subnet; got == first.String() {
		t.Errorf("network %s took the occupied subnet %s", netName, got)
	}
	// A network still in use survives Cleanup.
	if err := e.p.Cleanup(ctx, e.infraID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.cli.NetworkInspect(ctx, netName, network.InspectOptions{}); err != nil {
		t.Errorf("Cleanup removed a network in use: %v", err)
	}

	// A named network the user made is used as it is and never removed by Cleanup.
	id2, err := e.p.Create(ctx, e.spec("db", e.resource("network", blocker), nil))
	if err != nil {
		t.Fatalf("Create on the user's network: %v", err)
	}
	in := waitState(t, e.p, id2, running)
	if !first.Contains(netip.MustParseAddr(in.Address())) {
		t.Errorf("address %s is not on the user's network %s", in.Address(), first)
	}
	for _, id := range []string{id, id2} {
		if err := e.p.Destroy(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.p.Cleanup(ctx, e.infraID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.cli.NetworkInspect(ctx, blocker, network.InspectOptions{}); err != nil {
		t.Errorf("Cleanup removed the user's network: %v", err)
	}
	if _, err := e.p.cli.NetworkInspect(ctx, netName, network.InspectOptions{}); err == nil {
		t.Errorf("Cleanup left the empty skyfleet network %s", netName)
	}
}
