package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/store"
)

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runUpUntilReady runs `skyfleet up` and presses Ctrl-C (cancels its context) once it says
// the infrastructure is ready. It returns stdout, stderr and the exit code.
func runUpUntilReady(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, append([]string{"up", "--listen", "127.0.0.1:0", "--resync", "300ms", "--log-level", "error"}, args...), strings.NewReader(""), &out, &errb)
	}()
	deadline := time.After(2 * time.Minute)
	for !strings.Contains(out.String(), "Press Ctrl-C") {
		select {
		case code := <-done:
			t.Fatalf("up exited with %d before it was ready:\n%s\n%s", code, out.String(), errb.String())
		case <-deadline:
			cancel()
			<-done
			t.Fatalf("up was not ready within 2 minutes:\n%s\n%s", out.String(), errb.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	cancel()
	select {
	case code := <-done:
		return out.String(), errb.String(), code
	case <-time.After(2 * time.Minute):
		t.Fatalf("up did not exit within 2 minutes of Ctrl-C:\n%s", out.String())
	}
	return "", "", 0
}

func TestUpDestroysOnCtrlC(t *testing.T) {
	out, errOut, code := runUpUntilReady(t, filepath.Join("testdata", "up"))
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"imported nodes from testdata/up/nodes/app.yaml: [app]",
		"imported nodes from testdata/up/nodes/lb.yaml: [lb]",
		"lb: 1/1 ready", "app: 1/1 ready", "is ready", "NODE ID", "destroying infrastructure", "is gone",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	m := regexp.MustCompile(`data directory (\S+)\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("output does not name the data directory:\n%s", out)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("temporary data directory %s still exists after a clean teardown (%v)", m[1], err)
	}
}

func TestUpKeep(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	out, errOut, code := runUpUntilReady(t, filepath.Join("testdata", "up"), "--keep", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "skyfleet serve --data-dir "+dir) || strings.Contains(out, "destroying") {
		t.Errorf("--keep output:\n%s", out)
	}
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("the data directory is not free after up --keep exited: %v", err)
	}
	defer st.Close()
	var n int
	err = st.View(context.Background(), func(tx store.Tx) error {
		recs, err := tx.Infras()
		n = len(recs)
		return err
	})
	if err != nil || n != 1 {
		t.Errorf("%d infrastructures kept (%v), want 1", n, err)
	}
}

func TestUpLayoutErrors(t *testing.T) {
	empty := t.TempDir()
	_, errOut, code := runCLI(t, "up", empty)
	if code == 0 || !strings.Contains(errOut, "no node definitions") {
		t.Errorf("empty dir: %d %q", code, errOut)
	}
	noInfra := t.TempDir()
	if err := os.WriteFile(filepath.Join(noInfra, "node_definitions.yaml"), []byte("'node_def:a':\n  - resource: {type: sim}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = runCLI(t, "up", noInfra)
	if code == 0 || !strings.Contains(errOut, "no infrastructure descriptor") || !strings.Contains(errOut, "infra.yaml") {
		t.Errorf("no descriptor: %d %q", code, errOut)
	}
}

// TestUpInfraAndMessage builds the descriptor named by --infra and prints the directory's
// up.txt rendered with that infrastructure's values and the ready instances' addresses.
func TestUpInfraAndMessage(t *testing.T) {
	out, errOut, code := runUpUntilReady(t, filepath.Join("testdata", "upmsg"), "--infra", "infra-alt.yaml")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "from testdata/upmsg/infra-alt.yaml") || !strings.Contains(out, "app: 2/2 ready") {
		t.Errorf("up did not build infra-alt.yaml:\n%s", out)
	}
	id := regexp.MustCompile(`building infrastructure (\S+)`).FindStringSubmatch(out)
	server := regexp.MustCompile(`serving at (\S+) `).FindStringSubmatch(out)
	lb := regexp.MustCompile(`(?m)^lb\s+\S+\s+(\S+)`).FindStringSubmatch(out)
	apps := regexp.MustCompile(`(?m)^app\s+\S+\s+(\S+)`).FindAllStringSubmatch(out, -1)
	if id == nil || server == nil || lb == nil || len(apps) != 2 {
		t.Fatalf("output lacks the id, the server or the addresses:\n%s", out)
	}
	want := "hello from the alternative descriptor (cli-test-alt, " + id[1] + ")\n" +
		"lb at " + lb[1] + "; apps: " + apps[0][1] + " " + apps[1][1] + "\n" +
		"server: " + server[1] + "\n"
	if !strings.Contains(out, want) {
		t.Errorf("ready message: want\n%s\nin\n%s", want, out)
	}
	if strings.Index(out, want) > strings.Index(out, "Press Ctrl-C") {
		t.Errorf("the message comes after the Ctrl-C hint:\n%s", out)
	}
}

// TestUpBadChoices: a missing --infra file and a message using what the descriptor lacks are
// refused before anything starts, naming the file.
func TestUpBadChoices(t *testing.T) {
	dir := filepath.Join("testdata", "upmsg")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"missing --infra", []string{"up", dir, "--infra", "nope.yaml"}, []string{"--infra nope.yaml", filepath.Join(dir, "nope.yaml")}},
		{"message variable undefined", []string{"up", dir}, []string{filepath.Join(dir, "up.txt") + ":2", `variables.greeting`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, tc.args...)
			if code == 0 {
				t.Fatalf("exit 0:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("error lacks %q: %s", w, errOut)
				}
			}
			if strings.Contains(out, "serving at") {
				t.Errorf("a server was started:\n%s", out)
			}
		})
	}
}

// TestUpShowsWhyAnInstanceFailed: when a local instance's program exits, up shows the last
// lines it wrote to stderr under the failure line, so the reason is on screen.
func TestUpShowsWhyAnInstanceFailed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"up", filepath.Join("testdata", "upfail"), "--listen", "127.0.0.1:0", "--resync", "300ms", "--data-dir", t.TempDir()}, strings.NewReader(""), &out, &errb)
	}()
	want := regexp.MustCompile(`db: instance \S+ failed: .*\n  its last output \(\S+stderr\.log\):\n    starting\n    db: the server binaries are missing; install them\n`)
	deadline := time.After(time.Minute)
	for !want.MatchString(out.String()) {
		select {
		case code := <-done:
			t.Fatalf("up exited with %d:\n%s\n%s", code, out.String(), errb.String())
		case <-deadline:
			cancel()
			<-done
			t.Fatalf("no failure with its output within a minute:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	cancel()
	<-done
}
