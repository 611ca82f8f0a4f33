package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// helperEnv switches the test binary into a helper process (see runHelper).
const helperEnv = "SKYFLEET_LOCAL_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		// Returning without m.Run ends the helper process with status 0.
		if err := runHelper(mode); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
		}
		return
	}
	goleak.VerifyTestMain(m)
}

// runHelper runs the test binary as another process: "http" is an instance that serves its
// environment and the files of its working directory on $SKYFLEET_IP:$HELPER_PORT until
// SIGTERM; "orchestrate" is a short-lived orchestrator that creates one instance in
// $HELPER_DATA_DIR and exits.
func runHelper(mode string) error {
	switch mode {
	case "http":
	case "orchestrate":
		l, err := New(Options{DataDir: os.Getenv("HELPER_DATA_DIR"), AddressRange: testRange})
		if err != nil {
			return err
		}
		defer l.Close()
		id, err := l.Create(context.Background(), sleeper("orphan"))
		if err != nil {
			return err
		}
		fmt.Println(id)
		return nil
	default:
		return fmt.Errorf("unknown helper mode %q", mode)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(os.Getenv("SKYFLEET_IP"), os.Getenv("HELPER_PORT")))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/env/{name}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getenv(r.PathValue("name")))
	})
	mux.HandleFunc("/file/{path...}", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(filepath.Clean(r.PathValue("path")))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Write(b)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	fmt.Println("listening on", ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	fmt.Println("terminated")
	return nil
}

// eventually polls cond until it holds or the deadline passes; waiting for real processes
// cannot use an injected clock.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, note := cond()
		if ok {
			return
		}
		last = note
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not reached within 20s (last: %s)", what, last)
}

// processesOf returns the live processes whose environment names token.
func processesOf(t *testing.T, token string) []int {
	t.Helper()
	all, err := pids()
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, pid := range all {
		st, err := readStat(pid)
		if err == nil && !st.zombie() && hasEnv(pid, envNodeID+"="+token) {
			out = append(out, pid)
		}
	}
	return out
}

// logBuffer collects log lines and mirrors them to the test log.
type logBuffer struct {
	t  *testing.T
	mu sync.Mutex
	sb strings.Builder
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sb.Write(p)
	b.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.String()
}
