package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/cloud"
)

// testRange keeps these tests' addresses apart from the default range other packages use.
const testRange = "127.93.0.0/24"

type fixture struct {
	t    *testing.T
	dir  string
	opts Options
	logs *logBuffer
	l    *Local
}

func newFixture(t *testing.T, mod func(*Options)) *fixture {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, dir: t.TempDir(), logs: &logBuffer{t: t}}
	f.opts = Options{
		DataDir:      f.dir,
		AddressRange: testRange,
		KillGrace:    5 * time.Second,
		Logger:       slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Executable:   exe,
		CgroupRoot:   filepath.Join(f.dir, "no-cgroup"),
	}
	if mod != nil {
		mod(&f.opts)
	}
	f.l = f.open()
	t.Cleanup(func() {
		// Leave no process behind, whatever the test did. Only one Local at a time
		// manages a data dir, as only one orchestrator can own it.
		f.l.Close()
		l := f.open()
		defer l.Close()
		ins, err := l.List(context.Background(), nil)
		if err != nil {
			t.Errorf("cleanup list: %v", err)
		}
		for _, in := range ins {
			if err := l.Destroy(context.Background(), in.ID); err != nil {
				t.Errorf("cleanup destroy %s: %v", in.ID, err)
			}
		}
	})
	return f
}

func (f *fixture) open() *Local {
	f.t.Helper()
	l, err := New(f.opts)
	if err != nil {
		f.t.Fatal(err)
	}
	return l
}

func processSpec(token string, command []string, env map[string]any, files map[string]any) cloud.InstanceSpec {
	ctx := map[string]any{"type": "process", "command": toAny(command)}
	if env != nil {
		ctx["env"] = env
	}
	if files != nil {
		ctx["files"] = files
	}
	return cloud.InstanceSpec{
		Token: token, InfraID: "infra-1", InfraName: "demo", Node: "app",
		Resource: map[string]any{"type": "local"},
		Context:  ctx,
		Tags:     map[string]string{cloud.TagManaged: "1", cloud.TagInfraID: "infra-1", cloud.TagNode: "app", cloud.TagNodeID: token},
	}
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i := range s {
		out[i] = s[i]
	}
	return out
}

func sleeper(token string) cloud.InstanceSpec {
	return processSpec(token, []string{"sh", "-c", "exec sleep 300"}, nil, nil)
}

func (f *fixture) create(spec cloud.InstanceSpec) string {
	f.t.Helper()
	id, err := f.l.Create(context.Background(), spec)
	if err != nil {
		f.t.Fatalf("create %s: %v", spec.Token, err)
	}
	return id
}

func (f *fixture) describe(id string) cloud.Instance {
	f.t.Helper()
	in, err := f.l.Describe(context.Background(), id)
	if err != nil {
		f.t.Fatalf("describe %s: %v", id, err)
	}
	return in
}

func (f *fixture) record(id string) *record {
	f.t.Helper()
	rec, err := readRecord(filepath.Join(f.dir, "instances", id))
	if err != nil {
		f.t.Fatal(err)
	}
	return rec
}

func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}

func TestInstanceServesOnItsOwnAddress(t *testing.T) {
	t.Setenv("SKYFLEET_TEST_SECRET", "must-not-leak")
	f := newFixture(t, nil)
	content := "upstream 127.93.0.9:8080\n"
	spec := processSpec("node-http", []string{"skyfleet", "-test.run=^$"},
		map[string]any{helperEnv: "http", "HELPER_PORT": 18080, "GREETING": "hi there"},
		map[string]any{"conf/lb.cfg": content, "motd": "hello"})
	id := f.create(spec)
	if id != "local-node-http" {
		t.Fatalf("id = %q, want local-node-http", id)
	}
	in := f.describe(id)
	if in.State != cloud.StateRunning || in.Token != "node-http" || in.Tags[cloud.TagNode] != "app" {
		t.Fatalf("describe after create: %+v", in)
	}
	addr := in.Address()
	if !strings.HasPrefix(addr, "127.93.0.") || addr == "127.0.0.1" || in.PrivateAddress != addr {
		t.Fatalf("address %q (private %q), want one from %s", addr, in.PrivateAddress, testRange)
	}
	base := "http://" + net.JoinHostPort(addr, "18080")
	eventually(t, "helper answers on "+base, func() (bool, string) {
		_, err := httpGet(base + "/env/SKYFLEET_IP")
		return err == nil, fmt.Sprint(err)
	})
	exe, _ := os.Executable()
	want := map[string]string{
		"/env/SKYFLEET_IP":          addr,
		"/env/SKYFLEET_NODE_ID":     "node-http",
		"/env/SKYFLEET_INFRA_ID":    "infra-1",
		"/env/SKYFLEET_INFRA_NAME":  "demo",
		"/env/SKYFLEET_NODE":        "app",
		"/env/SKYFLEET_BIN":         exe,
		"/env/GREETING":             "hi there",
		"/env/HELPER_PORT":          "18080",
		"/env/SKYFLEET_TEST_SECRET": "",
		"/file/conf/lb.cfg":         content,
		"/file/motd":                "hello",
	}
	for path, w := range want {
		got, err := httpGet(base + path)
		if err != nil || got != w {
			t.Errorf("GET %s = %q, %v; want %q", path, got, err, w)
		}
	}
	fi, err := os.Stat(filepath.Join(f.dir, "instances", id, "workdir", "conf", "lb.cfg"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("rendered file: %v, mode %v; want mode 0600", err, fi.Mode().Perm())
	}
	out, _ := os.ReadFile(filepath.Join(f.dir, "instances", id, "stdout.log"))
	if !strings.Contains(string(out), "listening on "+addr+":18080") {
		t.Errorf("stdout.log = %q, want the helper's listening line", out)
	}
	rec := f.record(id)
	if rec.PID == 0 || rec.StartTicks == 0 || rec.Command[0] != "skyfleet" || rec.Path != exe || rec.Address != addr {
		t.Errorf("instance.json = %+v", rec)
	}
	// Destroy sends SIGTERM first: the helper shuts down cleanly.
	if err := f.l.Destroy(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := httpGet(base + "/env/SKYFLEET_IP"); err == nil {
		t.Errorf("helper still answers after destroy")
	}
}

func TestAllocatedAddressIsBindable(t *testing.T) {
	f := newFixture(t, nil)
	id := f.create(sleeper("bind"))
	addr := f.describe(id).Address()
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatalf("listen on allocated loopback address %s: %v", addr, err)
	}
	defer ln.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial %s: %v", ln.Addr(), err)
	}
	conn.Close()
}

func TestAddressesAreUniqueAndReleasedOnDestroy(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.AddressRange = "127.93.1.0/30" }) // .1 and .2 usable
	a := f.create(sleeper("a"))
	b := f.create(sleeper("b"))
	addrA, addrB := f.describe(a).Address(), f.describe(b).Address()
	if addrA == addrB || addrA != "127.93.1.1" || addrB != "127.93.1.2" {
		t.Fatalf("addresses %s and %s, want 127.93.1.1 and 127.93.1.2", addrA, addrB)
	}
	if _, err := f.l.Create(context.Background(), sleeper("c")); err == nil || !strings.Contains(err.Error(), "exhausted") {
		t.Fatalf("third create in a two-address range: %v, want exhausted", err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "instances", "local-c")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed create left its directory: %v", err)
	}
	// A new Local on the same data dir knows the addresses are taken.
	f.l.Close()
	l2 := f.open()
	defer l2.Close()
	if _, err := l2.Create(context.Background(), sleeper("c")); err == nil {
		t.Fatalf("restarted provider reused a recorded address")
	}
	if err := l2.Destroy(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	c, err := l2.Create(context.Background(), sleeper("c"))
	if err != nil {
		t.Fatalf("create after destroy freed an address: %v", err)
	}
	if got, _ := l2.Describe(context.Background(), c); got.Address() != addrA {
		t.Fatalf("new instance got %s, want the released %s", got.Address(), addrA)
	}
}

func TestResourceAddressRangeOverride(t *testing.T) {
	f := newFixture(t, nil)
	p, err := f.l.Bind(map[string]any{"type": "local", "address_range": "127.93.7.0/24"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := p.Create(context.Background(), sleeper("ranged"))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.describe(id).Address(); got != "127.93.7.1" {
		t.Fatalf("address %s, want 127.93.7.1 from the resource's range", got)
	}
}

func TestKilledProcessIsGone(t *testing.T) {
	f := newFixture(t, nil)
	id := f.create(sleeper("victim"))
	pid := f.record(id).PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "describe reports gone", func() (bool, string) {
		in := f.describe(id)
		return in.State == cloud.StateGone, string(in.State)
	})
	if in := f.describe(id); !strings.Contains(in.Detail, "killed by signal 9") {
		t.Fatalf("detail %q, want the exit status", in.Detail)
	}
	// A lost process is not restarted under the same token.
	if again := f.create(sleeper("victim")); again != id || f.describe(id).State != cloud.StateGone {
		t.Fatalf("create with the token of a dead instance started something")
	}
	if n := processesOf(t, "victim"); len(n) != 0 {
		t.Fatalf("processes %v run for a dead instance's token", n)
	}
}

func TestRestartAdoptsRunningInstances(t *testing.T) {
	f := newFixture(t, nil)
	id := f.create(sleeper("survivor"))
	rec := f.record(id)
	f.l.Close() // the orchestrator stops; its instances do not

	l2 := f.open()
	defer l2.Close()
	ins, err := l2.List(context.Background(), map[string]string{cloud.TagManaged: "1", cloud.TagInfraID: "infra-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 1 || ins[0].ID != id || ins[0].State != cloud.StateRunning || ins[0].Token != "survivor" {
		t.Fatalf("List after restart = %+v, want the running instance %s", ins, id)
	}
	if none, _ := l2.List(context.Background(), map[string]string{cloud.TagInfraID: "other"}); len(none) != 0 {
		t.Fatalf("List with another infra id found %+v", none)
	}
	again, err := l2.Create(context.Background(), sleeper("survivor"))
	if err != nil || again != id {
		t.Fatalf("create after restart = %q, %v; want %s", again, err, id)
	}
	if got := f.record(id); got.PID != rec.PID || got.StartTicks != rec.StartTicks {
		t.Fatalf("record changed after restart: pid %d→%d", rec.PID, got.PID)
	}
	if procs := processesOf(t, "survivor"); len(procs) != 1 || procs[0] != rec.PID {
		t.Fatalf("processes for the token: %v, want only %d", procs, rec.PID)
	}
}

func TestConcurrentCreateStartsOneProcess(t *testing.T) {
	f := newFixture(t, nil)
	var wg sync.WaitGroup
	ids := make([]string, 6)
	for i := range ids {
		wg.Go(func() {
			id, err := f.l.Create(context.Background(), sleeper("once"))
			if err != nil {
				t.Errorf("create: %v", err)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != "local-once" {
			t.Fatalf("ids %v", ids)
		}
	}
	if procs := processesOf(t, "once"); len(procs) != 1 {
		t.Fatalf("six creates with one token started processes %v", procs)
	}
}

func TestDestroyStopsTheWholeGroup(t *testing.T) {
	f := newFixture(t, nil)
	spec := processSpec("group", []string{"sh", "-c", "sleep 300 & sleep 300 & touch started; wait"}, nil, nil)
	id := f.create(spec)
	dir := filepath.Join(f.dir, "instances", id)
	eventually(t, "script started its children", func() (bool, string) {
		_, err := os.Stat(filepath.Join(dir, "workdir", "started"))
		return err == nil, fmt.Sprint(err)
	})
	if procs := processesOf(t, "group"); len(procs) != 3 {
		t.Fatalf("want 3 processes (shell and two sleeps), got %v", procs)
	}
	if err := f.l.Destroy(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if procs := processesOf(t, "group"); len(procs) != 0 {
		t.Fatalf("processes %v survived destroy", procs)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("instance directory left behind: %v", err)
	}
	if in := f.describe(id); in.State != cloud.StateGone {
		t.Fatalf("describe after destroy: %s", in.State)
	}
	if err := f.l.Destroy(context.Background(), id); err != nil {
		t.Fatalf("second destroy: %v", err)
	}
	if err := f.l.Destroy(context.Background(), "local-never-existed"); err != nil {
		t.Fatalf("destroy of an unknown id: %v", err)
	}
}

func TestDestroyKillsWhatIgnoresSIGTERM(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.KillGrace = 200 * time.Millisecond })
	spec := processSpec("stubborn", []string{"sh", "-c", `trap "" TERM; touch ready; while :; do sleep 1; done`}, nil, nil)
	id := f.create(spec)
	eventually(t, "trap installed", func() (bool, string) {
		_, err := os.Stat(filepath.Join(f.dir, "instances", id, "workdir", "ready"))
		return err == nil, fmt.Sprint(err)
	})
	if err := f.l.Destroy(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if procs := processesOf(t, "stubborn"); len(procs) != 0 {
		t.Fatalf("processes %v survived destroy", procs)
	}
	if !strings.Contains(f.logs.String(), "ignored SIGTERM; sending SIGKILL") {
		t.Fatalf("destroy did not need SIGKILL; the test did not exercise the grace path")
	}
}

func TestDestroyHonoursContext(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.KillGrace = time.Hour })
	spec := processSpec("slow", []string{"sh", "-c", `trap "" TERM; touch ready; while :; do sleep 1; done`}, nil, nil)
	id := f.create(spec)
	eventually(t, "trap installed", func() (bool, string) {
		_, err := os.Stat(filepath.Join(f.dir, "instances", id, "workdir", "ready"))
		return err == nil, fmt.Sprint(err)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := f.l.Destroy(ctx, id); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("destroy with a short context and an hour of grace: %v, want deadline exceeded", err)
	}
	// The group was killed on the way out; a retried destroy cleans up.
	if err := f.l.Destroy(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if procs := processesOf(t, "slow"); len(procs) != 0 {
		t.Fatalf("processes %v survived", procs)
	}
}

// startForeign starts a process the provider did not start, released so that only the
// test's own reaping (none) concerns it.
func startForeign(t *testing.T, env []string) (int, procStat) {
	t.Helper()
	p, err := os.StartProcess("/bin/sh", []string{"sh", "-c", "exec sleep 300"}, &os.ProcAttr{
		Env: env, Files: []*os.File{nil, nil, nil}, Sys: &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	pid := p.Pid
	p.Release()
	st, err := readStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGKILL)
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
	})
	return pid, st
}

func writeFakeRecord(t *testing.T, dataDir string, rec *record) {
	t.Helper()
	dir := filepath.Join(dataDir, "instances", rec.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeRecord(dir, rec); err != nil {
		t.Fatal(err)
	}
}

func TestReusedPidIsNeverSignalled(t *testing.T) {
	f := newFixture(t, nil)
	pid, st := startForeign(t, []string{"PATH=/usr/bin:/bin"})
	writeFakeRecord(t, f.dir, &record{
		ID: "local-stale", Token: "stale", PID: pid, StartTicks: st.start + 1, Address: "127.93.0.200",
		Tags: map[string]string{cloud.TagManaged: "1"}, Created: time.Now(),
	})
	in := f.describe("local-stale")
	if in.State != cloud.StateGone || !strings.Contains(in.Detail, "now names another process") {
		t.Fatalf("describe of a record whose pid was reused: %s %q, want gone", in.State, in.Detail)
	}
	if err := f.l.Destroy(context.Background(), "local-stale"); err != nil {
		t.Fatal(err)
	}
	now, err := readStat(pid)
	if err != nil || now.zombie() || now.start != st.start {
		t.Fatalf("destroy of a stale record hurt the process that reused its pid: %+v, %v", now, err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "instances", "local-stale")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale record not removed: %v", err)
	}
}

func TestUnrecordedProcessIsFoundByNodeID(t *testing.T) {
	// The orchestrator stopped after starting the process but before writing its pid.
	f := newFixture(t, nil)
	pid, _ := startForeign(t, []string{"PATH=/usr/bin:/bin", envNodeID + "=half"})
	writeFakeRecord(t, f.dir, &record{ID: "local-half", Token: "half", Address: "127.93.0.201", Created: time.Now()})
	in := f.describe("local-half")
	if in.State != cloud.StateRunning {
		t.Fatalf("describe: %s %q, want running (found by node id)", in.State, in.Detail)
	}
	if rec := f.record("local-half"); rec.PID != pid {
		t.Fatalf("record completed with pid %d, want %d", rec.PID, pid)
	}
	if id, err := f.l.Create(context.Background(), sleeper("half")); err != nil || id != "local-half" {
		t.Fatalf("create = %q, %v", id, err)
	}
	if procs := processesOf(t, "half"); len(procs) != 1 {
		t.Fatalf("processes %v, want the one adopted", procs)
	}
	if err := f.l.Destroy(context.Background(), "local-half"); err != nil {
		t.Fatal(err)
	}
	if procs := processesOf(t, "half"); len(procs) != 0 {
		t.Fatalf("processes %v survived destroy", procs)
	}
}

func TestCreateErrors(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.AddressRange = "127.93.2.0/30" }) // two addresses
	tests := []struct {
		name string
		spec cloud.InstanceSpec
		want string
	}{
		{"file escapes workdir", processSpec("esc", []string{"true"}, nil, map[string]any{"../evil": "x"}),
			`path "../evil" leaves the working directory`},
		{"absolute file", processSpec("abs", []string{"true"}, nil, map[string]any{"/etc/evil": "x"}),
			`path "/etc/evil" leaves the working directory`},
		{"unknown command", processSpec("nocmd", []string{"no-such-program-xyz"}, nil, nil),
			`command "no-such-program-xyz": not found in PATH`},
		{"bad token", processSpec("../up", []string{"true"}, nil, nil), `token "../up" is not usable`},
		{"no context", cloud.InstanceSpec{Token: "noctx"}, "contextualisation: missing"},
		{"bad resource", func() cloud.InstanceSpec {
			s := sleeper("badres")
			s.Resource = map[string]any{"type": "local", "cpu": 1}
			return s
		}(), "resource.cpu: unknown key for type local (allowed: address_range, cpus, memory, name, type)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.l.Create(context.Background(), tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("create: %v, want an error containing %q", err, tt.want)
			}
			if _, err := os.Stat(filepath.Join(f.dir, "instances", "local-"+tt.spec.Token)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("failed create left a directory")
			}
		})
	}
	// Every failed create released its address: both addresses of the range are free.
	a, b := f.create(sleeper("after1")), f.create(sleeper("after2"))
	if f.describe(a).Address() == f.describe(b).Address() {
		t.Fatalf("two instances share an address")
	}
}

func TestWorkdirAndRelativeCommand(t *testing.T) {
	f := newFixture(t, nil)
	spec := processSpec("wd", []string{"sh", "run.sh"}, nil, map[string]any{"run.sh": "pwd > where; exec sleep 300\n"})
	spec.Context["workdir"] = "sub/dir"
	id := f.create(spec)
	where := filepath.Join(f.dir, "instances", id, "workdir", "sub", "dir", "where")
	eventually(t, "script ran", func() (bool, string) {
		b, err := os.ReadFile(where)
		return err == nil && len(b) > 0, fmt.Sprint(err)
	})
	b, _ := os.ReadFile(where)
	if strings.TrimSpace(string(b)) != filepath.Dir(where) {
		t.Fatalf("process ran in %q, want %q", b, filepath.Dir(where))
	}
}

func TestCPULimitWithoutCgroupV2IsReported(t *testing.T) {
	f := newFixture(t, nil) // CgroupRoot points at a directory that does not exist
	spec := sleeper("capped")
	spec.Resource = map[string]any{"type": "local", "cpus": 0.5, "memory": "64Mi"}
	id := f.create(spec)
	in := f.describe(id)
	if in.State != cloud.StateRunning {
		t.Fatalf("state %s, want running despite the missing cgroup support", in.State)
	}
	for _, want := range []string{
		"cpus limit not applied: cgroup v2 not available at " + f.opts.CgroupRoot + ": no such file or directory",
		"memory limit not applied: cgroup v2 not available at",
	} {
		if !strings.Contains(in.Detail, want) {
			t.Errorf("detail %q does not contain %q", in.Detail, want)
		}
		if !strings.Contains(f.logs.String(), "instance limit not applied") {
			t.Errorf("no warning logged")
		}
	}
	// The reason survives a restart.
	f.l.Close()
	l2 := f.open()
	defer l2.Close()
	if in2, _ := l2.Describe(context.Background(), id); in2.Detail != in.Detail {
		t.Fatalf("detail after restart %q, want %q", in2.Detail, in.Detail)
	}
}

func TestCPULimitWritesCgroupFiles(t *testing.T) {
	// A stand-in hierarchy: plain files take the writes the kernel would take, and the
	// process is moved in through cgroup.procs because it cannot be started inside a
	// directory that is not a real cgroup.
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpuset cpu io memory pids\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(o *Options) { o.CgroupRoot = root })
	spec := sleeper("limited")
	spec.Resource = map[string]any{"type": "local", "cpus": 0.5, "memory": "256Mi"}
	id := f.create(spec)
	cg := filepath.Join(root, "skyfleet", id)
	want := map[string]string{
		"cpu.max":      "50000 100000",
		"memory.max":   "268435456",
		"cgroup.procs": fmt.Sprint(f.record(id).PID),
	}
	for file, w := range want {
		b, err := os.ReadFile(filepath.Join(cg, file))
		if err != nil || string(b) != w {
			t.Errorf("%s = %q, %v; want %q", file, b, err, w)
		}
	}
	if in := f.describe(id); in.Detail != "" {
		t.Errorf("detail %q, want none when the limits were applied", in.Detail)
	}
	if err := f.l.Destroy(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cg); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("cgroup left after destroy: %v", err)
	}
}

func TestCPULimitOnRealCgroupV2(t *testing.T) {
	b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
	if err != nil || !strings.Contains(string(b), "cpu") || syscall.Access("/sys/fs/cgroup", 2) != nil {
		t.Skip("cgroup v2 with the cpu controller is not writable here; TestCPULimitWithoutCgroupV2IsReported covers the fallback")
	}
	f := newFixture(t, func(o *Options) { o.CgroupRoot = DefaultCgroupRoot })
	spec := sleeper("real-cg")
	spec.Resource = map[string]any{"type": "local", "cpus": 0.25}
	id := f.create(spec)
	in := f.describe(id)
	if in.Detail != "" {
		t.Skipf("cgroup v2 present but not usable: %s", in.Detail)
	}
	pid := f.record(id).PID
	self, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if !strings.Contains(string(self), "/skyfleet/"+id) {
		t.Fatalf("process cgroup %q, want skyfleet/%s", self, id)
	}
	cpuMax, _ := os.ReadFile(filepath.Join(DefaultCgroupRoot, "skyfleet", id, "cpu.max"))
	if strings.TrimSpace(string(cpuMax)) != "25000 100000" {
		t.Fatalf("cpu.max = %q", cpuMax)
	}
}

func TestInstanceRecordShape(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		o.Clock = func() time.Time { return time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC) }
	})
	id := f.create(sleeper("shape"))
	b, err := os.ReadFile(filepath.Join(f.dir, "instances", id, "instance.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "id", "token", "pid", "start_ticks", "address", "tags", "created", "command", "workdir"} {
		if _, ok := m[k]; !ok {
			t.Errorf("instance.json lacks %q: %s", k, b)
		}
	}
	if m["created"] != "2026-03-04T05:06:07Z" {
		t.Errorf("created = %v, want the injected clock's time", m["created"])
	}
	if in := f.describe(id); !in.Created.Equal(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)) {
		t.Errorf("Instance.Created = %v", in.Created)
	}
}

func TestInterruptedCreateIsCompleted(t *testing.T) {
	// The orchestrator wrote the provisional record, then stopped before starting the
	// process: the retried create starts it, on the address already allocated.
	f := newFixture(t, nil)
	writeFakeRecord(t, f.dir, &record{ID: "local-resume", Token: "resume", Address: "127.93.0.150", Created: time.Now()})
	if in := f.describe("local-resume"); in.State != cloud.StateGone {
		t.Fatalf("describe of an interrupted create: %s, want gone", in.State)
	}
	id := f.create(sleeper("resume"))
	in := f.describe(id)
	if id != "local-resume" || in.State != cloud.StateRunning || in.Address() != "127.93.0.150" {
		t.Fatalf("completed create: %s %s at %s", id, in.State, in.Address())
	}
	if procs := processesOf(t, "resume"); len(procs) != 1 {
		t.Fatalf("processes %v, want one", procs)
	}
}

func TestInstanceOutlivesTheOrchestratorProcess(t *testing.T) {
	f := newFixture(t, nil)
	f.l.Close()
	exe, _ := os.Executable()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=orchestrate", "HELPER_DATA_DIR="+f.dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("orchestrator process: %v\n%s", err, out)
	}
	if strings.TrimSpace(string(out)) != "local-orphan" {
		t.Fatalf("orchestrator printed %q", out)
	}
	// The orchestrator has exited; its instance still runs and is adopted.
	l := f.open()
	defer l.Close()
	in, err := l.Describe(context.Background(), "local-orphan")
	if err != nil || in.State != cloud.StateRunning {
		t.Fatalf("instance after its orchestrator exited: %+v, %v; want running", in, err)
	}
	if procs := processesOf(t, "orphan"); len(procs) != 1 || procs[0] != f.record("local-orphan").PID {
		t.Fatalf("processes %v, want the recorded one", procs)
	}
	if err := l.Destroy(context.Background(), "local-orphan"); err != nil {
		t.Fatal(err)
	}
	if procs := processesOf(t, "orphan"); len(procs) != 0 {
		t.Fatalf("processes %v survived destroy", procs)
	}
}

func TestReserveGivesCreateItsAddress(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(o *Options) { o.AddressRange = "127.93.2.0/30" }) // two usable addresses
	res := map[string]any{"type": "local"}
	addr, err := f.l.Reserve(ctx, "r1", res)
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.l.Reserve(ctx, "r1", res)
	if err != nil || again != addr {
		t.Fatalf("second Reserve = %q, %v; want %q", again, err, addr)
	}
	other, err := f.l.Reserve(ctx, "r2", res)
	if err != nil || other == addr {
		t.Fatalf("another token got %q (%v), want an address other than %q", other, err, addr)
	}
	id := f.create(sleeper("r1"))
	if got := f.describe(id).Address(); got != addr {
		t.Fatalf("instance created after Reserve has %s, want the reserved %s", got, addr)
	}
	// Unreserve leaves a created instance alone, and frees a reservation never used.
	if err := f.l.Unreserve(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	if got := f.describe(id); got.State != cloud.StateRunning {
		t.Fatalf("Unreserve touched a running instance: %+v", got)
	}
	if err := f.l.Unreserve(ctx, "r2"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "instances", "local-r2")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("unused reservation left its directory: %v", err)
	}
	// The range holds two addresses: r3 gets one only because Unreserve freed r2's.
	third, err := f.l.Reserve(ctx, "r3", res)
	if err != nil || third != other {
		t.Fatalf("after Unreserve the next reservation got %q (%v), want the freed %q", third, err, other)
	}
}
