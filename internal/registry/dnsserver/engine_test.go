package dnsserver

import (
	"context"
	"log/slog"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/cloud/sim"
	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/engine"
	"github.com/skyfleet/skyfleet/internal/events"
	"github.com/skyfleet/skyfleet/internal/store"
	"github.com/skyfleet/skyfleet/internal/template"
)

const engineNodeDefs = `'node_def:app':
  - resource:
      type: sim
`

const engineDescriptor = `user_id: tester
infra_name: shop
nodes:
  - name: app
    type: app
    scaling: {min: 2, max: 5, drain_timeout: 1s}
    variables:
      port: 8080
`

// TestFollowsTheEngine runs the real engine on the simulated cloud and checks that the DNS
// answers follow it through build, scale-out, scale-in and destruction, with the events the
// engine publishes (the store is never polled: the resync is an hour).
func TestFollowsTheEngine(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hub := events.NewHub()
	defer hub.Close()
	providers := cloud.NewRegistry()
	if err := providers.Register("sim", sim.New(sim.Options{Seed: 1})); err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Options{Store: st, Providers: providers, Hub: hub, Renderer: template.New(template.Options{}),
		Resync: 20 * time.Millisecond, RetryBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Options{Addr: "127.0.0.1:0", Store: st, Hub: hub, Resync: time.Hour,
		Logger: slog.New(slog.NewTextHandler(tWriter{t}, nil))})
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	engDone, dnsDone := make(chan error, 1), make(chan error, 1)
	go func() { engDone <- eng.Run(runCtx) }()
	go func() { dnsDone <- srv.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-engDone; err != nil {
			t.Errorf("engine: %v", err)
		}
		if err := <-dnsDone; err != nil {
			t.Errorf("dns: %v", err)
		}
	}()

	defs, _, err := descriptor.ParseNodeDefs("nodes.yaml", []byte(engineNodeDefs), descriptor.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.ImportNodeDefs(ctx, defs, "nodes.yaml"); err != nil {
		t.Fatal(err)
	}
	id, _, err := eng.Submit(ctx, "", "infra.yaml", []byte(engineDescriptor))
	if err != nil {
		t.Fatal(err)
	}

	f := &fixture{t: t, srv: srv}
	count := func(want int) func(*mdns.Msg) bool {
		return func(r *mdns.Msg) bool { return r.Rcode == mdns.RcodeSuccess && len(r.Answer) == want }
	}
	f.eventually("the two instances of the build", "app.shop.skyfleet.", mdns.TypeA, count(2))
	r := f.eventually("SRV by id", "app."+id+".skyfleet.", mdns.TypeSRV, count(2))
	if srv := r.Answer[0].(*mdns.SRV); srv.Port != 8080 {
		t.Errorf("SRV port = %d, want 8080", srv.Port)
	}

	scale := func(n int) {
		t.Helper()
		if _, err := eng.Scale(ctx, store.ScalingRequest{InfraID: id, Node: "app", Kind: store.ScaleTo, Count: n, Source: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	scale(5)
	f.eventually("scale-out to five", "app.shop.skyfleet.", mdns.TypeA, count(5))
	scale(2)
	f.eventually("scale-in to two", "app.shop.skyfleet.", mdns.TypeA, count(2))

	if err := eng.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	f.eventually("destruction", "app.shop.skyfleet.", mdns.TypeA, func(r *mdns.Msg) bool {
		return r.Rcode == mdns.RcodeNameError || (r.Rcode == mdns.RcodeSuccess && len(r.Answer) == 0)
	})
}
