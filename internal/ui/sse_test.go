package ui

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestSSEParser runs the page's own event stream parser (js/sse.js) in Chromium over
// streams cut into chunks at awkward places.
func TestSSEParser(t *testing.T) {
	ctx := newBrowser(t)
	srv := httptest.NewServer(Handler())
	t.Cleanup(srv.Close)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/ui/#/none")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		chunks []string
		want   string // events as type|id|data, joined by " ; "
	}{
		{"one event", []string{"id: 1\nevent: nodecreated\ndata: {\"seq\":1}\n\n"}, `nodecreated|1|{"seq":1}`},
		{"split everywhere", []string{"i", "d: 7\nev", "ent: x\nda", "ta: a", "b\n", "\n"}, "x|7|ab"},
		{"crlf split between chunks", []string{"id: 3\r", "\ndata: z\r\n\r", "\n"}, "message|3|z"},
		{"bare cr line ends", []string{"data: a\rdata: b\r\r"}, "message||a\nb"},
		{"comments and heartbeats", []string{": heartbeat\n\n", "data: x\n: in between\n\n"}, "message||x"},
		{"id kept for later events", []string{"id: 5\ndata: a\n\ndata: b\n\n"}, "message|5|a ; message|5|b"},
		{"no space after colon, field without value", []string{"data:a\ndata\n\n"}, "message||a\n"},
		{"event without data is not dispatched", []string{"event: gone\n\n", "data: y\n\n"}, "message||y"},
		{"unknown field ignored, retry read", []string{"retry: 1500\nfoo: bar\ndata: r\n\n"}, "message||r"},
		{"id with NUL ignored", []string{"id: 9\ndata: a\n\nid: 1\u00002\ndata: b\n\n"}, "message|9|a ; message|9|b"},
		{"partial event at the end is held", []string{"data: done\n\ndata: half"}, "message||done"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			chunks := make([]string, len(tc.chunks))
			for i, c := range tc.chunks {
				chunks[i] = strconv.Quote(c)
			}
			expr := fmt.Sprintf(`import('./js/sse.js').then((m) => {
				const got = [];
				const p = new m.SSEParser((e) => got.push(e.type + '|' + e.lastEventId + '|' + e.data));
				for (const c of [%s]) p.feed(c);
				return got.join(' ; ');
			})`, strings.Join(chunks, ","))
			got, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("events %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSSEReconnect checks that watch() reconnects after the server ends the stream and sends
// Last-Event-ID, and that it stops at "gone".
func TestSSEReconnect(t *testing.T) {
	ctx := newBrowser(t)
	var (
		mu      sync.Mutex
		lastIDs []string
	)
	mux := http.NewServeMux()
	mux.Handle("GET /ui/", Handler())
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		n := len(lastIDs)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		switch n {
		case 1: // two events, then the connection drops
			fmt.Fprint(w, "retry: 50\nid: 1\ndata: a\n\nid: 2\ndata: b\n\n")
		case 2: // continues after 2, then tells the client to stop
			fmt.Fprint(w, "id: 3\ndata: c\n\nevent: gone\ndata: {}\n\n")
		default:
			http.Error(w, "no third connection expected", http.StatusTeapot)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/ui/#/none")); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`import('./js/sse.js').then((m) => new Promise((resolve) => {
		const got = [];
		m.watch('/stream', {
			onEvent: (e) => got.push(e.lastEventId + ':' + e.data),
			onState: (s) => { got.push('[' + s + ']'); if (s === 'gone') resolve(got.join(' ')); },
		});
	}))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	want := "[connecting] [live] 1:a 2:b [reconnecting] [connecting] [live] 3:c [gone]"
	if got != want {
		t.Errorf("watch saw %q, want %q", got, want)
	}
	time.Sleep(200 * time.Millisecond) // a wrong third connection would come now
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(lastIDs, ",") != ",2" {
		t.Errorf("Last-Event-ID per connection %q, want none then 2", lastIDs)
	}
}
