package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/skyfleet/skyfleet/internal/cloud"
)

// DefaultAddressRange is where instance addresses come from unless Options.AddressRange or a
// resource's `address_range` says otherwise. It is on loopback so that the default health
// check (ping) of a sim node never sends traffic off the machine.
const DefaultAddressRange = "127.77.0.0/16"

// Op names one provider operation, for call counters and fault hooks.
type Op string

// The operations a Sim counts and can inject faults into.
const (
	OpCreate   Op = "create"
	OpDestroy  Op = "destroy"
	OpDescribe Op = "describe"
	OpList     Op = "list"
)

// Options configures a Sim. The zero value is a usable, instant, fault-free cloud.
type Options struct {
	// Clock tells the time used for boot delays; default time.Now. Tests inject a fake clock
	// to move instances from pending to running without sleeping.
	Clock func() time.Time
	// BootTime is how long a new instance stays pending.
	BootTime time.Duration
	// FailureRate is the probability (0..1) that an instance ends up failed instead of
	// running once its boot time has passed.
	FailureRate float64
	// APIErrorRate is the probability (0..1) that any call returns a cloud.RetryableError
	// without taking effect.
	APIErrorRate float64
	// LoseResponseRate is the probability (0..1) that a Create takes effect but answers with
	// a cloud.RetryableError, as when the response is lost; the caller must retry with the
	// same token and get the same instance back.
	LoseResponseRate float64
	// Latency is added to every call (real time, not Clock), ending early with the call's
	// context.
	Latency time.Duration
	// AddressRange is the IPv4 CIDR addresses are allocated from, sequentially; default
	// DefaultAddressRange (127.77.0.0/16).
	AddressRange string
	// Seed makes every random decision (failures, API errors, lost responses) repeatable.
	Seed int64
	// Logger receives debug records of every change; default discards.
	Logger *slog.Logger
}

// Sim is a simulated cloud holding one instance table. It implements cloud.Driver (every
// bound provider shares the table), cloud.Provider and cloud.Lister with the Options'
// defaults, and offers test hooks to inject faults. It is safe for concurrent use.
//
// Create is idempotent on the token for the Sim's lifetime: a token, once used, maps to its
// instance id forever, so a repeated Create after the instance was destroyed returns the old
// id (which Describe reports as gone), as EC2 does with a client token.
type Sim struct {
	clock func() time.Time
	log   *slog.Logger
	def   settings

	mu           sync.Mutex
	rng          *rand.Rand
	apiErrorRate float64
	instances    map[string]*instance
	tokens       map[string]string
	pools        map[string]*addrPool
	seq          uint64
	calls        map[Op]int
	hooks        map[Op][]*hook
}

var (
	_ cloud.Driver   = (*Sim)(nil)
	_ cloud.Provider = (*Sim)(nil)
	_ cloud.Lister   = (*Sim)(nil)
	_ cloud.Provider = (*bound)(nil)
	_ cloud.Lister   = (*bound)(nil)
)

// settings are the effective knobs of one provider (the Sim's defaults or a resource's
// overrides over them).
type settings struct {
	bootTime         time.Duration
	latency          time.Duration
	failureRate      float64
	loseResponseRate float64
	apiErrorRate     *float64 // nil: the Sim's current rate (SetAPIErrorRate)
	addressRange     string
}

type instance struct {
	id       string
	token    string
	created  time.Time
	bootTime time.Duration
	willFail bool
	forced   cloud.State
	addr     string
	pool     *addrPool
	tags     map[string]string
}

// New returns a Sim with opts, defaults applied. An invalid Options.AddressRange is reported
// by the first Create that needs it.
func New(opts Options) *Sim {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.AddressRange == "" {
		opts.AddressRange = DefaultAddressRange
	}
	seed := uint64(opts.Seed)
	return &Sim{
		clock: opts.Clock,
		log:   opts.Logger.With("component", "sim"),
		def: settings{
			bootTime:         opts.BootTime,
			latency:          opts.Latency,
			failureRate:      opts.FailureRate,
			loseResponseRate: opts.LoseResponseRate,
			addressRange:     opts.AddressRange,
		},
		rng:          rand.New(rand.NewPCG(seed, seed^0x5eed5eed5eed5eed)),
		apiErrorRate: opts.APIErrorRate,
		instances:    map[string]*instance{},
		tokens:       map[string]string{},
		pools:        map[string]*addrPool{},
		calls:        map[Op]int{},
		hooks:        map[Op][]*hook{},
	}
}

// Bind returns a provider that creates instances with resource's overrides (see Resource)
// over the Sim's defaults, in the Sim's shared instance table. Credentials are ignored.
func (s *Sim) Bind(resource map[string]any, _ *cloud.Credentials) (cloud.Provider, error) {
	r, err := DecodeResource(resource)
	if err != nil {
		return nil, err
	}
	set := s.def
	if r.BootTime != nil {
		set.bootTime = *r.BootTime
	}
	if r.Latency != nil {
		set.latency = *r.Latency
	}
	if r.FailureRate != nil {
		set.failureRate = *r.FailureRate
	}
	if r.LoseResponseRate != nil {
		set.loseResponseRate = *r.LoseResponseRate
	}
	if r.APIErrorRate != nil {
		rate := *r.APIErrorRate
		set.apiErrorRate = &rate
	}
	if r.AddressRange != "" {
		set.addressRange = r.AddressRange
	}
	return &bound{s: s, set: set}, nil
}

// Create starts a simulated instance with the Sim's defaults; see cloud.Provider.
func (s *Sim) Create(ctx context.Context, spec cloud.InstanceSpec) (string, error) {
	return s.create(ctx, s.def, spec)
}

// Destroy removes the instance and releases its address; see cloud.Provider.
func (s *Sim) Destroy(ctx context.Context, id string) error { return s.destroy(ctx, s.def, id) }

// Describe reports the instance's state; see cloud.Provider.
func (s *Sim) Describe(ctx context.Context, id string) (cloud.Instance, error) {
	return s.describe(ctx, s.def, id)
}

// List returns the existing instances carrying every one of tags, sorted by id.
func (s *Sim) List(ctx context.Context, tags map[string]string) ([]cloud.Instance, error) {
	return s.list(ctx, s.def, tags)
}

// bound is a provider with one resource section's overrides.
type bound struct {
	s   *Sim
	set settings
}

func (b *bound) Create(ctx context.Context, spec cloud.InstanceSpec) (string, error) {
	return b.s.create(ctx, b.set, spec)
}

func (b *bound) Destroy(ctx context.Context, id string) error { return b.s.destroy(ctx, b.set, id) }

func (b *bound) Describe(ctx context.Context, id string) (cloud.Instance, error) {
	return b.s.describe(ctx, b.set, id)
}

func (b *bound) List(ctx context.Context, tags map[string]string) ([]cloud.Instance, error) {
	return b.s.list(ctx, b.set, tags)
}

// begin counts the call, waits out the latency and applies a before-effect hook and the API
// error rate. It returns the after-effect hook to apply once the operation took effect.
func (s *Sim) begin(ctx context.Context, set settings, op Op) (*hook, error) {
	s.mu.Lock()
	s.calls[op]++
	h := s.popHookLocked(op)
	s.mu.Unlock()

	if err := wait(ctx, set.latency); err != nil {
		return nil, fmt.Errorf("sim %s: %w", op, err)
	}
	if h != nil && h.phase == BeforeEffect {
		if err := h.apply(ctx, op); err != nil {
			return nil, err
		}
		h = nil
	}
	s.mu.Lock()
	rate := s.apiErrorRate
	if set.apiErrorRate != nil {
		rate = *set.apiErrorRate
	}
	fail := s.rollLocked(rate)
	s.mu.Unlock()
	if fail {
		return nil, &cloud.RetryableError{Err: fmt.Errorf("sim %s: simulated api error", op)}
	}
	return h, nil
}

func (s *Sim) create(ctx context.Context, set settings, spec cloud.InstanceSpec) (string, error) {
	after, err := s.begin(ctx, set, OpCreate)
	if err != nil {
		return "", err
	}
	if spec.Token == "" {
		return "", errors.New("sim create: empty idempotency token")
	}
	s.mu.Lock()
	id, existed := s.tokens[spec.Token]
	if !existed {
		id, err = s.createLocked(set, spec)
	}
	lose := err == nil && s.rollLocked(set.loseResponseRate)
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	if !existed {
		s.log.Debug("instance created", "instance_id", id, "node_id", spec.Token, "node", spec.Node, "infra_id", spec.InfraID)
	}
	if after != nil {
		if err := after.apply(ctx, OpCreate); err != nil {
			return "", err
		}
	}
	if lose {
		return "", &cloud.RetryableError{Err: fmt.Errorf("sim create: simulated lost response (instance %s was created)", id)}
	}
	return id, nil
}

func (s *Sim) createLocked(set settings, spec cloud.InstanceSpec) (string, error) {
	pool, ok := s.pools[set.addressRange]
	if !ok {
		p, err := newAddrPool(set.addressRange)
		if err != nil {
			return "", fmt.Errorf("sim create: %w", err)
		}
		pool = p
		s.pools[set.addressRange] = pool
	}
	addr, err := pool.allocate()
	if err != nil {
		return "", fmt.Errorf("sim create: %w", err)
	}
	s.seq++
	in := &instance{
		id:       fmt.Sprintf("sim-%06d", s.seq),
		token:    spec.Token,
		created:  s.clock(),
		bootTime: set.bootTime,
		willFail: s.rollLocked(set.failureRate),
		addr:     addr,
		pool:     pool,
		tags:     maps.Clone(spec.Tags),
	}
	s.instances[in.id] = in
	s.tokens[spec.Token] = in.id
	return in.id, nil
}

func (s *Sim) destroy(ctx context.Context, set settings, id string) error {
	after, err := s.begin(ctx, set, OpDestroy)
	if err != nil {
		return err
	}
	s.mu.Lock()
	existed := s.removeLocked(id)
	s.mu.Unlock()
	if existed {
		s.log.Debug("instance destroyed", "instance_id", id)
	}
	if after != nil {
		if err := after.apply(ctx, OpDestroy); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sim) removeLocked(id string) bool {
	in, ok := s.instances[id]
	if !ok {
		return false
	}
	in.pool.release(in.addr)
	delete(s.instances, id)
	return true
}

func (s *Sim) describe(ctx context.Context, set settings, id string) (cloud.Instance, error) {
	after, err := s.begin(ctx, set, OpDescribe)
	if err != nil {
		return cloud.Instance{}, err
	}
	s.mu.Lock()
	var out cloud.Instance
	if in, ok := s.instances[id]; ok {
		out = s.reportLocked(in)
	} else {
		out = cloud.Instance{ID: id, State: cloud.StateGone}
	}
	s.mu.Unlock()
	if after != nil {
		if err := after.apply(ctx, OpDescribe); err != nil {
			return cloud.Instance{}, err
		}
	}
	return out, nil
}

func (s *Sim) list(ctx context.Context, set settings, tags map[string]string) ([]cloud.Instance, error) {
	after, err := s.begin(ctx, set, OpList)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	var out []cloud.Instance
	for _, in := range s.instances {
		if hasTags(in.tags, tags) {
			out = append(out, s.reportLocked(in))
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b cloud.Instance) int { return compareIDs(a.ID, b.ID) })
	if after != nil {
		if err := after.apply(ctx, OpList); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Sim) reportLocked(in *instance) cloud.Instance {
	out := cloud.Instance{
		ID:             in.id,
		Token:          in.token,
		Addresses:      []string{in.addr},
		PrivateAddress: in.addr,
		Tags:           maps.Clone(in.tags),
		Created:        in.created,
	}
	switch {
	case in.forced != "":
		out.State = in.forced
		out.Detail = "state set out of band"
	case s.clock().Before(in.created.Add(in.bootTime)):
		out.State = cloud.StatePending
	case in.willFail:
		out.State = cloud.StateFailed
		out.Detail = "simulated boot failure"
	default:
		out.State = cloud.StateRunning
	}
	return out
}

func (s *Sim) rollLocked(rate float64) bool {
	return rate > 0 && s.rng.Float64() < rate
}

// compareIDs orders ids by length first so that sim-1000000 sorts after sim-999999.
func compareIDs(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func hasTags(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// wait blocks for d or until ctx is done.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
