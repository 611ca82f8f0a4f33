package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/store"
)

// BenchmarkGetInfra1000 measures GET /infrastructures/{id} (Occopus' report) for an
// infrastructure of 1,000 instances in a real bbolt store, over loopback HTTP with keep-alive.
// It reports requests per second and the 99th percentile latency.
//
//	go test -run '^$' -bench BenchmarkGetInfra1000 -benchtime 2000x ./internal/api
func BenchmarkGetInfra1000(b *testing.B) {
	benchGet(b, "/infrastructures/")
}

// BenchmarkGetInfra1000V1 is the same for the native detail, GET /v1/infrastructures/{id}.
func BenchmarkGetInfra1000V1(b *testing.B) {
	benchGet(b, "/v1/infrastructures/")
}

func benchGet(b *testing.B, prefix string) {
	h := newHarness(b, func(o *Options) { o.Logger = slog.New(slog.DiscardHandler) })
	id := h.createInfra()
	err := h.st.Update(context.Background(), func(tx store.Tx) error {
		for i := range 1000 {
			node := "app"
			if i%10 == 0 {
				node = "lb"
			}
			r := &store.InstanceRecord{
				InfraID: id, Node: node, NodeID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), State: store.StateReady,
				ResourceType: "sim", ProviderID: fmt.Sprintf("sim-%d", i),
				Addresses: []string{fmt.Sprintf("127.77.%d.%d", i/250, i%250+1)}, Created: now.Add(-time.Hour), Ready: now.Add(-50 * time.Minute),
				Health: "ok", HealthAt: now,
			}
			if err := tx.PutInstance(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	url := h.ts.URL + prefix + id
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		t0 := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n < 1000 {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
		}
		lat = append(lat, time.Since(t0))
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
