package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/events"
	"github.com/skyfleet/skyfleet/internal/health"
	"github.com/skyfleet/skyfleet/internal/store"
	"github.com/skyfleet/skyfleet/internal/template"
)

// Defaults for Options fields left zero.
const (
	DefaultResync             = 10 * time.Second
	DefaultCreateConcurrency  = 8
	DefaultObserveConcurrency = 16
	// DefaultCallTimeout bounds one provider call (Create, Destroy, Describe, List) and one
	// health check.
	DefaultCallTimeout = 60 * time.Second
	// DefaultHealthTimeout is Occopus' health_check.timeout default: how long a running
	// instance may fail its checks before it is declared failed.
	DefaultHealthTimeout = 600 * time.Second
)

// Options configures an Engine. Store, Providers and Renderer are required.
type Options struct {
	// Store holds all state; the engine keeps no state of its own beyond caches.
	Store store.Store
	// Providers maps resource types to cloud drivers.
	Providers *cloud.Registry
	// Hub receives every event as it is persisted; nil: events are only persisted.
	Hub *events.Hub
	// Renderer renders resource and contextualisation sections and health-check URLs.
	Renderer *template.Renderer
	// Checker runs health checks; nil disables them (an instance is ready once its provider
	// reports it running).
	Checker *health.Checker
	// Logger receives the engine's records (component=engine); nil discards them.
	Logger *slog.Logger
	// Registerer registers the engine's metrics; nil: no metrics.
	Registerer prometheus.Registerer
	// Clock dates records and events and decides drain deadlines and health timeouts;
	// nil: time.Now. Retry back-offs use real time.
	Clock func() time.Time
	// Resync is the period of the level-triggered pass of each infrastructure (default 10s).
	Resync time.Duration
	// CreateConcurrency bounds the concurrent provider calls (Create and Destroy) per
	// resource type (default 8).
	CreateConcurrency int
	// Credentials selects the auth_data section for a rendered resource section; nil: none.
	Credentials func(resource map[string]any) (*cloud.Credentials, error)
	// NewID returns fresh ids for infrastructures and instances; nil: UUID v4.
	NewID func() string
	// PickImpl picks one of n implementations matching a node's filter; nil: math/rand.
	PickImpl func(n int) int

	// DrainDone reports whether a draining instance has no connections left, so that it can
	// be destroyed before its drain deadline. Nil waits for the deadline.
	DrainDone func(infraID, nodeID string) bool
	// Connections reports an instance's active connections as the load balancers report
	// them (known is false when none does); scale-in then drops the least busy instance
	// first. Nil: the newest instance goes, as in Occopus.
	Connections func(infraID, nodeID string) (active int, known bool)
	// TemplateVars are extra top-level template values every instance sees, such as
	// `skyfleet_server` (the URL nodes reach the orchestrator at) set by the daemon.
	TemplateVars map[string]any
	// DestroyUnknownOrphans makes start-up destroy skyfleet-tagged instances whose
	// infrastructure id this store does not know. Off by default: several skyfleet servers
	// with separate stores may share one cloud account, and an instance unknown here may be
	// another server's.
	DestroyUnknownOrphans bool
	// ObserveConcurrency bounds the concurrent Describe calls and health checks of one pass
	// (default 16).
	ObserveConcurrency int
	// CallTimeout bounds each provider call and health check (default 60s).
	CallTimeout time.Duration
	// RetryBackoff is the first wait before retrying a failed provider call; it doubles up to
	// 30s (default 500ms).
	RetryBackoff time.Duration
}

// Engine maintains infrastructures; see the package documentation. Its methods are safe for
// concurrent use.
type Engine struct {
	opts    Options
	log     *slog.Logger
	clock   func() time.Time
	newID   func() string
	pick    func(int) int
	metrics *metrics

	semMu sync.Mutex
	sems  map[string]chan struct{} // per resource type: bounded concurrent provider calls

	cacheMu  sync.Mutex
	compiled map[string]*desired // per infra id, for the stored generation

	mu      sync.Mutex
	running bool
	runCtx  context.Context
	loops   map[string]*infraLoop
	loopsWG sync.WaitGroup
	gone    chan struct{} // closed and replaced whenever an infrastructure record is deleted
}

// New checks opts and returns an engine. It starts nothing: Run does.
func New(opts Options) (*Engine, error) {
	if opts.Store == nil || opts.Providers == nil || opts.Renderer == nil {
		return nil, errors.New("new engine: Store, Providers and Renderer are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Resync <= 0 {
		opts.Resync = DefaultResync
	}
	if opts.CreateConcurrency <= 0 {
		opts.CreateConcurrency = DefaultCreateConcurrency
	}
	if opts.ObserveConcurrency <= 0 {
		opts.ObserveConcurrency = DefaultObserveConcurrency
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = 500 * time.Millisecond
	}
	if opts.NewID == nil {
		opts.NewID = func() string { return uuid.NewString() }
	}
	if opts.PickImpl == nil {
		opts.PickImpl = func(n int) int { return rand.IntN(n) }
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("new engine: %w", err)
	}
	return &Engine{
		opts:     opts,
		log:      opts.Logger.With("component", "engine"),
		clock:    opts.Clock,
		newID:    opts.NewID,
		pick:     opts.PickImpl,
		metrics:  m,
		sems:     map[string]chan struct{}{},
		compiled: map[string]*desired{},
		loops:    map[string]*infraLoop{},
		gone:     make(chan struct{}),
	}, nil
}

// Run re-attaches every stored infrastructure (adopting instances the providers report and
// destroying skyfleet-tagged orphans no state claims), then maintains them until ctx is done.
// It returns after every goroutine it started has stopped. Instances keep running when Run
// returns. Run may be called once at a time.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.running {
		e.mu.Unlock()
		return errors.New("run engine: already running")
	}
	e.running = true
	e.runCtx = ctx
	e.mu.Unlock()

	defer func() {
		e.mu.Lock()
		e.running = false
		e.runCtx = nil
		e.mu.Unlock()
	}()

	infras, err := e.storedInfras(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started
		}
		return fmt.Errorf("run engine: %w", err)
	}
	// Start-up reconciliation is bounded so that a provider that keeps failing cannot keep
	// every infrastructure unmaintained.
	octx, cancel := context.WithTimeout(ctx, 2*e.opts.CallTimeout)
	e.reconcileOrphans(octx, infras)
	cancel()
	for _, rec := range infras {
		if rec.Phase == store.InfraDetached {
			e.log.Info("infrastructure is detached; not maintaining it", "infra_id", rec.ID)
			continue
		}
		e.startLoop(rec.ID)
	}
	<-ctx.Done()
	e.mu.Lock()
	e.running = false // no new loops from here on, so the Wait below is final
	e.mu.Unlock()
	e.loopsWG.Wait()
	e.log.Info("engine stopped; instances keep running")
	return nil
}

func (e *Engine) storedInfras(ctx context.Context) ([]*store.InfraRecord, error) {
	var infras []*store.InfraRecord
	err := e.opts.Store.View(ctx, func(tx store.Tx) error {
		var err error
		infras, err = tx.Infras()
		return err
	})
	return infras, err
}

// startLoop starts maintaining id if Run is active and no loop maintains it yet; otherwise it
// wakes the existing loop. It reports whether a loop is (now) running.
func (e *Engine) startLoop(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if l, ok := e.loops[id]; ok {
		l.poke()
		return true
	}
	if !e.running {
		return false
	}
	ctx, cancel := context.WithCancel(e.runCtx)
	l := newInfraLoop(e, id, cancel)
	e.loops[id] = l
	e.loopsWG.Add(1)
	go func() {
		defer e.loopsWG.Done()
		l.run(ctx)
		e.mu.Lock()
		if e.loops[id] == l {
			delete(e.loops, id)
		}
		e.mu.Unlock()
		close(l.done)
	}()
	return true
}

// stopLoop stops the loop of id and waits for it (and its provider calls) to end. It reports
// whether there was one.
func (e *Engine) stopLoop(ctx context.Context, id string) (bool, error) {
	e.mu.Lock()
	l, ok := e.loops[id]
	if ok {
		delete(e.loops, id)
	}
	e.mu.Unlock()
	if !ok {
		return false, nil
	}
	l.cancel()
	select {
	case <-l.done:
		return true, nil
	case <-ctx.Done():
		return true, fmt.Errorf("stop maintaining %s: %w", id, ctx.Err())
	}
}

// wake asks the loop of id for a pass soon, if there is one.
func (e *Engine) wake(id string) {
	e.mu.Lock()
	l := e.loops[id]
	e.mu.Unlock()
	if l != nil {
		l.poke()
	}
}

// Maintained reports whether the infrastructure is currently maintained by a loop.
func (e *Engine) Maintained(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.loops[id]
	return ok
}

// signalGone wakes every WaitGone.
func (e *Engine) signalGone() {
	e.mu.Lock()
	close(e.gone)
	e.gone = make(chan struct{})
	e.mu.Unlock()
}

func (e *Engine) goneCh() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.gone
}

// semaphore returns the bounded slot pool of a resource type.
func (e *Engine) semaphore(resourceType string) chan struct{} {
	e.semMu.Lock()
	defer e.semMu.Unlock()
	s, ok := e.sems[resourceType]
	if !ok {
		s = make(chan struct{}, e.opts.CreateConcurrency)
		e.sems[resourceType] = s
	}
	return s
}

// eventBuf collects the events written in one transaction, to publish after it commits.
type eventBuf struct {
	e   *Engine
	evs []store.Event
}

// add persists ev in tx and queues it for the hub.
func (b *eventBuf) add(tx store.Tx, ev store.Event) error {
	if ev.At.IsZero() {
		ev.At = b.e.clock()
	}
	if err := tx.AddEvent(&ev); err != nil {
		return fmt.Errorf("record event %s: %w", ev.Type, err)
	}
	b.evs = append(b.evs, ev)
	return nil
}

// update runs fn in a store transaction and publishes its events once it committed.
func (e *Engine) update(ctx context.Context, fn func(tx store.Tx, ev *eventBuf) error) error {
	ev := &eventBuf{e: e}
	err := e.opts.Store.Update(ctx, func(tx store.Tx) error {
		ev.evs = ev.evs[:0]
		return fn(tx, ev)
	})
	if err != nil {
		return err
	}
	e.publish(ev.evs...)
	return nil
}

func (e *Engine) publish(evs ...store.Event) {
	if e.opts.Hub == nil {
		return
	}
	for _, ev := range evs {
		e.opts.Hub.Publish(ev)
	}
}

// instanceEvent builds an event about one instance.
func instanceEvent(typ string, r *store.InstanceRecord, msg string, data map[string]any) store.Event {
	return store.Event{InfraID: r.InfraID, Type: typ, Node: r.Node, NodeID: r.NodeID, Message: msg, Data: data}
}
