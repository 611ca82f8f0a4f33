package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/skyfleet/skyfleet/internal/api"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(cleanupRunner{m})
}

// cleanupRunner removes the built binary once the tests ran (goleak's VerifyTestMain exits
// the process itself).
type cleanupRunner struct{ m *testing.M }

func (r cleanupRunner) Run() int {
	code := r.m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	return code
}

// demoKey is the seed's API key, which every example's app accepts.
const demoKey = "1a7e159a-ffd8-49c8-8b40-549870c70e73"

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// skyfleetBinary builds cmd/skyfleet once per test binary (static, so the Docker image can
// hold it too) and returns its path.
func skyfleetBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "skyfleet-e2e-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "skyfleet")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/skyfleet")
		cmd.Dir = repoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/skyfleet: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// repoRoot is the module's root directory (tests run in internal/e2e).
func repoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return "../.."
	}
	return filepath.Dir(filepath.Dir(wd))
}

// requirePrograms skips the test when a program is missing, unless
// SKYFLEET_REQUIRE_INTEGRATION is set, in which case it fails.
func requirePrograms(t *testing.T, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if found(p) {
			continue
		}
		if os.Getenv("SKYFLEET_REQUIRE_INTEGRATION") != "" {
			t.Fatalf("%s is not installed and SKYFLEET_REQUIRE_INTEGRATION is set", p)
		}
		t.Skipf("%s is not installed (set SKYFLEET_REQUIRE_INTEGRATION to make this a failure)", p)
	}
}

// found tells whether a program is installed; "postgres" means the PostgreSQL server, which
// Debian keeps out of $PATH.
func found(p string) bool {
	if p == "postgres" {
		m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
		if len(m) > 0 {
			return true
		}
	}
	_, err := exec.LookPath(p)
	return err == nil
}

// localRangeLine matches the type line of a local resource in a node definition file.
var localRangeLine = regexp.MustCompile(`(?m)^(\s+)type: local$`)

// isolatedExamples copies the repository's examples into a temporary directory with every
// local resource given its own loopback /24 (address_range), so that this run's instances
// never take the addresses of another skyfleet on the machine (a user's `skyfleet up`, or
// the same test run by someone else), which all start from 127.42.0.1 by default.
// It returns the copy's examples directory and the range.
func isolatedExamples(t *testing.T) (string, string) {
	t.Helper()
	rng := fmt.Sprintf("127.60.%d.0/24", rand.IntN(256))
	src := filepath.Join(repoRoot(), "examples")
	dst := filepath.Join(t.TempDir(), "examples")
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.HasSuffix(path, ".yaml") {
			data = localRangeLine.ReplaceAll(data, []byte("${1}type: local\n${1}address_range: '"+rng+"'"))
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(out, data, st.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copy the examples: %v", err)
	}
	return dst, rng
}

// artifactsDir is where a test keeps what a person would want to look at after a run.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SKYFLEET_ARTIFACTS_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else {
		dir = filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("artifacts in %s", dir)
	return dir
}

// freeAddr returns a loopback host:port nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// lockedBuffer collects a subprocess's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// upRun is one `skyfleet up` subprocess.
type upRun struct {
	t       *testing.T
	cmd     *exec.Cmd
	out     *lockedBuffer
	errFile string
	done    chan error
	server  string
	dataDir string
	infraID string
	http    *http.Client
}

// startUp runs `skyfleet up DIR ARGS…` on a free port with its own data directory and waits
// until it prints that the infrastructure is ready.
func startUp(t *testing.T, bin, dir string, readyWithin time.Duration, args ...string) *upRun {
	t.Helper()
	addr := freeAddr(t)
	u := &upRun{
		t:       t,
		out:     &lockedBuffer{},
		done:    make(chan error, 1),
		server:  "http://" + addr,
		dataDir: filepath.Join(t.TempDir(), "state"),
		http:    &http.Client{Timeout: 10 * time.Second},
	}
	all := append([]string{"up", dir, "--listen", addr, "--data-dir", u.dataDir, "--resync", "1s", "--log-level", "info"}, args...)
	u.cmd = exec.Command(bin, all...)
	u.cmd.Dir = repoRoot()
	u.cmd.Stdout = u.out
	u.errFile = filepath.Join(t.TempDir(), "up-stderr.log")
	ef, err := os.Create(u.errFile)
	if err != nil {
		t.Fatal(err)
	}
	u.cmd.Stderr = ef
	if err := u.cmd.Start(); err != nil {
		_ = ef.Close()
		t.Fatal(err)
	}
	go func() {
		u.done <- u.cmd.Wait()
		_ = ef.Close()
	}()
	t.Cleanup(u.kill)
	t.Logf("skyfleet %s", strings.Join(all, " "))

	deadline := time.Now().Add(readyWithin)
	for !strings.Contains(u.out.String(), "Press Ctrl-C") {
		select {
		case err := <-u.done:
			u.done <- err
			t.Fatalf("up exited (%v) before the infrastructure was ready:\n%s\n%s", err, u.out.String(), u.stderrTail())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the infrastructure was not ready within %s:\n%s\n%s", readyWithin, u.out.String(), u.stderrTail())
		}
	}
	m := regexp.MustCompile(`building infrastructure (\S+)`).FindStringSubmatch(u.out.String())
	if m == nil {
		t.Fatalf("up did not print the infrastructure id:\n%s", u.out.String())
	}
	u.infraID = m[1]
	return u
}

// stderrTail is the end of up's log, for failure messages.
func (u *upRun) stderrTail() string {
	data, _ := os.ReadFile(u.errFile)
	if len(data) > 6000 {
		data = data[len(data)-6000:]
	}
	return string(data)
}

// kill ends the up process if a test left it running (a failed test): SIGINT first, so it
// destroys what it built, then SIGKILL.
func (u *upRun) kill() {
	if u.cmd.ProcessState != nil {
		return
	}
	select {
	case err := <-u.done:
		u.done <- err
		return
	default:
	}
	_ = u.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-u.done:
		u.done <- err
	case <-time.After(2 * time.Minute):
		_ = u.cmd.Process.Kill()
		u.done <- <-u.done
	}
}

// interrupt presses Ctrl-C and waits for up to exit.
func (u *upRun) interrupt(within time.Duration) error {
	if err := u.cmd.Process.Signal(os.Interrupt); err != nil {
		return err
	}
	select {
	case err := <-u.done:
		u.done <- err
		return err
	case <-time.After(within):
		return fmt.Errorf("up did not exit within %s of Ctrl-C", within)
	}
}

// detail reads the infrastructure from the server.
func (u *upRun) detail(ctx context.Context) (*api.InfraDetail, error) {
	var d api.InfraDetail
	if err := u.getJSON(ctx, "/v1/infrastructures/"+u.infraID, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

func (u *upRun) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.server+path, nil)
	if err != nil {
		return err
	}
	resp, err := u.http.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return json.Unmarshal(body, v)
}

// node returns one node of a detail.
func node(d *api.InfraDetail, name string) *api.NodeDetail {
	for i := range d.Nodes {
		if d.Nodes[i].Name == name {
			return &d.Nodes[i]
		}
	}
	return nil
}

// addressOf returns the first ready instance's address of a node.
func addressOf(t *testing.T, d *api.InfraDetail, name string) string {
	t.Helper()
	if n := node(d, name); n != nil {
		for _, in := range n.Instances {
			if in.State == "ready" && len(in.Addresses) > 0 {
				return in.Addresses[0]
			}
		}
	}
	t.Fatalf("node %s has no ready instance", name)
	return ""
}

// waitFor polls the infrastructure until cond holds, logging each change of the app and lb
// counts, or fails the test after within.
func (u *upRun) waitFor(ctx context.Context, what string, within time.Duration, cond func(*api.InfraDetail) bool) *api.InfraDetail {
	u.t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for {
		d, err := u.detail(ctx)
		if err == nil {
			line := counts(d)
			if line != last {
				u.t.Logf("%s", line)
				last = line
			}
			if cond(d) {
				return d
			}
		}
		if time.Now().After(deadline) {
			u.t.Fatalf("%s: not within %s (last: %s, %v)\n%s", what, within, last, err, u.stderrTail())
		}
		select {
		case <-ctx.Done():
			u.t.Fatalf("%s: %v", what, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func counts(d *api.InfraDetail) string {
	var parts []string
	for _, n := range d.Nodes {
		parts = append(parts, fmt.Sprintf("%s %d/%d", n.Name, n.Ready, n.Target))
	}
	return strings.Join(parts, ", ")
}

// prober sends one small file request through the load balancer every interval and counts
// the failures: the "zero failed client requests throughout" check, kept up while the
// clusters grow and shrink.
type prober struct {
	mu       sync.Mutex
	ok, fail int
	errs     []string
	stop     chan struct{}
	done     chan struct{}
}

func startProber(url, storageURI string, interval time.Duration) *prober {
	p := &prober{stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 30 * time.Second}
	go func() {
		defer close(p.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
			err := probe(client, url, storageURI)
			p.mu.Lock()
			if err != nil {
				p.fail++
				if len(p.errs) < 20 {
					p.errs = append(p.errs, time.Now().Format("15:04:05.000")+" "+err.Error())
				}
			} else {
				p.ok++
			}
			p.mu.Unlock()
		}
	}()
	return p
}

func probe(c *http.Client, url, storageURI string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Key", demoKey)
	req.Header.Set("X-URI", storageURI)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return fmt.Errorf("read body after %d bytes: %w", n, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// finish stops the prober and returns its counts.
func (p *prober) finish() (ok, fail int, errs []string) {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ok, p.fail, p.errs
}

// loadRun is one `skyfleet load` subprocess.
type loadRun struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan error
}

func startLoad(t *testing.T, bin string, args ...string) *loadRun {
	t.Helper()
	l := &loadRun{out: &lockedBuffer{}, done: make(chan error, 1)}
	l.cmd = exec.Command(bin, append([]string{"load"}, args...)...)
	l.cmd.Stdout = l.out
	l.cmd.Stderr = l.out
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { l.done <- l.cmd.Wait() }()
	t.Cleanup(func() {
		if l.cmd.ProcessState == nil {
			_ = l.cmd.Process.Kill()
			<-l.done
		}
	})
	t.Logf("skyfleet load %s", strings.Join(args, " "))
	return l
}

// stop presses Ctrl-C on the load generator and returns its output and exit error.
func (l *loadRun) stop(within time.Duration) (string, error) {
	_ = l.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-l.done:
		return l.out.String(), err
	case <-time.After(within):
		_ = l.cmd.Process.Kill()
		return l.out.String(), errors.Join(errors.New("load did not stop after Ctrl-C"), <-l.done)
	}
}

// processTracker remembers every process group the local provider started for an
// infrastructure, by reading the instance records while the test runs.
type processTracker struct {
	dir  string
	pids map[int]bool
}

func newProcessTracker(dataDir string) *processTracker {
	return &processTracker{dir: filepath.Join(dataDir, "local", "instances"), pids: map[int]bool{}}
}

func (p *processTracker) scan() {
	files, _ := filepath.Glob(filepath.Join(p.dir, "*", "instance.json"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var rec struct {
			PID int `json:"pid"`
		}
		if json.Unmarshal(data, &rec) == nil && rec.PID > 0 {
			p.pids[rec.PID] = true
		}
	}
}

// leftovers lists the processes still running that belong to the infrastructure: in one of
// the recorded process groups, or carrying its id in their environment.
func (p *processTracker) leftovers(infraID string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name (which may hold spaces) in ")": state ppid pgrp.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 3 || f[0] == "Z" {
			continue
		}
		pgrp, _ := strconv.Atoi(f[2])
		env, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if p.pids[pgrp] || bytes.Contains(env, []byte("SKYFLEET_INFRA_ID="+infraID+"\x00")) {
			cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			out = append(out, fmt.Sprintf("pid %d (group %d): %s", pid, pgrp, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
	}
	return out
}

// checkTimeline reads a `skyfleet load --timeline` CSV and returns the highest app_ready
// and the total of the errors column.
func checkTimeline(t *testing.T, path string) (maxApp, errs, rows int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("timeline: %v", err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	var cols map[string]int
	for sc.Scan() {
		rec := strings.Split(sc.Text(), ",")
		if cols == nil {
			cols = map[string]int{}
			for i, c := range rec {
				cols[c] = i
			}
			for _, want := range []string{"errors", "app_ready"} {
				if _, ok := cols[want]; !ok {
					t.Fatalf("timeline %s has no %s column: %s", path, want, sc.Text())
				}
			}
			continue
		}
		rows++
		e, _ := strconv.Atoi(rec[cols["errors"]])
		a, _ := strconv.Atoi(rec[cols["app_ready"]])
		errs += e
		maxApp = max(maxApp, a)
	}
	return maxApp, errs, rows
}
