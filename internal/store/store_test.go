package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// A re-executed copy of this binary that holds a store for TestOpenLockedByChild.
	if dir := os.Getenv(holdEnv); dir != "" {
		os.Exit(holdStore(dir))
	}
	goleak.VerifyTestMain(m)
}

// testLogger sends store logs to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func openTest(t testing.TB, dir string) Store {
	t.Helper()
	s, err := Open(dir, Options{Logger: testLogger(t), Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func update(t testing.TB, s Store, fn func(Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func view(t testing.TB, s Store, fn func(Tx) error) {
	t.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

var t0 = time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)

func putInfra(t testing.TB, s Store, id string) {
	t.Helper()
	update(t, s, func(tx Tx) error {
		return tx.PutInfra(&InfraRecord{ID: id, Descriptor: "infra_id: " + id, Phase: InfraBuilding, Created: t0, Updated: t0})
	})
}

func TestNodeDefs(t *testing.T) {
	s := openTest(t, t.TempDir())
	a := &NodeDefRecord{Name: "app", YAML: "'node_def:app': []", Source: "nodes.yaml", Imported: t0}
	b := &NodeDefRecord{Name: "lb", YAML: "'node_def:lb': []", Imported: t0}
	update(t, s, func(tx Tx) error {
		if err := tx.PutNodeDef(a); err != nil {
			return err
		}
		return tx.PutNodeDef(b)
	})
	view(t, s, func(tx Tx) error {
		got, err := tx.NodeDef("app")
		if err != nil {
			t.Fatalf("NodeDef(app): %v", err)
		}
		if !reflect.DeepEqual(got, a) {
			t.Errorf("NodeDef(app) = %+v, want %+v", got, a)
		}
		all, err := tx.NodeDefs()
		if err != nil || len(all) != 2 || all[0].Name != "app" || all[1].Name != "lb" {
			t.Errorf("NodeDefs() = %v, %v; want app and lb", all, err)
		}
		_, err = tx.NodeDef("db")
		if !errors.Is(err, ErrNotFound) || err.Error() != `node definition "db": not found` {
			t.Errorf("NodeDef(db) error = %v, want not found naming db", err)
		}
		return nil
	})
	update(t, s, func(tx Tx) error {
		if err := tx.DeleteNodeDef("app"); err != nil {
			t.Errorf("DeleteNodeDef(app): %v", err)
		}
		if err := tx.DeleteNodeDef("app"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second DeleteNodeDef(app) = %v, want ErrNotFound", err)
		}
		if err := tx.PutNodeDef(&NodeDefRecord{}); err == nil {
			t.Error("PutNodeDef without a name succeeded")
		}
		return nil
	})
	view(t, s, func(tx Tx) error {
		all, _ := tx.NodeDefs()
		if len(all) != 1 || all[0].Name != "lb" {
			t.Errorf("after delete NodeDefs() = %v, want only lb", all)
		}
		return nil
	})
}

func TestInfras(t *testing.T) {
	s := openTest(t, t.TempDir())
	r := &InfraRecord{
		ID: "i1", Descriptor: "nodes: []", NodeDefs: map[string]string{"app": "x"},
		Targets: map[string]int{"app": 3}, Phase: InfraReady, Created: t0, Updated: t0, Generation: 2,
	}
	update(t, s, func(tx Tx) error { return tx.PutInfra(r) })
	putInfra(t, s, "i0")
	view(t, s, func(tx Tx) error {
		got, err := tx.Infra("i1")
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("Infra(i1) = %+v, %v; want %+v", got, err, r)
		}
		all, err := tx.Infras()
		if err != nil || len(all) != 2 || all[0].ID != "i0" || all[1].ID != "i1" {
			t.Errorf("Infras() = %v, %v; want i0, i1", all, err)
		}
		_, err = tx.Infra("x")
		if !errors.Is(err, ErrNotFound) || err.Error() != `infra "x": not found` {
			t.Errorf("Infra(x) error = %v, want `infra \"x\": not found`", err)
		}
		return nil
	})
	// Put again replaces the record and keeps what is filed under it.
	update(t, s, func(tx Tx) error {
		if err := tx.PutInstance(&InstanceRecord{InfraID: "i1", NodeID: "n1", Node: "app"}); err != nil {
			return err
		}
		r2 := *r
		r2.Phase = InfraDestroying
		return tx.PutInfra(&r2)
	})
	view(t, s, func(tx Tx) error {
		got, _ := tx.Infra("i1")
		if got.Phase != InfraDestroying {
			t.Errorf("phase after re-put = %s, want destroying", got.Phase)
		}
		if insts, _ := tx.Instances("i1"); len(insts) != 1 {
			t.Errorf("re-putting the infra lost its instances: %v", insts)
		}
		return nil
	})
	if err := s.Update(context.Background(), func(tx Tx) error { return tx.PutInfra(&InfraRecord{}) }); err == nil {
		t.Error("PutInfra without an id succeeded")
	}
}

func TestRecordsAreCopies(t *testing.T) {
	s := openTest(t, t.TempDir())
	putInfra(t, s, "i1")
	in := &InstanceRecord{InfraID: "i1", NodeID: "n1", Node: "app", Addresses: []string{"127.0.1.1"},
		Resource: map[string]any{"type": "local"}}
	update(t, s, func(tx Tx) error { return tx.PutInstance(in) })
	in.Addresses[0] = "changed-after-put"
	view(t, s, func(tx Tx) error {
		got, _ := tx.Instance("i1", "n1")
		if got.Addresses[0] != "127.0.1.1" {
			t.Errorf("stored record follows the caller's later change: %v", got.Addresses)
		}
		got.Addresses[0] = "changed-after-get"
		got.Resource["type"] = "changed"
		again, _ := tx.Instance("i1", "n1")
		if again.Addresses[0] != "127.0.1.1" || again.Resource["type"] != "local" {
			t.Errorf("changing a returned record changed the next read: %+v", again)
		}
		return nil
	})
}

func TestInstances(t *testing.T) {
	s := openTest(t, t.TempDir())
	err := s.Update(context.Background(), func(tx Tx) error {
		return tx.PutInstance(&InstanceRecord{InfraID: "ghost", NodeID: "n1"})
	})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `infra "ghost": not found`) {
		t.Fatalf("PutInstance into a missing infra = %v, want ErrNotFound naming ghost", err)
	}
	putInfra(t, s, "i1")
	mk := func(id string, at time.Time) *InstanceRecord {
		return &InstanceRecord{InfraID: "i1", Node: "app", NodeID: id, State: StatePending, ResourceType: "sim",
			Addresses: []string{"127.0.0.2"}, Created: at, Resource: map[string]any{"type": "sim", "boot": "1s"}}
	}
	a, b, c := mk("a", t0.Add(3*time.Second)), mk("b", t0.Add(2*time.Second)), mk("c", t0.Add(time.Second))
	update(t, s, func(tx Tx) error {
		for _, r := range []*InstanceRecord{a, b, c} {
			if err := tx.PutInstance(r); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx Tx) error {
		got, err := tx.Instance("i1", "b")
		if err != nil || !reflect.DeepEqual(got, b) {
			t.Errorf("Instance(b) = %+v, %v; want %+v", got, err, b)
		}
		all, _ := tx.Instances("i1")
		if len(all) != 3 {
			t.Errorf("Instances = %d records, want 3", len(all))
		}
		_, err = tx.Instance("i1", "zz")
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `instance "zz"`) {
			t.Errorf("Instance(zz) = %v, want not found naming zz", err)
		}
		if _, err := tx.Instances("nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Instances(nope) = %v, want ErrNotFound", err)
		}
		return nil
	})
	update(t, s, func(tx Tx) error {
		a.State = StateFailed
		if err := tx.ArchiveInstance(a); err != nil {
			return err
		}
		if err := tx.ArchiveInstance(c); err != nil {
			return err
		}
		return tx.DeleteInstance("i1", "b")
	})
	view(t, s, func(tx Tx) error {
		if all, _ := tx.Instances("i1"); len(all) != 0 {
			t.Errorf("after archive and delete, Instances = %v, want none", all)
		}
		arch, err := tx.Archived("i1")
		if err != nil || len(arch) != 2 || arch[0].NodeID != "c" || arch[1].NodeID != "a" {
			t.Fatalf("Archived = %v, %v; want c then a (oldest first)", arch, err)
		}
		if arch[1].State != StateFailed {
			t.Errorf("archived a has state %s, want the state it was archived with (failed)", arch[1].State)
		}
		return nil
	})
	err = s.Update(context.Background(), func(tx Tx) error { return tx.DeleteInstance("i1", "b") })
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting a deleted instance = %v, want ErrNotFound", err)
	}
	for _, bad := range []*InstanceRecord{{NodeID: "x"}, {InfraID: "i1"}} {
		if err := s.Update(context.Background(), func(tx Tx) error { return tx.PutInstance(bad) }); err == nil {
			t.Errorf("PutInstance(%+v) succeeded, want an error for the missing id", bad)
		}
	}
}

func TestScalingRequests(t *testing.T) {
	s := openTest(t, t.TempDir())
	putInfra(t, s, "i1")
	var reqs []*ScalingRequest
	update(t, s, func(tx Tx) error {
		for i, k := range []ScalingKind{ScaleUp, ScaleDown, ScaleTo} {
			r := &ScalingRequest{InfraID: "i1", Node: "app", Kind: k, Count: i + 1, Source: "api", At: t0}
			if err := tx.AddScalingRequest(r); err != nil {
				return err
			}
			reqs = append(reqs, r)
		}
		return nil
	})
	for i, r := range reqs {
		if r.Seq != uint64(i+1) {
			t.Errorf("request %d got seq %d, want %d", i, r.Seq, i+1)
		}
	}
	update(t, s, func(tx Tx) error { return tx.DeleteScalingRequest("i1", 2) })
	view(t, s, func(tx Tx) error {
		got, err := tx.ScalingRequests("i1")
		if err != nil || len(got) != 2 || !reflect.DeepEqual(got[0], reqs[0]) || !reflect.DeepEqual(got[1], reqs[2]) {
			t.Errorf("ScalingRequests = %v, %v; want requests 1 and 3 in order", got, err)
		}
		return nil
	})
	err := s.Update(context.Background(), func(tx Tx) error { return tx.DeleteScalingRequest("i1", 2) })
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting request 2 twice = %v, want ErrNotFound", err)
	}
	err = s.Update(context.Background(), func(tx Tx) error { return tx.AddScalingRequest(&ScalingRequest{InfraID: "nope"}) })
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("AddScalingRequest to a missing infra = %v, want ErrNotFound", err)
	}
}

func TestEventPaging(t *testing.T) {
	s := openTest(t, t.TempDir())
	putInfra(t, s, "i1")
	putInfra(t, s, "i2")
	update(t, s, func(tx Tx) error {
		for i := 1; i <= 25; i++ {
			e := &Event{InfraID: "i1", At: t0.Add(time.Duration(i) * time.Second), Type: "nodecreated",
				Node: "app", Message: fmt.Sprintf("event %d", i), Data: map[string]any{"n": float64(i)}}
			if err := tx.AddEvent(e); err != nil {
				return err
			}
			if e.Seq != uint64(i) {
				t.Errorf("event %d got seq %d", i, e.Seq)
			}
		}
		return tx.AddEvent(&Event{InfraID: "i2", Type: "infrastart"})
	})
	seqs := func(es []*Event) []uint64 {
		out := []uint64{}
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	span := func(from, to uint64) []uint64 {
		out := []uint64{}
		for i := from; i <= to; i++ {
			out = append(out, i)
		}
		return out
	}
	tests := []struct {
		name         string
		infra        string
		after        uint64
		limit        int
		want         []uint64
		wantNotFound bool
	}{
		{"first page", "i1", 0, 10, span(1, 10), false},
		{"second page", "i1", 10, 10, span(11, 20), false},
		{"last partial page", "i1", 20, 10, span(21, 25), false},
		{"after the end", "i1", 25, 10, []uint64{}, false},
		{"no limit", "i1", 0, 0, span(1, 25), false},
		{"no limit from the middle", "i1", 17, 0, span(18, 25), false},
		{"max after", "i1", ^uint64(0), 0, []uint64{}, false},
		{"other infra has its own sequence", "i2", 0, 0, []uint64{1}, false},
		{"missing infra", "nope", 0, 0, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			view(t, s, func(tx Tx) error {
				got, err := tx.Events(tc.infra, tc.after, tc.limit)
				if tc.wantNotFound {
					if !errors.Is(err, ErrNotFound) {
						t.Errorf("Events = %v, want ErrNotFound", err)
					}
					return nil
				}
				if err != nil {
					t.Fatalf("Events: %v", err)
				}
				if g := seqs(got); !reflect.DeepEqual(g, tc.want) {
					t.Errorf("Events(%s, %d, %d) seqs = %v, want %v", tc.infra, tc.after, tc.limit, g, tc.want)
				}
				return nil
			})
		})
	}
	view(t, s, func(tx Tx) error {
		got, _ := tx.Events("i1", 4, 1)
		want := &Event{InfraID: "i1", Seq: 5, At: t0.Add(5 * time.Second), Type: "nodecreated", Node: "app",
			Message: "event 5", Data: map[string]any{"n": float64(5)}}
		if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
			t.Errorf("event 5 = %+v, want %+v", got, want)
		}
		return nil
	})
}

func TestDecisions(t *testing.T) {
	s := openTest(t, t.TempDir())
	putInfra(t, s, "i1")
	update(t, s, func(tx Tx) error {
		for i := 0; i < 5; i++ {
			d := &Decision{InfraID: "i1", At: t0, Node: "app", Direction: "out", Outcome: "cooldown",
				From: 2, To: 2, Reason: "no: cooldown 14s left", Cause: map[string]any{"alert": "overloaded"}}
			if err := tx.AddDecision(d); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx Tx) error {
		got, err := tx.Decisions("i1", 3, 0)
		if err != nil || len(got) != 2 || got[0].Seq != 4 || got[1].Seq != 5 {
			t.Fatalf("Decisions(after 3) = %v, %v; want seqs 4, 5", got, err)
		}
		if got[0].Reason != "no: cooldown 14s left" || got[0].Cause["alert"] != "overloaded" {
			t.Errorf("decision fields lost: %+v", got[0])
		}
		if _, err := tx.Decisions("nope", 0, 0); !errors.Is(err, ErrNotFound) {
			t.Errorf("Decisions(nope) = %v, want ErrNotFound", err)
		}
		return nil
	})
}

func TestDeleteInfraRemovesEverything(t *testing.T) {
	s := openTest(t, t.TempDir())
	putInfra(t, s, "i1")
	putInfra(t, s, "keep")
	update(t, s, func(tx Tx) error {
		for _, id := range []string{"i1", "keep"} {
			if err := errors.Join(
				tx.PutInstance(&InstanceRecord{InfraID: id, NodeID: "n1"}),
				tx.ArchiveInstance(&InstanceRecord{InfraID: id, NodeID: "n0"}),
				tx.AddScalingRequest(&ScalingRequest{InfraID: id, Kind: ScaleUp, Count: 1}),
				tx.AddEvent(&Event{InfraID: id, Type: "infrastart"}),
				tx.AddDecision(&Decision{InfraID: id, Outcome: "scaled"}),
			); err != nil {
				return err
			}
		}
		return nil
	})
	update(t, s, func(tx Tx) error { return tx.DeleteInfra("i1") })
	view(t, s, func(tx Tx) error {
		if _, err := tx.Infra("i1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Infra(i1) after delete = %v, want ErrNotFound", err)
		}
		if all, _ := tx.Infras(); len(all) != 1 || all[0].ID != "keep" {
			t.Errorf("Infras after delete = %v, want only keep", all)
		}
		ev, _ := tx.Events("keep", 0, 0)
		in, _ := tx.Instances("keep")
		if len(ev) != 1 || len(in) != 1 {
			t.Errorf("deleting i1 touched keep: %d events, %d instances", len(ev), len(in))
		}
		return nil
	})
	// A new infrastructure with the same id starts empty.
	putInfra(t, s, "i1")
	view(t, s, func(tx Tx) error {
		in, _ := tx.Instances("i1")
		ar, _ := tx.Archived("i1")
		rq, _ := tx.ScalingRequests("i1")
		ev, _ := tx.Events("i1", 0, 0)
		de, _ := tx.Decisions("i1", 0, 0)
		if n := len(in) + len(ar) + len(rq) + len(ev) + len(de); n != 0 {
			t.Errorf("re-created i1 still has %d old records (instances %v, archive %v, requests %v, events %v, decisions %v)",
				n, in, ar, rq, ev, de)
		}
		return nil
	})
	err := s.Update(context.Background(), func(tx Tx) error { return tx.DeleteInfra("nope") })
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteInfra(nope) = %v, want ErrNotFound", err)
	}
}

func TestPersistenceAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	putInfra(t, s, "i1")
	update(t, s, func(tx Tx) error {
		return errors.Join(
			tx.PutNodeDef(&NodeDefRecord{Name: "app", YAML: "y"}),
			tx.PutInstance(&InstanceRecord{InfraID: "i1", NodeID: "n1", State: StateReady}),
			tx.AddEvent(&Event{InfraID: "i1", Type: "infrastart"}),
			tx.AddEvent(&Event{InfraID: "i1", Type: "infraready"}),
		)
	})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	s = openTest(t, dir)
	view(t, s, func(tx Tx) error {
		if _, err := tx.NodeDef("app"); err != nil {
			t.Errorf("node definition lost: %v", err)
		}
		if r, err := tx.Instance("i1", "n1"); err != nil || r.State != StateReady {
			t.Errorf("instance lost: %v %v", r, err)
		}
		return nil
	})
	var e Event
	update(t, s, func(tx Tx) error {
		e = Event{InfraID: "i1", Type: "nodecreated"}
		return tx.AddEvent(&e)
	})
	if e.Seq != 3 {
		t.Errorf("first event after reopen got seq %d, want 3 (sequences continue)", e.Seq)
	}
}

func TestUpdateRollsBackOnError(t *testing.T) {
	s := openTest(t, t.TempDir())
	putInfra(t, s, "i1")
	boom := errors.New("boom")
	err := s.Update(context.Background(), func(tx Tx) error {
		if err := tx.PutInstance(&InstanceRecord{InfraID: "i1", NodeID: "n1"}); err != nil {
			return err
		}
		if err := tx.AddEvent(&Event{InfraID: "i1", Type: "nodecreating"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want the function's error", err)
	}
	view(t, s, func(tx Tx) error {
		in, _ := tx.Instances("i1")
		ev, _ := tx.Events("i1", 0, 0)
		if len(in) != 0 || len(ev) != 0 {
			t.Errorf("failed Update left %d instances and %d events", len(in), len(ev))
		}
		return nil
	})
}

func TestContextDone(t *testing.T) {
	s := openTest(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	for name, run := range map[string]func(context.Context, func(Tx) error) error{"View": s.View, "Update": s.Update} {
		err := run(ctx, func(Tx) error { called = true; return nil })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v, want context.Canceled", name, err)
		}
	}
	if called {
		t.Error("a transaction function ran although its context was cancelled")
	}
}

func TestConcurrentUpdates(t *testing.T) {
	s := openTest(t, t.TempDir())
	putInfra(t, s, "i1")
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				err := s.Update(context.Background(), func(tx Tx) error {
					if err := tx.AddEvent(&Event{InfraID: "i1", Type: "nodecreated"}); err != nil {
						return err
					}
					return tx.PutInstance(&InstanceRecord{InfraID: "i1", NodeID: fmt.Sprintf("w%d-%d", w, i)})
				})
				if err != nil {
					errs <- err
					return
				}
				if err := s.View(context.Background(), func(tx Tx) error { _, err := tx.Instances("i1"); return err }); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent update: %v", err)
	}
	view(t, s, func(tx Tx) error {
		ev, _ := tx.Events("i1", 0, 0)
		in, _ := tx.Instances("i1")
		if len(ev) != workers*each || len(in) != workers*each {
			t.Fatalf("got %d events and %d instances, want %d of each", len(ev), len(in), workers*each)
		}
		for i, e := range ev {
			if e.Seq != uint64(i+1) {
				t.Fatalf("event %d has seq %d: sequences must be gap-free and increasing", i, e.Seq)
			}
		}
		return nil
	})
}

// lateCancel is a context that is live at its first Err call and cancelled from then on: the
// cancellation arrives while Update waits for the writer lock.
type lateCancel struct {
	context.Context
	calls atomic.Int32
}

func (c *lateCancel) Err() error {
	if c.calls.Add(1) > 1 {
		return context.Canceled
	}
	return nil
}

func TestUpdateCancelledWhileWaitingForWriter(t *testing.T) {
	s := openTest(t, t.TempDir())
	putInfra(t, s, "i1")
	ran := false
	err := s.Update(&lateCancel{Context: context.Background()}, func(tx Tx) error {
		ran = true
		return tx.AddEvent(&Event{InfraID: "i1", Type: "late"})
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Update = %v, want context.Canceled", err)
	}
	if ran {
		t.Error("the function ran although the context was cancelled before the transaction began")
	}
}
