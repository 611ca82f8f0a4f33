package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakePinger answers every ping with err and counts the calls.
type fakePinger struct {
	mu    sync.Mutex
	err   error
	calls []string
}

func (f *fakePinger) Ping(_ context.Context, addr string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, addr)
	return f.err
}

// recDialer records the addresses dialled and can redirect one to another.
type recDialer struct {
	mu      sync.Mutex
	dialled []string
	rewrite map[string]string
	d       net.Dialer
}

func (r *recDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	r.mu.Lock()
	r.dialled = append(r.dialled, addr)
	if to, ok := r.rewrite[addr]; ok {
		addr = to
	}
	r.mu.Unlock()
	return r.d.DialContext(ctx, network, addr)
}

// listen opens a TCP listener on 127.0.0.1 that accepts and closes connections until the
// test ends, and returns its port.
func listen(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = l.Close(); <-done })
	return l.Addr().(*net.TCPAddr).Port
}

// closedPort returns a port on 127.0.0.1 that nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return port
}

func TestCheckOrderAndLaziness(t *testing.T) {
	open, closed := listen(t), closedPort(t)
	tests := []struct {
		name       string
		pingErr    error
		spec       Spec
		wantOK     bool
		wantDetail string
		wantDials  int
	}{
		{"empty spec passes", nil, Spec{}, true, "ok", 0},
		{"ping only", nil, Spec{Ping: true}, true, "ok", 0},
		{"ping fails first, ports untouched", errNoReply, Spec{Ping: true, Ports: []int{open}}, false, "ping 127.0.0.1: no reply", 0},
		{"open port", nil, Spec{Ping: true, Ports: []int{open}}, true, "ok", 1},
		{"second port closed", nil, Spec{Ports: []int{open, closed, open}}, false,
			fmt.Sprintf("port %d: connection refused", closed), 2},
		{"closed port stops before urls", nil, Spec{Ports: []int{closed}, URLs: []string{"http://127.0.0.1:" + strconv.Itoa(closed) + "/"}},
			false, fmt.Sprintf("port %d: connection refused", closed), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &fakePinger{err: tc.pingErr}
			d := &recDialer{}
			c := NewChecker(CheckerOptions{Pinger: p, Dialer: d})
			r := c.Check(context.Background(), "127.0.0.1", tc.spec)
			if r.OK != tc.wantOK || r.Detail != tc.wantDetail || r.Aborted {
				t.Errorf("Check = %+v, want OK=%v Detail=%q", r, tc.wantOK, tc.wantDetail)
			}
			if tc.spec.Ping && len(p.calls) != 1 {
				t.Errorf("pinged %v, want once", p.calls)
			}
			if !tc.spec.Ping && len(p.calls) != 0 {
				t.Errorf("pinged %v with ping off", p.calls)
			}
			if len(d.dialled) != tc.wantDials {
				t.Errorf("dialled %v, want %d connections", d.dialled, tc.wantDials)
			}
		})
	}
}

func TestCheckNoAddress(t *testing.T) {
	c := NewChecker(CheckerOptions{Pinger: &fakePinger{}})
	if r := c.Check(context.Background(), "", Spec{Ping: true}); r.OK || r.Detail != "no address to check yet" {
		t.Errorf("Check without an address = %+v", r)
	}
}

// urlServer serves the cases of TestCheckURLs.
func urlServer(t *testing.T) (*httptest.Server, chan struct{}) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "fine") })
	mux.HandleFunc("/get-only", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		fmt.Fprintln(w, "fine")
	})
	mux.HandleFunc("/head-only", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/moved-to-error", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/unavailable", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/unavailable", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/no-content", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { close(release); srv.Close() })
	return srv, release
}

func TestCheckURLs(t *testing.T) {
	srv, _ := urlServer(t)
	base := srv.URL
	closed := closedPort(t)
	tests := []struct {
		name       string
		urls       []string
		wantOK     bool
		wantDetail string
	}{
		{"2xx", []string{base + "/ok"}, true, "ok"},
		{"204 is 2xx", []string{base + "/no-content"}, true, "ok"},
		{"HEAD 405 falls back to GET", []string{base + "/get-only"}, true, "ok"},
		{"HEAD is tried first", []string{base + "/head-only"}, true, "ok"},
		{"redirect followed", []string{base + "/moved"}, true, "ok"},
		{"redirect to a 5xx", []string{base + "/moved-to-error"}, false, "url " + base + "/moved-to-error: 503 Service Unavailable"},
		{"5xx", []string{base + "/unavailable"}, false, "url " + base + "/unavailable: 503 Service Unavailable"},
		{"404", []string{base + "/nope"}, false, "url " + base + "/nope: 404 Not Found"},
		{"redirect loop", []string{base + "/loop"}, false, "url " + base + "/loop: stopped after 10 redirects"},
		{"all must pass", []string{base + "/ok", base + "/unavailable"}, false, "url " + base + "/unavailable: 503 Service Unavailable"},
		{"closed port", []string{"http://127.0.0.1:" + strconv.Itoa(closed) + "/"}, false,
			"url http://127.0.0.1:" + strconv.Itoa(closed) + "/: connection refused"},
		{"not http", []string{"ftp://127.0.0.1/"}, false, "url ftp://127.0.0.1/: not an http(s) URL"},
		{"unrendered template", []string{"http://{{ip}}/"}, false, "url http://{{ip}}/: not an http(s) URL"},
		{"password never shown", []string{strings.Replace(base, "http://", "http://user:hunter2@", 1) + "/unavailable"}, false,
			"url " + strings.Replace(base, "http://", "http://user:xxxxx@", 1) + "/unavailable: 503 Service Unavailable"},
	}
	c := NewChecker(CheckerOptions{Pinger: &fakePinger{}})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := c.Check(context.Background(), "127.0.0.1", Spec{URLs: tc.urls})
			if r.OK != tc.wantOK || r.Detail != tc.wantDetail {
				t.Errorf("Check = %+v, want OK=%v Detail=%q", r, tc.wantOK, tc.wantDetail)
			}
			if strings.Contains(r.Detail, "hunter2") {
				t.Errorf("detail shows the password: %q", r.Detail)
			}
		})
	}
}

func TestCheckTimeouts(t *testing.T) {
	srv, _ := urlServer(t)
	c := NewChecker(CheckerOptions{Pinger: &fakePinger{}, CheckTimeout: 100 * time.Millisecond})
	r := c.Check(context.Background(), "127.0.0.1", Spec{URLs: []string{srv.URL + "/slow"}})
	if want := "url " + srv.URL + "/slow: timed out after 100ms"; r.OK || r.Aborted || r.Detail != want {
		t.Errorf("slow URL = %+v, want a failure %q", r, want)
	}

	t.Run("caller's context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		c := NewChecker(CheckerOptions{Pinger: &fakePinger{}, CheckTimeout: time.Minute})
		go func() { time.Sleep(50 * time.Millisecond); cancel() }()
		r := c.Check(ctx, "127.0.0.1", Spec{URLs: []string{srv.URL + "/slow"}})
		if r.OK || !r.Aborted || !strings.Contains(r.Detail, "check cancelled") {
			t.Errorf("Check after cancel = %+v, want an aborted result", r)
		}
	})
	t.Run("context already done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		p := &fakePinger{}
		r := NewChecker(CheckerOptions{Pinger: p}).Check(ctx, "127.0.0.1", Spec{Ping: true})
		if !r.Aborted || len(p.calls) != 0 {
			t.Errorf("Check with a done context = %+v after %d pings, want aborted before pinging", r, len(p.calls))
		}
	})
}

// mysqlServer answers each connection with greeting and closes it; it returns its address.
func mysqlServer(t *testing.T, greeting []byte) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write(greeting)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = l.Close(); <-done })
	return l.Addr().String()
}

func packet(seq byte, body []byte) []byte {
	n := len(body)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, body...)
}

func TestCheckMySQL(t *testing.T) {
	greeting := packet(0, append([]byte{10}, "8.0.36\x00rest-of-handshake"...))
	refused := packet(0, append([]byte{0xff, 0x6a, 0x04}, "Host '127.0.0.1' is not allowed to connect"...))
	tests := []struct {
		name       string
		server     []byte // nil: nothing listens
		wantOK     bool
		wantDetail string
	}{
		{"server greets", greeting, true, "ok"},
		{"server refuses this host", refused, false, "mysqldb wp: server refused (error 1130): Host '127.0.0.1' is not allowed to connect"},
		{"not mysql", []byte("SSH-2.0-OpenSSH_9.2\r\n"), false, "mysqldb wp: not a MySQL server greeting (packet length 4739923)"},
		{"closes at once", []byte{}, false, "mysqldb wp: no server greeting: EOF"},
		{"nothing listening", nil, false, "mysqldb wp: connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			to := "127.0.0.1:" + strconv.Itoa(closedPort(t))
			if tc.server != nil {
				to = mysqlServer(t, tc.server)
			}
			d := &recDialer{rewrite: map[string]string{"127.0.0.1:3306": to}}
			c := NewChecker(CheckerOptions{Pinger: &fakePinger{}, Dialer: d})
			r := c.Check(context.Background(), "127.0.0.1", Spec{MySQLDBs: []MySQLDB{{Name: "wp", User: "u", Pass: "secret"}}})
			if r.OK != tc.wantOK || r.Detail != tc.wantDetail {
				t.Errorf("Check = %+v, want OK=%v Detail=%q", r, tc.wantOK, tc.wantDetail)
			}
			if len(d.dialled) != 1 || d.dialled[0] != "127.0.0.1:3306" {
				t.Errorf("dialled %v, want 127.0.0.1:3306", d.dialled)
			}
		})
	}
}

func TestDefaultHTTPClientKeepsNoConnections(t *testing.T) {
	var mu sync.Mutex
	conns := 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()
	c := NewChecker(CheckerOptions{Pinger: &fakePinger{}})
	for i := 0; i < 3; i++ {
		if r := c.Check(context.Background(), "127.0.0.1", Spec{URLs: []string{srv.URL}}); !r.OK {
			t.Fatalf("Check = %+v", r)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if conns != 3 {
		t.Errorf("3 checks used %d connections, want 3 (no keep-alive between checks)", conns)
	}
}

func TestReasonUnwrapsURLErrors(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("no route")})
	if got := reason(err, time.Second); got != "no route" {
		t.Errorf("reason = %q, want the innermost cause", got)
	}
	if got := reason(io.ErrUnexpectedEOF, time.Second); got != "unexpected EOF" {
		t.Errorf("reason = %q", got)
	}
}
