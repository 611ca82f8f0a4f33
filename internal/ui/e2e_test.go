package ui

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/skyfleet/skyfleet/internal/api"
	"github.com/skyfleet/skyfleet/internal/autoscale"
	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/cloud/sim"
	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/engine"
	"github.com/skyfleet/skyfleet/internal/events"
	"github.com/skyfleet/skyfleet/internal/store"
	"github.com/skyfleet/skyfleet/internal/template"
)

// chromiumPath finds Debian's chromium; the test skips without it unless
// SKYFLEET_REQUIRE_INTEGRATION is set.
func chromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("SKYFLEET_REQUIRE_INTEGRATION") != "" {
		t.Fatal("chromium is not installed and SKYFLEET_REQUIRE_INTEGRATION is set (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium); set SKYFLEET_REQUIRE_INTEGRATION to make this a failure")
	return ""
}

// testLogger writes to t.Log when SKYFLEET_TEST_LOG is set.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("SKYFLEET_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// stack is the orchestrator as the daemon wires it: store, sim cloud, engine, API, the
// decision log route and the dashboard on one mux, served on a loopback port.
type stack struct {
	t     testing.TB
	st    store.Store
	eng   *engine.Engine
	api   *api.Server
	srv   *httptest.Server
	mux   *http.ServeMux
	token string
}

func newStack(t testing.TB, token string) *stack {
	t.Helper()
	log := testLogger(t)
	st, err := store.Open(t.TempDir(), store.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	hub := events.NewHub()
	providers := cloud.NewRegistry()
	if err := providers.Register("sim", sim.New(sim.Options{Logger: log, Seed: 7})); err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Options{
		Store:     st,
		Providers: providers,
		Hub:       hub,
		Renderer:  template.New(template.Options{}),
		Logger:    log,
		Resync:    100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()

	apiSrv := api.New(api.Options{Engine: api.EngineOf(eng), Store: st, Hub: hub, Logger: log, Token: token})
	mux := http.NewServeMux()
	mux.Handle("/", apiSrv.Handler())
	mux.Handle("GET /ui/", Handler())
	mux.Handle("GET /ui", Handler())
	mux.Handle("GET /v1/infrastructures/{id}/decisions", requireToken(token, autoscale.DecisionsHandler(st, nil)))
	srv := httptest.NewServer(mux)
	s := &stack{t: t, st: st, eng: eng, api: apiSrv, srv: srv, mux: mux, token: token}
	t.Cleanup(func() {
		apiSrv.Close() // ends the event streams, so that srv.Close does not wait for them
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine: %v", err)
		}
		hub.Close()
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// requireToken guards the decision log as the daemon does: the same bearer token as the API.
func requireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		got := sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			autoscale.DefaultErrorWriter(w, http.StatusUnauthorized, "unauthorized", "missing or invalid bearer token", nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// build imports testdata/nodes.yaml, submits testdata/infra.yaml and waits until every node
// has its minimum of ready instances.
func (s *stack) build() string {
	s.t.Helper()
	return s.buildFrom("infra.yaml")
}

// buildFrom is build with another descriptor from testdata.
func (s *stack) buildFrom(file string) string {
	s.t.Helper()
	ctx := context.Background()
	defs, _, err := descriptor.LoadNodeDefsFile(filepath.Join("testdata", "nodes.yaml"))
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.eng.ImportNodeDefs(ctx, defs, "nodes.yaml"); err != nil {
		s.t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		s.t.Fatal(err)
	}
	id, _, err := s.eng.Submit(ctx, "", file, data)
	if err != nil {
		s.t.Fatal(err)
	}
	s.waitReady(id, map[string]int{"app": 1, "lb": 1})
	return id
}

// counts returns the ready instances per node and the stored targets.
func (s *stack) counts(id string) (ready map[string]int, targets map[string]int) {
	s.t.Helper()
	ready = map[string]int{}
	err := s.st.View(context.Background(), func(tx store.Tx) error {
		rec, err := tx.Infra(id)
		if err != nil {
			return err
		}
		targets = rec.Targets
		insts, err := tx.Instances(id)
		for _, in := range insts {
			if in.State == store.StateReady {
				ready[in.Node]++
			}
		}
		return err
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return ready, targets
}

func (s *stack) waitReady(id string, want map[string]int) {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ready, _ := s.counts(id)
		ok := true
		for n, c := range want {
			ok = ok && ready[n] == c
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("ready instances %v, want %v", ready, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newBrowser starts headless Chromium; the returned context drives one tab.
func newBrowser(t testing.TB) context.Context {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.Flag("no-proxy-server", true), // loopback only, whatever the environment says
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	var logf func(string, ...any)
	if os.Getenv("SKYFLEET_TEST_LOG") != "" {
		logf = t.Logf
	}
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(func(string, ...any) {}), chromedp.WithErrorf(func(f string, a ...any) {
		if logf != nil {
			logf(f, a...)
		}
	}))
	// The first action starts the browser, which lives as long as bctx: no timeout on it.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	// Every uncaught exception and every refusal by the content security policy fails the
	// test: the page must work under its own policy.
	var (
		mu       sync.Mutex
		problems []string
	)
	messages := chromedp.Console(bctx)
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Source == "security" || strings.Contains(m.Text, "Content Security Policy") {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	ctx, cancelTimeout := context.WithTimeout(bctx, 2*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelBrowser()
		cancelAlloc()
		<-consoleDone
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			t.Errorf("browser console: %s", p)
		}
	})
	return ctx
}

// waitJS polls a JavaScript expression until it is true or the deadline passes.
func waitJS(t testing.TB, ctx context.Context, what, expr string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	var last any
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return time.Since(start)
		}
		last = err
		if time.Now().After(deadline) {
			text, _ := jsString(ctx, `document.body.innerText.slice(0, 3000)`)
			t.Fatalf("%s: not true within %s (%s; last error %v); page text:\n%s", what, within, expr, last, text)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func jsString(ctx context.Context, expr string) (string, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[string](expr))
}

// artifactDir is where screenshots go: $SKYFLEET_ARTIFACTS_DIR, else a test directory.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("SKYFLEET_ARTIFACTS_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func screenshot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	p := filepath.Join(artifactDir(t), name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
	return p
}

func TestDashboardEndToEnd(t *testing.T) {
	ctx := newBrowser(t)
	s := newStack(t, "")
	id := s.build()

	// The list shows the infrastructure with its counts.
	if err := chromedp.Do(ctx, chromedp.Navigate(s.srv.URL+"/ui")); err != nil {
		t.Fatal(err)
	}
	row := fmt.Sprintf(`document.querySelector('#infra-table tr[data-infra=%q]')`, id)
	waitJS(t, ctx, "list row", row+` !== null`, 10*time.Second)
	waitJS(t, ctx, "list counts", fmt.Sprintf(`(() => { const r = %s; if (!r) return false;
		const app = r.querySelector('li[data-node=app]'), lb = r.querySelector('li[data-node=lb]');
		return r.innerText.includes('webshop') && app && app.dataset.ready === '1' && app.dataset.target === '1' && lb && lb.dataset.ready === '1'; })()`, row), 10*time.Second)

	// Open it by its link, as a user would.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#infra-table tr[data-infra="`+id+`"] a.row-link`))); err != nil {
		t.Fatal(err)
	}
	card := func(node string) string {
		return fmt.Sprintf(`document.querySelector('.node-card[data-node=%s]')`, node)
	}
	waitJS(t, ctx, "detail counts", fmt.Sprintf(`(() => { const a = %s, l = %s; return !!a && !!l &&
		a.dataset.ready === '1' && a.dataset.target === '1' && a.querySelectorAll('tbody tr[data-node-id]').length === 1 &&
		l.dataset.ready === '1' && document.getElementById('live').dataset.state === 'live'; })()`, card("app"), card("lb")), 10*time.Second)
	if phase, err := jsString(ctx, `document.querySelector('article.page').dataset.phase`); err != nil || phase != "ready" {
		t.Errorf("phase shown %q (%v), want ready", phase, err)
	}

	// Scale up through the engine, not the page: the page follows by itself, without a reload.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__skyfleetMarker = 'same page'; true`)); err != nil {
		t.Fatal(err)
	}
	origin, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`performance.timeOrigin`))
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.eng.Scale(context.Background(), store.ScalingRequest{InfraID: id, Node: "app", Kind: store.ScaleUp, Count: 1, Source: "test"})
	if err != nil || !res.Applied {
		t.Fatalf("scale up: %+v %v", res, err)
	}
	took := waitJS(t, ctx, "new instance shown", card("app")+`.querySelectorAll('tbody tr[data-node-id]').length === 2`, 10*time.Second)
	t.Logf("new instance shown %s after the scale-up", took.Round(time.Millisecond))
	marker, err := jsString(ctx, `window.__skyfleetMarker || ''`)
	if err != nil {
		t.Fatal(err)
	}
	origin2, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`performance.timeOrigin`))
	if err != nil {
		t.Fatal(err)
	}
	if marker != "same page" || origin2 != origin {
		t.Fatalf("the page was reloaded (marker %q, time origin %v then %v)", marker, origin, origin2)
	}
	// Every instance the store knows is on the page with its state.
	waitJS(t, ctx, "second instance ready", card("app")+`.dataset.ready === '2'`, 20*time.Second)
	var insts []*store.InstanceRecord
	_ = s.st.View(context.Background(), func(tx store.Tx) error { insts, err = tx.Instances(id); return err })
	for _, in := range insts {
		if in.Node != "app" {
			continue
		}
		sel := fmt.Sprintf(`(() => { const r = %s.querySelector('tr[data-node-id=%q]'); return !!r && r.dataset.state === %q && r.innerText.includes(%q); })()`,
			card("app"), in.NodeID, string(in.State), in.Addresses[0])
		waitJS(t, ctx, "instance "+in.NodeID, sel, 5*time.Second)
	}

	// Ages tick by themselves.
	age, err := jsString(ctx, card("lb")+`.querySelector('.age').textContent`)
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "age ticking", fmt.Sprintf(`%s.querySelector('.age').textContent !== %q`, card("lb"), age), 5*time.Second)

	// By keyboard: Enter on a focused scale button opens the dialog on its confirm button;
	// Escape closes it and nothing is scaled.
	if err := chromedp.Do(ctx,
		chromedp.Focus(chromedp.CSS(`button[data-action="scale-up"][data-node="app"]`)),
		chromedp.KeyEvent(kb.Enter)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "dialog by keyboard", `document.getElementById('confirm-dialog').open && document.activeElement.id === 'confirm-ok'`, 5*time.Second)
	if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Escape)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "dialog closed by Escape", `!document.getElementById('confirm-dialog').open`, 5*time.Second)
	if _, targets := s.counts(id); targets["app"] != 2 {
		t.Fatalf("app target %d after a cancelled dialog, want 2 (unchanged)", targets["app"])
	}

	// Scale down with the page's button and its confirmation dialog.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-action="scale-down"][data-node="app"]`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "confirmation dialog", `document.getElementById('confirm-dialog').open && document.getElementById('confirm-text').textContent.includes('target 2 → 1')`, 5*time.Second)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#confirm-ok`))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, targets := s.counts(id)
		if targets["app"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("app target %d after the page's scale-down, want 1", targets["app"])
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitJS(t, ctx, "answer shown", card("app")+`.querySelector('.node-result').textContent === 'app: target 2 → 1'`, 5*time.Second)
	waitJS(t, ctx, "instance gone from page", card("app")+`.querySelectorAll('tbody tr[data-node-id]').length === 1`, 20*time.Second)

	// At the minimum the API's refusal is shown as it is.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`button[data-action="scale-down"][data-node="app"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-ok`)),
		chromedp.Click(chromedp.CSS(`#confirm-ok`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "refusal shown", card("app")+`.querySelector('.node-result').textContent === 'ignored: minimum count reached (1)'`, 5*time.Second)

	screenshot(t, ctx, "dashboard-e2e.png")

	// On a phone: nothing wider than the screen, every control at least 44 px tall.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "phone layout", `innerWidth === 390 && getComputedStyle(document.querySelector('.table.stack thead')).position === 'absolute'`, 5*time.Second)
	small, err := jsString(ctx, `(() => {
		const bad = [];
		for (const el of document.querySelectorAll('button, a[href], select, input')) {
			const r = el.getBoundingClientRect();
			if (r.width === 0 || r.bottom < 0 || el.closest('dialog:not([open])') || el.classList.contains('skip-link')) continue;
			if (r.height < 44 || r.width < 44) bad.push((el.id || el.textContent.trim() || el.tagName) + ' ' + Math.round(r.width) + 'x' + Math.round(r.height));
		}
		if (document.documentElement.scrollWidth > innerWidth) bad.push('page is ' + document.documentElement.scrollWidth + 'px wide');
		return bad.join('; ');
	})()`)
	if err != nil {
		t.Fatal(err)
	}
	if small != "" {
		t.Errorf("on a 390 px wide screen: %s", small)
	}
	screenshot(t, ctx, "dashboard-phone.png")
}

func TestDashboardAsksForToken(t *testing.T) {
	ctx := newBrowser(t)
	const token = "e2e-token-0f9c"
	s := newStack(t, token)
	id := s.build()

	if err := chromedp.Do(ctx, chromedp.Navigate(s.srv.URL+"/ui/")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "token dialog", `document.getElementById('token-dialog').open`, 10*time.Second)

	// Cancelled: the page says a token is needed, and the Token button asks again.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#token-cancel`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "token needed shown", `!document.getElementById('token-dialog').open && (document.querySelector('.notice-error') || {}).textContent.includes('token is required')`, 10*time.Second)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#token-button`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "token dialog again", `document.getElementById('token-dialog').open`, 10*time.Second)

	// A wrong token is refused and asked for again, saying so.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#token-input`), "wrong"),
		chromedp.Click(chromedp.CSS(`#token-ok`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "token refused", `document.getElementById('token-dialog').open && document.getElementById('token-text').textContent.includes('refused')`, 10*time.Second)

	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#token-input`), token),
		chromedp.Click(chromedp.CSS(`#token-ok`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "list after the token", fmt.Sprintf(`document.querySelector('#infra-table tr[data-infra=%q]') !== null`, id), 10*time.Second)

	screenshot(t, ctx, "dashboard-list.png")

	// Kept for the session only.
	stored, err := jsString(ctx, `(sessionStorage.getItem('skyfleet.token') || '') + '|' + localStorage.length + '|' + document.cookie`)
	if err != nil {
		t.Fatal(err)
	}
	if stored != token+"|0|" {
		t.Errorf("storage after login = %q, want the token in sessionStorage only", stored)
	}

	// The detail page, its live stream (fetch with the header) and the decision log work too.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#infra-table a.row-link`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "detail with live stream", `(() => { const a = document.querySelector('.node-card[data-node=app]');
		return !!a && a.dataset.ready === '1' && document.getElementById('live').dataset.state === 'live' &&
		document.querySelector('#decisions tbody tr') !== null; })()`, 10*time.Second)
	if _, err := s.eng.Scale(context.Background(), store.ScalingRequest{InfraID: id, Node: "app", Kind: store.ScaleUp, Count: 1, Source: "test"}); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "live update with a token", `document.querySelectorAll('.node-card[data-node=app] tbody tr[data-node-id]').length === 2`, 10*time.Second)
	if open, err := jsString(ctx, `String(document.getElementById('token-dialog').open)`); err != nil || open != "false" {
		t.Errorf("token dialog open = %s (%v) after login, want false", open, err)
	}

	// Destroy, confirmed in the dialog (which starts on Cancel): the infrastructure goes and
	// the page says so.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-action="destroy"]`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "destroy dialog", `document.getElementById('confirm-dialog').open && document.activeElement.id === 'confirm-cancel' &&
		document.getElementById('confirm-title').textContent === 'Destroy webshop?'`, 5*time.Second)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#confirm-ok`))); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.eng.WaitGone(wctx, id); err != nil {
		t.Fatalf("infrastructure not destroyed after the page's confirmation: %v", err)
	}
	waitJS(t, ctx, "gone shown", `document.getElementById('live').dataset.state === 'gone' && document.querySelector('.notice-slot').textContent.includes('no longer exists')`, 10*time.Second)
}
