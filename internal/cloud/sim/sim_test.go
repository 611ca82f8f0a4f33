package sim

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/skyfleet/skyfleet/internal/cloud"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func spec(token string, tags map[string]string) cloud.InstanceSpec {
	return cloud.InstanceSpec{Token: token, InfraID: "infra-1", Node: "app", Tags: tags}
}

func mustCreate(t *testing.T, p cloud.Provider, token string) string {
	t.Helper()
	id, err := p.Create(context.Background(), spec(token, nil))
	if err != nil {
		t.Fatalf("create %s: %v", token, err)
	}
	return id
}

func mustDescribe(t *testing.T, p cloud.Provider, id string) cloud.Instance {
	t.Helper()
	in, err := p.Describe(context.Background(), id)
	if err != nil {
		t.Fatalf("describe %s: %v", id, err)
	}
	return in
}

func TestCreateIsIdempotentOnToken(t *testing.T) {
	s := New(Options{})
	a := mustCreate(t, s, "tok-a")
	again := mustCreate(t, s, "tok-a")
	b := mustCreate(t, s, "tok-b")
	if a != again {
		t.Fatalf("same token gave ids %s and %s", a, again)
	}
	if a == b {
		t.Fatalf("different tokens share id %s", a)
	}
	if got := s.Count(); got != 2 {
		t.Fatalf("Count() = %d, want 2", got)
	}
	if got := mustDescribe(t, s, a).Token; got != "tok-a" {
		t.Fatalf("Describe token = %q, want tok-a", got)
	}
}

func TestCreateRejectsEmptyToken(t *testing.T) {
	s := New(Options{})
	if _, err := s.Create(context.Background(), spec("", nil)); err == nil || cloud.IsRetryable(err) {
		t.Fatalf("create with empty token: err = %v, want a permanent error", err)
	}
	if s.Count() != 0 {
		t.Fatalf("an instance was created without a token")
	}
}

func TestLostResponseRetrySameInstance(t *testing.T) {
	s := New(Options{LoseResponseRate: 1})
	_, err := s.Create(context.Background(), spec("tok", nil))
	if !cloud.IsRetryable(err) {
		t.Fatalf("create with lose_response_rate 1: err = %v, want retryable", err)
	}
	if s.Count() != 1 {
		t.Fatalf("lost response: Count() = %d, want 1 (the backend created it)", s.Count())
	}
	// A retry through a provider that does not lose responses gets the same instance.
	p, err := s.Bind(map[string]any{"type": "sim", "lose_response_rate": 0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := mustCreate(t, p, "tok")
	if want := s.Instances()[0].ID; id != want {
		t.Fatalf("retry returned %s, want the lost instance %s", id, want)
	}
	if s.Count() != 1 {
		t.Fatalf("retry after lost response started a second instance (Count %d)", s.Count())
	}
}

func TestBootTimeAndFailures(t *testing.T) {
	tests := []struct {
		name        string
		failureRate float64
		after       cloud.State
		detail      string
	}{
		{name: "boots to running", failureRate: 0, after: cloud.StateRunning},
		{name: "boots to failed", failureRate: 1, after: cloud.StateFailed, detail: "simulated boot failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			s := New(Options{Clock: clk.Now, BootTime: 10 * time.Second, FailureRate: tt.failureRate})
			id := mustCreate(t, s, "tok")
			if got := mustDescribe(t, s, id).State; got != cloud.StatePending {
				t.Fatalf("right after create: state %s, want pending", got)
			}
			clk.Advance(9 * time.Second)
			if got := mustDescribe(t, s, id).State; got != cloud.StatePending {
				t.Fatalf("after 9s of a 10s boot: state %s, want pending", got)
			}
			clk.Advance(time.Second)
			in := mustDescribe(t, s, id)
			if in.State != tt.after || in.Detail != tt.detail {
				t.Fatalf("after boot: state %s detail %q, want %s %q", in.State, in.Detail, tt.after, tt.detail)
			}
			if in.Address() == "" {
				t.Fatalf("instance has no address")
			}
		})
	}
}

func TestDestroyAndUnknownIDs(t *testing.T) {
	s := New(Options{})
	ctx := context.Background()
	id := mustCreate(t, s, "tok")
	for i := range 2 {
		if err := s.Destroy(ctx, id); err != nil {
			t.Fatalf("destroy #%d: %v", i+1, err)
		}
	}
	if err := s.Destroy(ctx, "sim-999999"); err != nil {
		t.Fatalf("destroy unknown id: %v", err)
	}
	for _, id := range []string{id, "sim-424242", ""} {
		in, err := s.Describe(ctx, id)
		if err != nil || in.State != cloud.StateGone {
			t.Fatalf("describe %q after destroy: %+v, %v; want gone and nil error", id, in, err)
		}
	}
	if s.Count() != 0 {
		t.Fatalf("Count() = %d after destroy", s.Count())
	}
	// The token keeps naming the destroyed instance, as a cloud client token does.
	if again := mustCreate(t, s, "tok"); again != id {
		t.Fatalf("create with a used token after destroy = %s, want %s", again, id)
	}
}

func TestAddressesSequentialAndReleased(t *testing.T) {
	s := New(Options{AddressRange: "10.77.0.0/29"}) // usable .1 … .6
	ctx := context.Background()
	var ids []string
	for i := range 6 {
		id := mustCreate(t, s, fmt.Sprintf("t%d", i))
		ids = append(ids, id)
		want := fmt.Sprintf("10.77.0.%d", i+1)
		if got := mustDescribe(t, s, id).Address(); got != want {
			t.Fatalf("instance %d address %s, want %s", i, got, want)
		}
	}
	if _, err := s.Create(ctx, spec("overflow", nil)); err == nil || !strings.Contains(err.Error(), "exhausted") {
		t.Fatalf("create beyond the range: err = %v, want exhausted", err)
	}
	if err := s.Destroy(ctx, ids[2]); err != nil {
		t.Fatal(err)
	}
	id := mustCreate(t, s, "reuse")
	if got := mustDescribe(t, s, id).Address(); got != "10.77.0.3" {
		t.Fatalf("after releasing 10.77.0.3 the new instance got %s", got)
	}
}

func TestDefaultAddressRange(t *testing.T) {
	s := New(Options{})
	id := mustCreate(t, s, "tok")
	if got := mustDescribe(t, s, id).Address(); got != "127.77.0.1" {
		t.Fatalf("first address %s, want 127.77.0.1", got)
	}
}

func TestListFiltersByAllTags(t *testing.T) {
	s := New(Options{})
	ctx := context.Background()
	mk := func(token, infra, node string) string {
		id, err := s.Create(ctx, spec(token, map[string]string{cloud.TagManaged: "1", cloud.TagInfraID: infra, cloud.TagNode: node}))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	a := mk("a", "i1", "web")
	b := mk("b", "i1", "db")
	c := mk("c", "i2", "web")
	tests := []struct {
		name string
		tags map[string]string
		want []string
	}{
		{"no filter", nil, []string{a, b, c}},
		{"managed", map[string]string{cloud.TagManaged: "1"}, []string{a, b, c}},
		{"infra", map[string]string{cloud.TagInfraID: "i1"}, []string{a, b}},
		{"infra and node", map[string]string{cloud.TagInfraID: "i1", cloud.TagNode: "web"}, []string{a}},
		{"no match", map[string]string{cloud.TagInfraID: "i3"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.List(ctx, tt.tags)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, in := range got {
				ids = append(ids, in.ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tt.want) {
				t.Fatalf("List(%v) = %v, want %v", tt.tags, ids, tt.want)
			}
		})
	}
}

func TestAPIErrorsAreRetryableAndHaveNoEffect(t *testing.T) {
	s := New(Options{APIErrorRate: 1})
	ctx := context.Background()
	if _, err := s.Create(ctx, spec("tok", nil)); !cloud.IsRetryable(err) {
		t.Fatalf("create: err = %v, want retryable", err)
	}
	if _, err := s.Describe(ctx, "sim-000001"); !cloud.IsRetryable(err) {
		t.Fatalf("describe: err = %v, want retryable", err)
	}
	if _, err := s.List(ctx, nil); !cloud.IsRetryable(err) {
		t.Fatalf("list: err = %v, want retryable", err)
	}
	if s.Count() != 0 {
		t.Fatalf("a failed create took effect")
	}
	s.SetAPIErrorRate(0)
	id := mustCreate(t, s, "tok")
	// A resource override wins over the Sim-wide rate.
	p, err := s.Bind(map[string]any{"type": "sim", "api_error_rate": 1.0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Destroy(ctx, id); !cloud.IsRetryable(err) {
		t.Fatalf("destroy through api_error_rate 1: err = %v, want retryable", err)
	}
	if s.Count() != 1 {
		t.Fatalf("a failed destroy took effect")
	}
	calls := s.Calls()
	want := map[Op]int{OpCreate: 2, OpDescribe: 1, OpList: 1, OpDestroy: 1}
	for op, n := range want {
		if calls[op] != n {
			t.Fatalf("Calls()[%s] = %d, want %d (all: %v)", op, calls[op], n, calls)
		}
	}
}

func TestSeedMakesFailuresRepeatable(t *testing.T) {
	pattern := func(seed int64) string {
		s := New(Options{FailureRate: 0.5, Seed: seed})
		var b strings.Builder
		for i := range 64 {
			id := mustCreate(t, s, fmt.Sprint(i))
			if mustDescribe(t, s, id).State == cloud.StateFailed {
				b.WriteByte('F')
			} else {
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	a, b := pattern(7), pattern(7)
	if a != b {
		t.Fatalf("same seed, different outcomes:\n%s\n%s", a, b)
	}
	if !strings.Contains(a, "F") || !strings.Contains(a, ".") {
		t.Fatalf("failure rate 0.5 gave a uniform pattern %s", a)
	}
	if pattern(8) == a {
		t.Fatalf("different seeds gave the same 64-instance pattern")
	}
}

func TestLatencyHonoursContext(t *testing.T) {
	s := New(Options{Latency: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Create(ctx, spec("tok", nil))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("create with cancelled context under 1h latency: err = %v, want context.Canceled", err)
	}
	if s.Count() != 0 {
		t.Fatalf("cancelled create took effect")
	}
}

func TestFailNext(t *testing.T) {
	boom := errors.New("boom")
	ctx := context.Background()
	t.Run("before effect", func(t *testing.T) {
		s := New(Options{})
		s.FailNext(OpCreate, boom)
		if _, err := s.Create(ctx, spec("tok", nil)); !errors.Is(err, boom) {
			t.Fatalf("err = %v, want boom", err)
		}
		if s.Count() != 0 {
			t.Fatalf("a create failed before effect left an instance")
		}
		mustCreate(t, s, "tok") // the hook is consumed
	})
	t.Run("after effect", func(t *testing.T) {
		s := New(Options{})
		s.FailNextAfter(OpCreate, boom)
		if _, err := s.Create(ctx, spec("tok", nil)); !errors.Is(err, boom) {
			t.Fatalf("err = %v, want boom", err)
		}
		if s.Count() != 1 {
			t.Fatalf("a create failed after effect left %d instances, want 1", s.Count())
		}
		id := mustCreate(t, s, "tok")
		s.FailNextAfter(OpDestroy, boom)
		if err := s.Destroy(ctx, id); !errors.Is(err, boom) {
			t.Fatalf("destroy err = %v, want boom", err)
		}
		if s.Count() != 0 {
			t.Fatalf("destroy failed after effect did not remove the instance")
		}
	})
}

func TestBlockNext(t *testing.T) {
	t.Run("abandoned after effect", func(t *testing.T) {
		s := New(Options{})
		blk := s.BlockNext(OpCreate, AfterEffect)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := s.Create(ctx, spec("tok", nil))
			errc <- err
		}()
		<-blk.Entered()
		if s.Count() != 1 {
			t.Fatalf("blocked after effect but Count() = %d", s.Count())
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("abandoned create: err = %v, want context.Canceled", err)
		}
	})
	t.Run("released before effect", func(t *testing.T) {
		s := New(Options{})
		blk := s.BlockNext(OpCreate, BeforeEffect)
		type res struct {
			id  string
			err error
		}
		resc := make(chan res, 1)
		go func() {
			id, err := s.Create(context.Background(), spec("tok", nil))
			resc <- res{id, err}
		}()
		<-blk.Entered()
		if s.Count() != 0 {
			t.Fatalf("blocked before effect but an instance exists")
		}
		blk.Release()
		blk.Release()
		r := <-resc
		if r.err != nil || r.id == "" {
			t.Fatalf("released create = %q, %v", r.id, r.err)
		}
	})
}

func TestKillAndSetState(t *testing.T) {
	s := New(Options{AddressRange: "10.77.0.0/30"}) // two usable addresses
	ctx := context.Background()
	a := mustCreate(t, s, "a")
	b := mustCreate(t, s, "b")
	if err := s.SetState(b, cloud.StateStopped); err != nil {
		t.Fatal(err)
	}
	if got := mustDescribe(t, s, b).State; got != cloud.StateStopped {
		t.Fatalf("after SetState stopped: %s", got)
	}
	if !s.Kill(a) {
		t.Fatalf("Kill of an existing instance reported false")
	}
	if s.Kill(a) {
		t.Fatalf("second Kill reported true")
	}
	if got := mustDescribe(t, s, a).State; got != cloud.StateGone {
		t.Fatalf("after Kill: %s, want gone", got)
	}
	// Kill released the address, so the range has room again.
	if _, err := s.Create(ctx, spec("c", nil)); err != nil {
		t.Fatalf("create after Kill freed an address: %v", err)
	}
	if err := s.SetState("sim-777777", cloud.StateFailed); err == nil {
		t.Fatalf("SetState of an unknown id succeeded")
	}
}

func TestBindOverrides(t *testing.T) {
	clk := newFakeClock()
	s := New(Options{Clock: clk.Now})
	p, err := s.Bind(map[string]any{"type": "sim", "boot_time": "5s", "address_range": "10.78.0.0/24", "failure_rate": 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	slow := mustCreate(t, p, "slow")
	fast := mustCreate(t, s, "fast")
	if in := mustDescribe(t, s, slow); in.State != cloud.StatePending || in.Address() != "10.78.0.1" {
		t.Fatalf("bound instance: %s at %s, want pending at 10.78.0.1", in.State, in.Address())
	}
	if got := mustDescribe(t, p, fast).State; got != cloud.StateRunning {
		t.Fatalf("default instance seen through the bound provider: %s, want running (shared table)", got)
	}
	clk.Advance(5 * time.Second)
	if got := mustDescribe(t, s, slow).State; got != cloud.StateFailed {
		t.Fatalf("bound instance with failure_rate 1 after boot: %s, want failed", got)
	}
}

func TestConcurrentCreatesWithSharedTokens(t *testing.T) {
	s := New(Options{APIErrorRate: 0.2, LoseResponseRate: 0.2, Seed: 3})
	const tokens, workers = 20, 8
	ids := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range tokens {
				for {
					id, err := s.Create(context.Background(), spec(fmt.Sprint(i), nil))
					if err == nil {
						ids[w] = append(ids[w], id)
						break
					}
					if !cloud.IsRetryable(err) {
						t.Errorf("create: %v", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if s.Count() != tokens {
		t.Fatalf("%d workers creating %d tokens made %d instances", workers, tokens, s.Count())
	}
	for w := 1; w < workers; w++ {
		if fmt.Sprint(ids[w]) != fmt.Sprint(ids[0]) {
			t.Fatalf("worker %d saw ids %v, worker 0 saw %v", w, ids[w], ids[0])
		}
	}
}

func BenchmarkCreate10000(b *testing.B) {
	ctx := context.Background()
	tokens := make([]string, 10000)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("node-%05d", i)
	}
	b.ReportAllocs()
	for b.Loop() {
		s := New(Options{})
		for _, tok := range tokens {
			if _, err := s.Create(ctx, spec(tok, map[string]string{cloud.TagManaged: "1"})); err != nil {
				b.Fatal(err)
			}
		}
		if s.Count() != len(tokens) {
			b.Fatalf("Count() = %d", s.Count())
		}
	}
}
