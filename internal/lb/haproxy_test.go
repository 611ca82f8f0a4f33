package lb

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needHAProxy skips when haproxy is missing, unless SKYFLEET_REQUIRE_INTEGRATION is set.
func needHAProxy(t *testing.T) string {
	t.Helper()
	bin, err := FindHAProxy("")
	if err != nil {
		if os.Getenv("SKYFLEET_REQUIRE_INTEGRATION") != "" {
			t.Fatalf("SKYFLEET_REQUIRE_INTEGRATION is set: %v", err)
		}
		t.Skip(err)
	}
	return bin
}

// freePort returns a loopback address that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// eventually polls cond until it holds or 15 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestParseStat(t *testing.T) {
	out := "# pxname,svname,qcur,qmax,scur,smax,status\nfe,FRONTEND,,,3,5,OPEN\nbe,s1,0,0,2,4,UP\nbe,s2,0,0,0,1,MAINT\nbe,BACKEND,0,0,2,4,UP\nother,s1,0,0,9,9,UP\n"
	got, err := parseStat(out, "be")
	if err != nil {
		t.Fatal(err)
	}
	if got["s1"] != 2 || got["s2"] != 0 || got["BACKEND"] != 2 || len(got) != 3 {
		t.Fatalf("parseStat = %v", got)
	}
	if _, err := parseStat("# pxname,svname\nbe,s1\n", "be"); err == nil {
		t.Fatal("want an error without an scur column")
	}
}

func TestHAProxyConfigRejectsBadListen(t *testing.T) {
	bin := needHAProxy(t)
	h, err := NewHAProxy(HAProxyOptions{Binary: bin, Listen: "no-port", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	err = h.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), `"no-port"`) {
		t.Fatalf("Run with a bad listen address: %v", err)
	}
}

func TestHAProxyEngine(t *testing.T) {
	bin := needHAProxy(t)
	a, b, c := newNamedBackend(t, "a"), newNamedBackend(t, "b"), newNamedBackend(t, "c")
	listen, metrics := freePort(t), freePort(t)
	h, err := NewHAProxy(HAProxyOptions{
		Binary: bin, Listen: listen, MetricsListen: metrics, Dir: t.TempDir(),
		Slots: 8, Poll: 50 * time.Millisecond, DrainTimeout: 10 * time.Second, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.Update([]Backend{a.backend(), b.backend()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	c0 := newClient(t)
	url := "http://" + listen
	try := func() (int, string) {
		resp, err := c0.Get(url + "/")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	// sees reports whether want are all answering (and nothing else) within 40 requests.
	sees := func(want ...string) bool {
		seen := map[string]bool{}
		for range 40 {
			status, body := try()
			if status != 200 {
				return false
			}
			seen[body] = true
		}
		if len(seen) != len(want) {
			return false
		}
		for _, w := range want {
			if !seen[w] {
				return false
			}
		}
		return true
	}
	eventually(t, "both backends answer through haproxy", func() bool { return sees("a", "b") })

	t.Run("haproxy's prometheus exporter", func(t *testing.T) {
		status, body := get(t, c0, "http://"+metrics+"/metrics")
		if status != 200 || !strings.Contains(body, "haproxy_server_current_sessions") {
			t.Fatalf("metrics: %d, %d bytes without haproxy_server_current_sessions", status, len(body))
		}
	})

	t.Run("a removed backend drains", func(t *testing.T) {
		held := make(chan string, 1)
		go func() {
			resp, err := newClient(t).Get(url + "/hold")
			if err != nil {
				held <- "error: " + err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			held <- string(body)
		}()
		var busy, other *namedBackend
		select {
		case <-a.holding:
			busy, other = a, b
		case <-b.holding:
			busy, other = b, a
		case <-time.After(10 * time.Second):
			t.Fatal("held request reached no backend")
		}
		h.Update([]Backend{other.backend()})
		eventually(t, "haproxy reports the held session on the draining backend", func() bool {
			return h.Active()[busy.name] == 1
		})
		for range 10 {
			if status, body := try(); status != 200 || body != other.name {
				t.Fatalf("request during the drain went to %d %q, want %s", status, body, other.name)
			}
		}
		busy.releaseAll()
		if got := <-held; got != busy.name {
			t.Fatalf("held request answered %q, want %q", got, busy.name)
		}
		eventually(t, "the drained backend leaves haproxy", func() bool {
			_, held := h.Active()[busy.name]
			return !held
		})
		// Continue with the backend that stayed.
		a = other
	})

	t.Run("an added backend receives traffic", func(t *testing.T) {
		h.Update([]Backend{a.backend(), c.backend()})
		eventually(t, "the new backend answers", func() bool { return sees(a.name, "c") })
	})

	t.Run("a killed haproxy is restarted with the current backends", func(t *testing.T) {
		pid := h.PID()
		if pid == 0 {
			t.Fatal("no haproxy pid")
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a new haproxy runs", func() bool { p := h.PID(); return p != 0 && p != pid })
		c0.CloseIdleConnections()
		eventually(t, "the restarted haproxy serves both backends", func() bool { return sees(a.name, "c") })
	})
}

func TestHAProxyServesTLS(t *testing.T) {
	bin := needHAProxy(t)
	a := newNamedBackend(t, "a")
	_, pem, err := SelfSigned("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	listen := freePort(t)
	h, err := NewHAProxy(HAProxyOptions{Binary: bin, Listen: listen, TLSPEM: pem, Dir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	h.Update([]Backend{a.backend()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	client := tlsClient(t, pem)
	defer func() {
		// haproxy's soft stop waits for open client connections, idle HTTP/2 ones included.
		client.CloseIdleConnections()
		cancel()
		<-done
	}()
	eventually(t, "haproxy answers over TLS with HTTP/2", func() bool {
		resp, err := client.Get("https://" + listen + "/")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && string(body) == "a" && resp.ProtoMajor == 2
	})
}

func tlsClient(t *testing.T, pemBundle []byte) *http.Client {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: tlsConfigTrusting(t, pemBundle), ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// startHAProxyBench runs the haproxy engine in front of up for a benchmark.
func startHAProxyBench(b *testing.B, up *httptest.Server) string {
	bin, err := FindHAProxy("")
	if err != nil {
		b.Skip(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	h, err := NewHAProxy(HAProxyOptions{Binary: bin, Listen: listen, Dir: b.TempDir(), Logger: slogDiscard()})
	if err != nil {
		b.Fatal(err)
	}
	h.Update([]Backend{{ID: "a", Addr: up.Listener.Addr().String()}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + listen + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("haproxy did not serve: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	http.DefaultClient.CloseIdleConnections()
	return "http://" + listen
}

func BenchmarkHAProxySmall(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer up.Close()
	benchSmall(b, startHAProxyBench(b, up))
}

func BenchmarkHAProxyLarge(b *testing.B) {
	benchLarge(b, startHAProxyBench(b, largeUpstream(b)))
}
