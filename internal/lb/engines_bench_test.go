package lb

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/events"
	"github.com/skyfleet/skyfleet/internal/registry"
	"github.com/skyfleet/skyfleet/internal/store"
)

// benchEngines are the engines BenchmarkEngines compares.
var benchEngines = []string{"builtin", "haproxy"}

// BenchmarkEngines compares the builtin engine with haproxy on the same backends and load:
//
//   - small/<engine>: 2-byte responses from 8 parallel keep-alive clients; reports req/s and
//     the p50 and p99 latency of single requests.
//   - large-stream/<engine>: 64 MiB responses streamed to one client; reports MB/s.
//   - ready-to-traffic/<engine>: under steady load from 4 clients, a new instance is written
//     ready into a real store (bbolt, fsync on) and registry; one op is the time from the start
//     of that write until its first request, through the endpoints watch, the lb role and the
//     engine; p50-after-commit-ms counts from the end of the write. The previous instance is
//     then drained (marked draining, destroyed once the engine holds no request to it).
//
// Run: go test -run '^$' -bench Engines -benchtime 2000x ./internal/lb (small), and
// -benchtime 5x for large-stream, 20x for ready-to-traffic; see docs/benchmarks.md.
func BenchmarkEngines(b *testing.B) {
	for _, name := range benchEngines {
		b.Run("small/"+name, func(b *testing.B) {
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "ok")
			}))
			defer up.Close()
			eng, url := newBenchEngine(b, name)
			eng.Update([]Backend{{ID: "a", Addr: up.Listener.Addr().String()}})
			runBenchEngine(b, eng)
			waitServing(b, url)
			benchLatency(b, url)
		})
	}
	for _, name := range benchEngines {
		b.Run("large-stream/"+name, func(b *testing.B) {
			up := largeUpstream(b)
			eng, url := newBenchEngine(b, name)
			eng.Update([]Backend{{ID: "a", Addr: up.Listener.Addr().String()}})
			runBenchEngine(b, eng)
			waitServing(b, url)
			benchLarge(b, url)
		})
	}
	for _, name := range benchEngines {
		b.Run("ready-to-traffic/"+name, func(b *testing.B) { benchReadyToTraffic(b, name) })
	}
}

// newBenchEngine returns an engine listening on a free loopback port, not yet running, and
// its URL. haproxy is skipped when missing, unless SKYFLEET_REQUIRE_INTEGRATION is set.
func newBenchEngine(b *testing.B, name string) (Engine, string) {
	b.Helper()
	switch name {
	case "builtin":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		eng, err := NewBuiltin(BuiltinOptions{Listener: ln, Logger: slogDiscard(), DrainTimeout: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		return eng, "http://" + ln.Addr().String()
	case "haproxy":
		bin, err := FindHAProxy("")
		if err != nil {
			if os.Getenv("SKYFLEET_REQUIRE_INTEGRATION") != "" {
				b.Fatalf("SKYFLEET_REQUIRE_INTEGRATION is set: %v", err)
			}
			b.Skip(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		listen := ln.Addr().String()
		ln.Close()
		// Statistics every 100 ms (default 1 s) so that drains in ready-to-traffic end
		// quickly; the other cases do not depend on it.
		eng, err := NewHAProxy(HAProxyOptions{Binary: bin, Listen: listen, Dir: b.TempDir(),
			DrainTimeout: 5 * time.Second, Poll: 100 * time.Millisecond, Logger: slogDiscard()})
		if err != nil {
			b.Fatal(err)
		}
		return eng, "http://" + listen
	}
	b.Fatalf("unknown engine %q", name)
	return nil, ""
}

// runBenchEngine runs eng until the benchmark ends.
func runBenchEngine(b *testing.B, eng Engine) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("engine: %v", err)
		}
	})
}

// waitServing polls url until it answers 200.
func waitServing(b *testing.B, url string) {
	b.Helper()
	c := &http.Client{Timeout: time.Second}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := c.Get(url + "/")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not serve within 15s: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// benchLatency sends b.N small requests to url from 8 parallel keep-alive clients (4 per
// CPU on the 2-CPU machine the numbers come from) and reports req/s and latency percentiles.
func benchLatency(b *testing.B, url string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var mu sync.Mutex
	var lat []time.Duration
	var failed error
	b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			t0 := time.Now()
			resp, err := c.Get(url + "/")
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			if err != nil {
				mu.Lock()
				failed = fmt.Errorf("request failed: %w", err)
				mu.Unlock()
				continue
			}
			local = append(local, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if failed != nil {
		b.Fatal(failed)
	}
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(ms(quantile(lat, 0.5)), "p50-ms")
	b.ReportMetric(ms(quantile(lat, 0.99)), "p99-ms")
}

// quantile returns the q-quantile of sorted durations.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(float64(len(sorted)-1) * q)
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// benchOrchestrator is the orchestrator side of the protocol for benchmarks: a real store,
// event hub and registry behind an HTTP server, whose instances the benchmark writes as the
// engine does.
type benchOrchestrator struct {
	b   *testing.B
	st  store.Store
	hub *events.Hub
	reg *registry.Registry
	srv *httptest.Server
}

func newBenchOrchestrator(b *testing.B) *benchOrchestrator {
	b.Helper()
	st, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	o := &benchOrchestrator{b: b, st: st, hub: events.NewHub()}
	b.Cleanup(o.hub.Close)
	if o.reg, err = registry.New(registry.Options{Store: st, Hub: o.hub}); err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(registry.EndpointsPattern, o.reg.EndpointsHandler())
	mux.Handle(registry.LBReportPattern, o.reg.LBReportHandler())
	o.srv = httptest.NewServer(mux)
	b.Cleanup(o.srv.Close)
	if err := st.Update(context.Background(), func(tx store.Tx) error {
		return tx.PutInfra(&store.InfraRecord{ID: "inf", Descriptor: "infra_name: t\nnodes:\n  - name: app\n    type: app\n"})
	}); err != nil {
		b.Fatal(err)
	}
	return o
}

// update runs fn and records ev in one transaction, then publishes ev.
func (o *benchOrchestrator) update(ev *store.Event, fn func(tx store.Tx) error) {
	o.b.Helper()
	if err := o.st.Update(context.Background(), func(tx store.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return tx.AddEvent(ev)
	}); err != nil {
		o.b.Fatal(err)
	}
	o.hub.Publish(*ev)
}

// set records an instance state, as the engine does.
func (o *benchOrchestrator) set(nodeID, addr string, state store.InstanceState) {
	o.update(&store.Event{InfraID: "inf", Type: "node" + string(state), Node: "app", NodeID: nodeID}, func(tx store.Tx) error {
		return tx.PutInstance(&store.InstanceRecord{InfraID: "inf", Node: "app", NodeID: nodeID, State: state, Addresses: []string{addr}})
	})
}

// drop deletes an instance, as the engine does once it is destroyed.
func (o *benchOrchestrator) drop(nodeID string) {
	o.update(&store.Event{InfraID: "inf", Type: "nodedropped", Node: "app", NodeID: nodeID}, func(tx store.Tx) error {
		return tx.DeleteInstance("inf", nodeID)
	})
}

// benchInstance is one backend instance of the ready-to-traffic benchmark.
type benchInstance struct {
	id, ip string
	srv    *httptest.Server
	hit    chan struct{}
}

// startBenchInstance serves on ip:port; hit is closed by its first request.
func startBenchInstance(b *testing.B, id, ip string, port int) *benchInstance {
	b.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", ip, port))
	if err != nil {
		b.Fatalf("instance address: %v", err)
	}
	in := &benchInstance{id: id, ip: ip, hit: make(chan struct{})}
	var once sync.Once
	in.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(in.hit) })
		time.Sleep(time.Millisecond)
		_, _ = io.WriteString(w, "ok")
	}))
	in.srv.Listener.Close()
	in.srv.Listener = ln
	in.srv.Start()
	return in
}

func benchReadyToTraffic(b *testing.B, name string) {
	o := newBenchOrchestrator(b)
	first, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		b.Fatal(err)
	}
	port := first.Addr().(*net.TCPAddr).Port
	first.Close()
	base := startBenchInstance(b, "base", "127.0.0.2", port)
	b.Cleanup(base.srv.Close)
	o.set(base.id, base.ip, store.StateReady)

	eng, url := newBenchEngine(b, name)
	role := &Role{
		Source:         &WatchSource{Server: o.srv.URL, InfraID: "inf", Node: "app", Port: port, MinBackoff: 10 * time.Millisecond},
		Engine:         eng,
		Reporter:       &Reporter{Server: o.srv.URL, InfraID: "inf", Node: "app", Name: url},
		ReportInterval: 100 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	roleDone := make(chan error, 1)
	go func() { roleDone <- role.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-roleDone; err != nil {
			b.Errorf("role: %v", err)
		}
	})
	waitServing(b, url)

	// Steady load from 4 keep-alive clients until the benchmark ends.
	var ok, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(url + "/")
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		}()
	}
	stopLoad := func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	}
	b.Cleanup(stopLoad)

	var durs, afterCommit []time.Duration
	var prev *benchInstance
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		in := startBenchInstance(b, fmt.Sprintf("n%d", i), fmt.Sprintf("127.0.0.%d", 3+i%200), port)
		b.StartTimer()
		t0 := time.Now()
		o.set(in.id, in.ip, store.StateReady)
		committed := time.Now()
		select {
		case <-in.hit:
		case <-time.After(15 * time.Second):
			b.Fatalf("%s received no request within 15s of becoming ready", in.id)
		}
		d := time.Since(t0)
		b.StopTimer()
		durs = append(durs, d)
		afterCommit = append(afterCommit, t0.Add(d).Sub(committed))
		if prev != nil {
			retireBenchInstance(b, o, eng, prev)
		}
		prev = in
	}
	b.StopTimer()
	if prev != nil {
		retireBenchInstance(b, o, eng, prev)
	}
	stopLoad()
	if n := failed.Load(); n != 0 {
		b.Fatalf("%d of %d requests failed while instances joined and left; first: %v", n, n+ok.Load(), firstFailure.Load())
	}
	slices.Sort(durs)
	slices.Sort(afterCommit)
	b.ReportMetric(ms(quantile(durs, 0.5)), "p50-ms")
	b.ReportMetric(ms(durs[len(durs)-1]), "max-ms")
	b.ReportMetric(ms(quantile(afterCommit, 0.5)), "p50-after-commit-ms")
}

// retireBenchInstance drains in (draining, then gone once the engine holds no request to
// it) and destroys it, as the orchestrator does on scale-in.
func retireBenchInstance(b *testing.B, o *benchOrchestrator, eng Engine, in *benchInstance) {
	b.Helper()
	o.set(in.id, in.ip, store.StateDraining)
	deadline := time.Now().Add(10 * time.Second)
	for {
		// A backend the engine still lists as wanted counts as busy: the watch may not have
		// removed it yet.
		if _, held := eng.Active()[in.id]; !held {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s still held by the engine 10s after draining began", in.id)
		}
		time.Sleep(5 * time.Millisecond)
	}
	o.drop(in.id)
	in.srv.Close()
}
