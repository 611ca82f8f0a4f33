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
