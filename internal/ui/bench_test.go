package ui

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/skyfleet/skyfleet/internal/store"
)

// BenchmarkLiveUpdate measures how long a scale-up made through the engine takes to appear on
// an open dashboard page (event stream, debounce, detail fetch, drawing) in headless
// Chromium. The goal is well under a second; ms/update is reported.
func BenchmarkLiveUpdate(b *testing.B) {
	ctx := newBrowser(b)
	s := newStack(b, "")
	id := s.build()
	if err := chromedp.Do(ctx, chromedp.Navigate(s.srv.URL+"/ui/#/infra/"+id)); err != nil {
		b.Fatal(err)
	}
	rows := `document.querySelectorAll('.node-card[data-node=app] tbody tr[data-node-id]').length`
	waitJS(b, ctx, "page", rows+` === 1 && document.getElementById('live').dataset.state === 'live'`, 10*time.Second)
	scale := func(kind store.ScalingKind) {
		if _, err := s.eng.Scale(context.Background(), store.ScalingRequest{InfraID: id, Node: "app", Kind: kind, Count: 1, Source: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
	var total time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		scale(store.ScaleUp)
		waitJS(b, ctx, "new instance", rows+` === 2`, 10*time.Second)
		total += time.Since(start)
		b.StopTimer()
		scale(store.ScaleDown)
		waitJS(b, ctx, "instance gone", rows+` === 1`, 20*time.Second)
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/update")
}
