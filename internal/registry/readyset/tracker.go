package readyset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/events"
	"github.com/skyfleet/skyfleet/internal/store"

	yaml "go.yaml.in/yaml/v3"
)

// Options configures New.
type Options struct {
	// Store is where infrastructures and instances are read from (required).
	Store store.Store
	// Hub names the infrastructures to re-read (an *events.Hub); nil leaves the tracker on
	// the periodic resync only.
	Hub Subscriber
	// Logger receives the tracker's few messages; nil discards them.
	Logger *slog.Logger
	// Resync is how often every infrastructure is re-read even without events (default 30s).
	Resync time.Duration
	// Coalesce is how long the tracker waits after an event for more before it re-reads
	// (default 10ms), so that a burst of events yields one read and one new Set.
	Coalesce time.Duration
	// HubBuffer is the size of the tracker's hub subscription (default 1024). A tracker that
	// falls further behind is cut off by the hub; it then re-reads everything and subscribes
	// again after RetryDelay.
	HubBuffer int
	// RetryDelay is how long the tracker waits before it retries a failed store read or
	// subscribes again after the hub cut it off (default 1s).
	RetryDelay time.Duration
}

// Subscriber is the part of the events hub a Tracker uses; *events.Hub implements it.
// Subscribe returns a channel of events for infraID ("" for every infrastructure) and a
// function that releases it; a subscriber that falls behind has its channel closed.
type Subscriber interface {
	Subscribe(infraID string, buffer int) (<-chan store.Event, func())
}

var _ Subscriber = (*events.Hub)(nil)

// Tracker keeps the current Set. Run keeps it current; Current may be called concurrently
// from any goroutine.
type Tracker struct {
	st         store.Store
	hub        Subscriber
	log        *slog.Logger
	resync     time.Duration
	coalesce   time.Duration
	buffer     int
	retryDelay time.Duration

	cur atomic.Pointer[published]

	runMu   sync.Mutex
	running bool
	// parsed caches the parse of each infrastructure's stored descriptor; only Run's
	// goroutine touches it.
	parsed map[string]parsedDescriptor
}

// published pairs a Set with the channel closed when a newer Set replaces it.
type published struct {
	set  *Set
	next chan struct{}
}

// parsedDescriptor is what a Set needs from a stored descriptor.
type parsedDescriptor struct {
	text  string
	name  string
	nodes map[string]map[string]any
}

// New returns a tracker over opts.Store. It reads nothing until Run.
func New(opts Options) (*Tracker, error) {
	if opts.Store == nil {
		return nil, errors.New("new ready-set tracker: a store is required")
	}
	if h, ok := opts.Hub.(*events.Hub); ok && h == nil {
		opts.Hub = nil
	}
	t := &Tracker{
		st:         opts.Store,
		hub:        opts.Hub,
		log:        opts.Logger,
		resync:     opts.Resync,
		coalesce:   opts.Coalesce,
		buffer:     opts.HubBuffer,
		retryDelay: opts.RetryDelay,
		parsed:     map[string]parsedDescriptor{},
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.resync <= 0 {
		t.resync = 30 * time.Second
	}
	if t.coalesce <= 0 {
		t.coalesce = 10 * time.Millisecond
	}
	if t.buffer <= 0 {
		t.buffer = 1024
	}
	if t.retryDelay <= 0 {
		t.retryDelay = time.Second
	}
	t.cur.Store(&published{next: make(chan struct{})})
	return t, nil
}

// Current returns the current Set (nil until the first read of the store succeeded) and a
// channel that is closed when a newer Set is published. The Set must not be modified.
func (t *Tracker) Current() (*Set, <-chan struct{}) {
	p := t.cur.Load()
	return p.set, p.next
}

// publish replaces the current Set and wakes everyone waiting on the previous one.
func (t *Tracker) publish(infras map[string]*Infra) {
	old := t.cur.Load()
	var v uint64 = 1
	if old.set != nil {
		v = old.set.Version + 1
	}
	t.cur.Store(&published{set: &Set{Version: v, infras: infras}, next: make(chan struct{})})
	close(old.next)
}

// Run reads every infrastructure, then keeps the Set current until ctx is done, when it
// returns nil. A failed store read is logged and retried after RetryDelay; it never ends Run.
// Run may be called once at a time.
func (t *Tracker) Run(ctx context.Context) error {
	t.runMu.Lock()
	if t.running {
		t.runMu.Unlock()
		return errors.New("run ready-set tracker: already running")
	}
	t.running = true
	t.runMu.Unlock()
	defer func() {
		t.runMu.Lock()
		t.running = false
		t.runMu.Unlock()
	}()

	var evs <-chan store.Event
	unsubscribe := func() {}
	subscribe := func() {
		if t.hub != nil {
			evs, unsubscribe = t.hub.Subscribe("", t.buffer)
		}
	}
	subscribe()
	defer func() { unsubscribe() }()

	resync := time.NewTicker(t.resync)
	defer resync.Stop()
	timer := time.NewTimer(0) // the first full read happens at once
	defer timer.Stop()
	armed := true
	arm := func(d time.Duration) {
		if armed {
			return
		}
		timer.Reset(d)
		armed = true
	}
	full := true
	resubscribe := false
	dirty := map[string]bool{}

	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-evs:
			if !ok {
				// Cut off by the hub (too slow), or the hub is closing: read everything
				// again once subscribed anew.
				evs = nil
				unsubscribe()
				unsubscribe = func() {}
				resubscribe, full = true, true
				arm(t.retryDelay)
				continue
			}
			dirty[ev.InfraID] = true
			arm(t.coalesce)
			continue
		case <-resync.C:
			full = true
		case <-timer.C:
			armed = false
		}

		if resubscribe {
			subscribe()
			resubscribe = false
		}
		var err error
		if full {
			err = t.readAll(ctx)
		} else if len(dirty) > 0 {
			err = t.readSome(ctx, slices.Sorted(maps.Keys(dirty)))
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			t.log.Warn("read ready instances; retrying", "error", err, "retry_in", t.retryDelay.String())
			arm(t.retryDelay)
			continue
		}
		full = false
		clear(dirty)
	}
}

// readAll re-reads every infrastructure and publishes the result.
func (t *Tracker) readAll(ctx context.Context) error {
	type raw struct {
		rec   *store.InfraRecord
		insts []*store.InstanceRecord
	}
	var all []raw
	err := t.st.View(ctx, func(tx store.Tx) error {
		all = all[:0]
		recs, err := tx.Infras()
		if err != nil {
			return err
		}
		for _, rec := range recs {
			insts, err := tx.Instances(rec.ID)
			if err != nil {
				return err
			}
			all = append(all, raw{rec, insts})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read infrastructures: %w", err)
	}
	infras := make(map[string]*Infra, len(all))
	for _, r := range all {
		infras[r.rec.ID] = t.build(r.rec, r.insts)
	}
	for id := range t.parsed {
		if _, ok := infras[id]; !ok {
			delete(t.parsed, id)
		}
	}
	if old, _ := t.Current(); old != nil && sameInfras(old.infras, infras) {
		return nil
	}
	t.publish(infras)
	return nil
}

// readSome re-reads the named infrastructures and publishes the result when anything
// changed. An infrastructure that no longer exists leaves the Set.
func (t *Tracker) readSome(ctx context.Context, ids []string) error {
	old, _ := t.Current()
	if old == nil {
		return t.readAll(ctx)
	}
	next := maps.Clone(old.infras)
	changed := false
	for _, id := range ids {
		var rec *store.InfraRecord
		var insts []*store.InstanceRecord
		err := t.st.View(ctx, func(tx store.Tx) error {
			var err error
			if rec, err = tx.Infra(id); err != nil {
				return err
			}
			insts, err = tx.Instances(id)
			return err
		})
		if errors.Is(err, store.ErrNotFound) {
			if _, ok := next[id]; ok {
				delete(next, id)
				changed = true
			}
			delete(t.parsed, id)
			continue
		}
		if err != nil {
			return fmt.Errorf("read infrastructure %q: %w", id, err)
		}
		in := t.build(rec, insts)
		if prev, ok := next[id]; ok && sameInfra(prev, in) {
			continue
		}
		next[id] = in
		changed = true
	}
	if changed {
		t.publish(next)
	}
	return nil
}

// build turns one infrastructure's records into its Infra.
func (t *Tracker) build(rec *store.InfraRecord, insts []*store.InstanceRecord) *Infra {
	pd, ok := t.parsed[rec.ID]
	if !ok || pd.text != rec.Descriptor {
		pd = parseDescriptor(rec.Descriptor)
		t.parsed[rec.ID] = pd
	}
	in := &Infra{ID: rec.ID, Name: pd.name, Created: rec.Created, Nodes: map[string]*Node{}, descriptor: rec.Descriptor}
	node := func(name string) *Node {
		n, ok := in.Nodes[name]
		if !ok {
			n = &Node{Name: name, Variables: pd.nodes[name]}
			in.Nodes[name] = n
		}
		return n
	}
	for name := range pd.nodes {
		node(name)
	}
	for name := range rec.Targets {
		node(name)
	}
	for _, r := range insts {
		n := node(r.Node)
		if r.State != store.StateReady {
			continue
		}
		addrs := slices.Clone(r.Addresses)
		if r.PrivateAddress != "" && !slices.Contains(addrs, r.PrivateAddress) {
			addrs = append(addrs, r.PrivateAddress)
		}
		if len(addrs) == 0 {
			// An instance without any address cannot receive traffic; leave it out.
			continue
		}
		n.Ready = append(n.Ready, Instance{NodeID: r.NodeID, Address: addrs[0], Addresses: addrs})
	}
	for _, n := range in.Nodes {
		slices.SortFunc(n.Ready, func(a, b Instance) int { return strings.Compare(a.NodeID, b.NodeID) })
	}
	return in
}

// parseDescriptor reads the infrastructure name and each node's merged variables from a
// stored descriptor with the descriptor parser. A stored descriptor that parser refuses (one
// written with import tags, which only the file loader resolves) is read leniently for the
// same keys, with node variables merged over the infrastructure's one level deep; if even
// that fails the name is empty and no node is known from the descriptor.
func parseDescriptor(text string) parsedDescriptor {
	pd := parsedDescriptor{text: text, nodes: map[string]map[string]any{}}
	if in, _, err := descriptor.ParseInfra("stored descriptor", []byte(text)); err == nil {
		pd.name = in.Name
		for _, n := range in.Nodes {
			pd.nodes[n.Name] = n.Variables
		}
		return pd
	}
	var doc struct {
		Name      string         `yaml:"infra_name"`
		Variables map[string]any `yaml:"variables"`
		Nodes     []struct {
			Name      string         `yaml:"name"`
			Variables map[string]any `yaml:"variables"`
		} `yaml:"nodes"`
	}
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return pd
	}
	pd.name = doc.Name
	for _, n := range doc.Nodes {
		if n.Name == "" {
			continue
		}
		vars := maps.Clone(doc.Variables)
		if vars == nil {
			vars = map[string]any{}
		}
		maps.Copy(vars, n.Variables)
		pd.nodes[n.Name] = vars
	}
	return pd
}

// sameInfras reports whether two Sets' infrastructures are equal, so that a resync that
// found nothing new publishes nothing.
func sameInfras(a, b map[string]*Infra) bool {
	if len(a) != len(b) {
		return false
	}
	for id, x := range a {
		y, ok := b[id]
		if !ok || !sameInfra(x, y) {
			return false
		}
	}
	return true
}

func sameInfra(a, b *Infra) bool {
	if a.ID != b.ID || a.Name != b.Name || !a.Created.Equal(b.Created) || a.descriptor != b.descriptor ||
		len(a.Nodes) != len(b.Nodes) {
		return false
	}
	for name, x := range a.Nodes {
		y, ok := b.Nodes[name]
		if !ok || !sameNode(x, y) {
			return false
		}
	}
	return true
}

func sameNode(a, b *Node) bool {
	if len(a.Ready) != len(b.Ready) {
		return false
	}
	for i := range a.Ready {
		if a.Ready[i].NodeID != b.Ready[i].NodeID || !slices.Equal(a.Ready[i].Addresses, b.Ready[i].Addresses) {
			return false
		}
	}
	return true
}
