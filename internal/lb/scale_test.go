package lb

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/store"
)

// instance is one running backend of the scaling test.
type instance struct {
	id   string
	ip   string
	srv  *httptest.Server
	hits atomic.Int64
}

// TestScalingUnderLoadLosesNoRequest scales a node up and down several times under steady
// load, with each engine, following the orchestrator's protocol: a new instance is published
// when ready; a victim is marked draining and destroyed only once the load balancer reports
// no connection to it. No client request may fail.
func TestScalingUnderLoadLosesNoRequest(t *testing.T) {
	for _, engine := range []string{"builtin", "haproxy"} {
		t.Run(engine, func(t *testing.T) {
			o := newOrchestrator(t)
			first, err := net.Listen("tcp", "127.0.0.2:0")
			if err != nil {
				t.Fatal(err)
			}
			port := first.Addr().(*net.TCPAddr).Port
			next := 2
			start := func(ln net.Listener) *instance {
				t.Helper()
				if ln == nil {
					if ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.%d:%d", next, port)); err != nil {
						t.Fatalf("instance address: %v", err)
					}
				}
				in := &instance{id: fmt.Sprintf("n%d", next), ip: fmt.Sprintf("127.0.0.%d", next)}
				next++
				in.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					in.hits.Add(1)
					time.Sleep(time.Millisecond)
					_, _ = io.WriteString(w, in.id)
				}))
				in.srv.Listener.Close()
				in.srv.Listener = ln
				in.srv.Start()
				t.Cleanup(in.srv.Close)
				o.set(in.id, in.ip, store.StateReady)
				return in
			}
			live := []*instance{start(first)}

			var eng Engine
			var url string
			switch engine {
			case "builtin":
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				url = "http://" + ln.Addr().String()
				if eng, err = NewBuiltin(BuiltinOptions{Listener: ln, Logger: slogDiscard()}); err != nil {
					t.Fatal(err)
				}
			case "haproxy":
				bin := needHAProxy(t)
				listen := freePort(t)
				url = "http://" + listen
				if eng, err = NewHAProxy(HAProxyOptions{Binary: bin, Listen: listen, Dir: t.TempDir(),
					Poll: 50 * time.Millisecond, Logger: slogDiscard()}); err != nil {
					t.Fatal(err)
				}
			}
			role := &Role{
				Source:         &WatchSource{Server: o.srv.URL, InfraID: "inf", Node: "app", Port: port, MinBackoff: 10 * time.Millisecond},
				Engine:         eng,
				Reporter:       &Reporter{Server: o.srv.URL, InfraID: "inf", Node: "app", Name: url},
				ReportInterval: 20 * time.Millisecond,
			}
			ctx, cancel := context.WithCancel(context.Background())
			roleDone := make(chan error, 1)
			go func() { roleDone <- role.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-roleDone; err != nil {
					t.Errorf("role: %v", err)
				}
			}()
			eventually(t, "the first instance serves", func() bool {
				resp, err := http.Get(url + "/")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == 200
			})

			// Steady load from four clients with keep-alive connections.
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
							if err == nil && resp.StatusCode != 200 {
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

			// moreLoad waits until the clients have completed n more requests, so that every
			// change happens under traffic.
			moreLoad := func(n int64) {
				t.Helper()
				target := ok.Load() + failed.Load() + n
				eventually(t, "the load progresses", func() bool { return ok.Load()+failed.Load() >= target })
			}
			for step := range 3 {
				moreLoad(50)
				// Scale out: one instance becomes ready.
				in := start(nil)
				readyAt := time.Now()
				eventually(t, in.id+" receives traffic", func() bool { return in.hits.Load() > 0 })
				t.Logf("step %d: %s received traffic %v after becoming ready", step, in.id, time.Since(readyAt).Round(time.Millisecond))
				live = append(live, in)
				moreLoad(50)

				// Scale in: the oldest instance is drained, then destroyed.
				victim := live[0]
				live = live[1:]
				o.set(victim.id, victim.ip, store.StateDraining)
				drainAt := time.Now()
				eventually(t, victim.id+" reported drained", func() bool {
					n, known := o.reg.ActiveConnections("inf", victim.id)
					return known && n == 0
				})
				t.Logf("step %d: %s drained in %v", step, victim.id, time.Since(drainAt).Round(time.Millisecond))
				// Destroy it the hard way, as a killed instance: open connections die too.
				victim.srv.CloseClientConnections()
				victim.srv.Close()
				ev := &store.Event{InfraID: "inf", Type: "nodedropped", Node: "app", NodeID: victim.id}
				o.update(func(tx store.Tx) error {
					if err := tx.DeleteInstance("inf", victim.id); err != nil {
						return err
					}
					return tx.AddEvent(ev)
				})
				o.hub.Publish(*ev)
			}
			moreLoad(50)
			close(stop)
			wg.Wait()
			if n := failed.Load(); n != 0 {
				t.Fatalf("%d of %d requests failed during scaling; first: %v", n, n+ok.Load(), firstFailure.Load())
			}
			if ok.Load() < 350 {
				t.Fatalf("only %d requests completed; the load did not run", ok.Load())
			}
			t.Logf("%d requests, none failed", ok.Load())
		})
	}
}
