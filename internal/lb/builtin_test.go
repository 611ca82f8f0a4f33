package lb

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestBuiltinLeastConnections(t *testing.T) {
	a, b := newNamedBackend(t, "a"), newNamedBackend(t, "b")
	eng, url := startBuiltin(t, BuiltinOptions{}, a.backend(), b.backend())
	c := newClient(t)

	t.Run("idle backends share requests round-robin", func(t *testing.T) {
		counts := map[string]int{}
		for range 10 {
			_, body := get(t, c, url+"/")
			counts[body]++
		}
		if counts["a"] != 5 || counts["b"] != 5 {
			t.Fatalf("requests per backend = %v, want 5 each", counts)
		}
	})

	t.Run("a busy backend gets no new requests while the other is idle", func(t *testing.T) {
		held := make(chan string, 1)
		go func() {
			resp, err := c.Get(url + "/hold")
			if err != nil {
				held <- err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			held <- string(body)
		}()
		var busy *namedBackend
		select {
		case <-a.holding:
			busy = a
		case <-b.holding:
			busy = b
		case <-time.After(10 * time.Second):
			t.Fatal("held request reached no backend")
		}
		other := map[string]string{"a": "b", "b": "a"}[busy.name]
		for range 10 {
			// The proxy ends its count of a request just after the client has the answer.
			eventually(t, other+" is idle", func() bool { return eng.Active()[other] == 0 })
			if _, body := get(t, c, url+"/"); body == busy.name {
				t.Fatalf("request went to %s, which has a request open, while the other is idle", body)
			}
		}
		busy.releaseAll()
		if got := <-held; got != busy.name {
			t.Fatalf("held request answered %q, want %q", got, busy.name)
		}
	})
}

func TestBuiltinEjectsVanishedBackendWithoutFailedRequests(t *testing.T) {
	reg := prometheus.NewRegistry()
	bs := []*namedBackend{newNamedBackend(t, "a"), newNamedBackend(t, "b"), newNamedBackend(t, "c")}
	eng, url := startBuiltin(t, BuiltinOptions{Registerer: reg, EjectFor: time.Hour},
		bs[0].backend(), bs[1].backend(), bs[2].backend())
	c := newClient(t)
	for range 9 {
		get(t, c, url+"/") // warm keep-alive connections to every backend
	}
	bs[1].srv.Close() // b vanishes without being removed from the set

	counts := map[string]int{}
	for i := range 60 {
		status, body := get(t, c, url+fmt.Sprintf("/?i=%d", i))
		if status != http.StatusOK {
			t.Fatalf("request %d failed: %d %q", i, status, body)
		}
		counts[body]++
	}
	if counts["b"] != 0 || counts["a"] == 0 || counts["c"] == 0 {
		t.Fatalf("requests per backend after b vanished = %v", counts)
	}
	if n := testutil.ToFloat64(eng.metrics.errors.WithLabelValues("b", "dial_retried")); n < 1 {
		t.Fatalf("dial_retried errors for b = %v, want at least 1", n)
	}
	want := `
# HELP skyfleet_lb_backends Backends by state: up (receiving traffic), down (passed over after refusing a connection), draining (removed, finishing requests).
# TYPE skyfleet_lb_backends gauge
skyfleet_lb_backends{state="down"} 1
skyfleet_lb_backends{state="draining"} 0
skyfleet_lb_backends{state="up"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "skyfleet_lb_backends"); err != nil {
		t.Fatal(err)
	}
}

func TestBuiltinWhenEveryBackendRefuses(t *testing.T) {
	tests := []struct {
		name, method, body string
		backends           int
	}{
		{"POST with a body is not retried", http.MethodPost, "payload", 1},
		{"GET tried on every backend", http.MethodGet, "", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			var bs []Backend
			for i := range tc.backends {
				nb := newNamedBackend(t, fmt.Sprintf("dead%d", i))
				nb.srv.Close()
				bs = append(bs, nb.backend())
			}
			eng, url := startBuiltin(t, BuiltinOptions{Registerer: reg}, bs...)
			req, _ := http.NewRequest(tc.method, url+"/", strings.NewReader(tc.body))
			resp, err := newClient(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadGateway {
				t.Fatalf("status = %d, want 502", resp.StatusCode)
			}
			dials := 0.0
			for _, b := range bs {
				dials += testutil.ToFloat64(eng.metrics.errors.WithLabelValues(b.ID, "dial")) +
					testutil.ToFloat64(eng.metrics.errors.WithLabelValues(b.ID, "dial_retried"))
			}
			if int(dials) != tc.backends {
				t.Fatalf("connection attempts = %v, want %d (one per backend)", dials, tc.backends)
			}
		})
	}
}

func TestBuiltinNoBackend(t *testing.T) {
	_, url := startBuiltin(t, BuiltinOptions{})
	if status, _ := get(t, newClient(t), url+"/"); status != http.StatusServiceUnavailable {
		t.Fatalf("status with no backends = %d, want 503", status)
	}
}

func TestBuiltinDrainsRemovedBackend(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := newNamedBackend(t, "a"), newNamedBackend(t, "b")
	eng, url := startBuiltin(t, BuiltinOptions{Registerer: reg}, a.backend())
	c := newClient(t)

	held := make(chan string, 1)
	go func() {
		resp, err := c.Get(url + "/hold")
		if err != nil {
			held <- "error: " + err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		held <- fmt.Sprintf("%d %s", resp.StatusCode, body)
	}()
	a.waitHolding(t)

	eng.Update([]Backend{b.backend()}) // a is removed while a request is open on it
	if got := eng.Active(); got["a"] != 1 || got["b"] != 0 {
		t.Fatalf("Active while draining = %v, want a:1 b:0", got)
	}
	for range 5 {
		if _, body := get(t, c, url+"/"); body != "b" {
			t.Fatalf("new request went to %q during a's drain, want b", body)
		}
	}
	// The proxy ends its count of a request just after the client has the answer.
	eventually(t, "b is idle", func() bool { return eng.Active()["b"] == 0 })
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP skyfleet_lb_active_connections Requests currently open to each backend (streams for HTTP/2, the whole connection for websockets).
# TYPE skyfleet_lb_active_connections gauge
skyfleet_lb_active_connections{backend="a"} 1
skyfleet_lb_active_connections{backend="b"} 0
`), "skyfleet_lb_active_connections"); err != nil {
		t.Fatal(err)
	}
	a.releaseAll()
	if got := <-held; got != "200 a" {
		t.Fatalf("in-flight request on the drained backend = %q, want 200 a", got)
	}
	if got := eng.Active(); len(got) != 1 || got["b"] != 0 {
		t.Fatalf("Active after the drain = %v, want only b", got)
	}
}

func TestBuiltinRequestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := newNamedBackend(t, "a")
	_, url := startBuiltin(t, BuiltinOptions{Registerer: reg}, a.backend())
	c := newClient(t)
	for range 3 {
		get(t, c, url+"/")
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP skyfleet_lb_requests_total Requests proxied, by backend node id and HTTP status code (backend "none" when no backend was available).
# TYPE skyfleet_lb_requests_total counter
skyfleet_lb_requests_total{backend="a",code="200"} 3
`), "skyfleet_lb_requests_total"); err != nil {
		t.Fatal(err)
	}
}

// wsBackend accepts a websocket handshake by hand and answers each text frame with
// "echo: <payload>".
func wsBackend(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want a websocket upgrade", http.StatusBadRequest)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			wsAccept(r.Header.Get("Sec-WebSocket-Key")))
		_ = rw.Flush()
		for {
			op, payload, err := readFrame(rw.Reader)
			if err != nil || op == 0x8 {
				return
			}
			if err := writeFrame(rw.Writer, op, []byte("echo: "+string(payload)), false); err != nil {
				return
			}
			_ = rw.Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// writeFrame writes one final frame with a payload under 126 bytes.
func writeFrame(w io.Writer, op byte, payload []byte, mask bool) error {
	hdr := []byte{0x80 | op, byte(len(payload))}
	if !mask {
		_, err := w.Write(append(hdr, payload...))
		return err
	}
	hdr[1] |= 0x80
	key := []byte{1, 2, 3, 4}
	masked := make([]byte, len(payload))
	for i := range payload {
		masked[i] = payload[i] ^ key[i%4]
	}
	_, err := w.Write(append(append(hdr, key...), masked...))
	return err
}

func readFrame(r *bufio.Reader) (op byte, payload []byte, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(hdr[1] & 0x7f)
	if n >= 126 {
		return 0, nil, errors.New("long frames not supported by this test")
	}
	var key [4]byte
	masked := hdr[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return 0, nil, err
		}
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return hdr[0] & 0x0f, payload, nil
}

func TestBuiltinWebsocket(t *testing.T) {
	ws := wsBackend(t)
	eng, url := startBuiltin(t, BuiltinOptions{}, Backend{ID: "ws", Addr: ws.Listener.Addr().String()})
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	fmt.Fprintf(conn, "GET /chat HTTP/1.1\r\nHost: lb\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", key)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) {
		t.Fatalf("handshake answer: %d %v", resp.StatusCode, resp.Header)
	}
	for _, msg := range []string{"hello", "second message"} {
		if err := writeFrame(conn, 0x1, []byte(msg), true); err != nil {
			t.Fatal(err)
		}
		op, payload, err := readFrame(br)
		if err != nil {
			t.Fatal(err)
		}
		if op != 0x1 || string(payload) != "echo: "+msg {
			t.Fatalf("frame = op %d %q, want text %q", op, payload, "echo: "+msg)
		}
	}
	if got := eng.Active()["ws"]; got != 1 {
		t.Fatalf("Active during the websocket = %d, want 1", got)
	}
	_ = writeFrame(conn, 0x8, nil, true)
	conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for eng.Active()["ws"] != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("websocket still counted as active after closing: %v", eng.Active())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBuiltinHTTP2(t *testing.T) {
	a := newNamedBackend(t, "a")
	cert, _, err := SelfSigned("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("h2 over TLS", func(t *testing.T) {
		_, url := startBuiltin(t, BuiltinOptions{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}}, a.backend())
		pool := x509.NewCertPool()
		pool.AddCert(cert.Leaf)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(url + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || string(body) != "a" {
			t.Fatalf("got %s %q, want HTTP/2 from a", resp.Proto, body)
		}
	})
	t.Run("h2c with prior knowledge", func(t *testing.T) {
		_, url := startBuiltin(t, BuiltinOptions{}, a.backend())
		protos := new(http.Protocols)
		protos.SetUnencryptedHTTP2(true)
		tr := &http.Transport{Protocols: protos}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(url + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || string(body) != "a" {
			t.Fatalf("got %s %q, want HTTP/2 from a", resp.Proto, body)
		}
	})
}

func TestBuiltinStreamsLargeBodies(t *testing.T) {
	const total = 256 << 20
	const chunk = 1 << 20
	firstSeen := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(total))
		buf := make([]byte, chunk)
		for i := range buf {
			buf[i] = byte(i)
		}
		rc := http.NewResponseController(w)
		for sent := 0; sent < total; sent += chunk {
			if _, err := w.Write(buf); err != nil {
				return
			}
			if sent == 0 {
				_ = rc.Flush()
				// Send the rest only once the client has the first bytes: a proxy that
				// buffered the whole body would never deliver them.
				select {
				case <-firstSeen:
				case <-r.Context().Done():
					return
				}
			}
		}
	}))
	defer up.Close()
	_, url := startBuiltin(t, BuiltinOptions{}, Backend{ID: "big", Addr: up.Listener.Addr().String()})

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/big", nil)
	c := newClient(t)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, 4096)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("first bytes never arrived before the upstream finished: %v", err)
	}
	close(firstSeen)
	n, err := io.CopyBuffer(io.Discard, resp.Body, make([]byte, 64<<10))
	if err != nil {
		t.Fatal(err)
	}
	if got := n + int64(len(first)); got != total {
		t.Fatalf("received %d bytes, want %d", got, total)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > total/4 {
		t.Fatalf("allocated %d MiB while streaming %d MiB: the body is being buffered", alloc>>20, total>>20)
	}
}

func BenchmarkBuiltinSmall(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer up.Close()
	_, url := startBuiltin(b, BuiltinOptions{Logger: slogDiscard()}, Backend{ID: "a", Addr: up.Listener.Addr().String()})
	benchSmall(b, url)
}

func BenchmarkBuiltinLarge(b *testing.B) {
	up := largeUpstream(b)
	_, url := startBuiltin(b, BuiltinOptions{Logger: slogDiscard()}, Backend{ID: "a", Addr: up.Listener.Addr().String()})
	benchLarge(b, url)
}

// benchSmall measures small requests through a load balancer at url from parallel clients.
func benchSmall(b *testing.B, url string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var mu sync.Mutex
	var failed error
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(url + "/")
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			if err != nil {
				mu.Lock()
				failed = fmt.Errorf("request failed: %w", err)
				mu.Unlock()
			}
		}
	})
	if failed != nil {
		b.Fatal(failed)
	}
}

// largeBody is the size of one streamed response in the Large benchmarks.
const largeBody = 64 << 20

func largeUpstream(b *testing.B) *httptest.Server {
	buf := make([]byte, 1<<20)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(largeBody))
		for sent := 0; sent < largeBody; sent += len(buf) {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}))
	b.Cleanup(up.Close)
	return up
}

// benchLarge measures the throughput of 64 MiB streamed responses through url.
func benchLarge(b *testing.B, url string) {
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	buf := make([]byte, 256<<10)
	b.SetBytes(largeBody)
	b.ResetTimer()
	for range b.N {
		resp, err := c.Get(url + "/")
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, resp.Body, buf)
		resp.Body.Close()
		if err != nil || n != largeBody {
			b.Fatalf("read %d bytes: %v", n, err)
		}
	}
}
