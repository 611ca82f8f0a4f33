package engine

import (
	"slices"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/store"
)

func TestMakePlan(t *testing.T) {
	now := time.Unix(1000, 0)
	app := nodeSpec{name: "app", limits: limits{min: 2, max: 4}}
	lb := nodeSpec{name: "lb", limits: limits{min: 1, max: 2}, dependsOn: []string{"app"}}
	drainingApp := app
	drainingApp.drainTimeout = time.Minute
	tests := []struct {
		name      string
		nodes     []nodeSpec
		targets   map[string]int
		instances []*store.InstanceRecord
		check     func(t *testing.T, p plan)
	}{
		{
			name:  "initial deployment creates min of the first level only",
			nodes: []nodeSpec{app, lb},
			check: func(t *testing.T, p plan) {
				if p.create["app"] != 2 || p.create["lb"] != 0 {
					t.Errorf("create = %v, want app:2 only", p.create)
				}
				if p.blocked["lb"] != "app" {
					t.Errorf("blocked = %v, want lb waiting for app", p.blocked)
				}
				if p.ready {
					t.Error("ready with no instances")
				}
			},
		},
		{
			name:  "pending dependee keeps the dependent waiting",
			nodes: []nodeSpec{app, lb},
			instances: []*store.InstanceRecord{
				rec("app", "a1", store.StatePending, 1), rec("app", "a2", store.StateCreating, 2),
			},
			check: func(t *testing.T, p plan) {
				if len(p.create) != 0 || p.blocked["lb"] != "app" {
					t.Errorf("create = %v blocked = %v", p.create, p.blocked)
				}
			},
		},
		{
			name:  "one ready dependee instance releases the dependent",
			nodes: []nodeSpec{app, lb},
			instances: []*store.InstanceRecord{
				rec("app", "a1", store.StateReady, 1), rec("app", "a2", store.StatePending, 2),
			},
			check: func(t *testing.T, p plan) {
				if p.create["lb"] != 1 || len(p.blocked) != 0 {
					t.Errorf("create = %v blocked = %v", p.create, p.blocked)
				}
			},
		},
		{
			name:    "failed instances are replaced and temp_failed ones count",
			nodes:   []nodeSpec{app},
			targets: map[string]int{"app": 3},
			instances: []*store.InstanceRecord{
				rec("app", "a1", store.StateReady, 1), rec("app", "a2", store.StateFailed, 2), rec("app", "a3", store.StateTempFailed, 3),
			},
			check: func(t *testing.T, p plan) {
				if !slices.Equal(ids(p.failed), []string{"a2"}) || p.create["app"] != 1 {
					t.Errorf("failed = %v create = %v", ids(p.failed), p.create)
				}
			},
		},
		{
			name:    "surplus drops instances not yet ready, then the newest; instances being destroyed do not count",
			nodes:   []nodeSpec{app},
			targets: map[string]int{"app": 2},
			instances: []*store.InstanceRecord{
				rec("app", "a1", store.StateReady, 1), rec("app", "a2", store.StateReady, 2),
				rec("app", "a3", store.StatePending, 3), rec("app", "a4", store.StateReady, 4),
				rec("app", "gone", store.StateDestroying, 5),
			},
			check: func(t *testing.T, p plan) {
				var got []string
				for _, v := range p.surplus {
					got = append(got, v.rec.NodeID)
					if v.kind != dropNow {
						t.Errorf("%s drains without drain_timeout", v.rec.NodeID)
					}
				}
				if !slices.Equal(got, []string{"a3", "a4"}) {
					t.Errorf("surplus = %v, want [a3 a4]", got)
				}
				if !p.ready {
					t.Error("not ready although two ready instances remain for a target of 2")
				}
			},
		},
		{
			name:    "ready victims drain when the node has drain_timeout, others go at once",
			nodes:   []nodeSpec{drainingApp},
			targets: map[string]int{"app": 2},
			instances: []*store.InstanceRecord{
				rec("app", "a1", store.StateReady, 1), rec("app", "a2", store.StateReady, 2),
				rec("app", "a3", store.StateReady, 3), rec("app", "a4", store.StateCreating, 4),
			},
			check: func(t *testing.T, p plan) {
				if len(p.surplus) != 2 {
					t.Fatalf("surplus = %d, want 2", len(p.surplus))
				}
				if v := p.surplus[0]; v.rec.NodeID != "a4" || v.kind != dropNow {
					t.Errorf("first victim %s kind %v, want a4 dropped at once", v.rec.NodeID, v.kind)
				}
				if v := p.surplus[1]; v.rec.NodeID != "a3" || v.kind != dropDrain || !v.deadline.Equal(now.Add(time.Minute)) {
					t.Errorf("second victim %s kind %v deadline %v, want a3 draining for 1m", v.rec.NodeID, v.kind, v.deadline)
				}
			},
		},
		{
			name:  "draining instances leave at their deadline",
			nodes: []nodeSpec{drainingApp},
			instances: []*store.InstanceRecord{
				rec("app", "a1", store.StateReady, 1), rec("app", "a2", store.StateReady, 2),
				{NodeID: "early", Node: "app", State: store.StateDraining, DrainDeadline: now.Add(time.Second)},
				{NodeID: "due", Node: "app", State: store.StateDraining, DrainDeadline: now},
			},
			check: func(t *testing.T, p plan) {
				if !slices.Equal(ids(p.drained), []string{"due"}) {
					t.Errorf("drained = %v, want [due]", ids(p.drained))
				}
			},
		},
		{
			name:  "instances of removed nodes are dropped",
			nodes: []nodeSpec{app},
			instances: []*store.InstanceRecord{
				rec("app", "a1", store.StateReady, 1), rec("app", "a2", store.StateReady, 2),
				rec("old", "o1", store.StateReady, 3), rec("old", "o2", store.StateDestroying, 4),
			},
			check: func(t *testing.T, p plan) {
				if !slices.Equal(ids(p.removed), []string{"o1"}) {
					t.Errorf("removed = %v, want [o1]", ids(p.removed))
				}
			},
		},
		{
			name:    "ready needs every node at its target of ready instances",
			nodes:   []nodeSpec{app, lb},
			targets: map[string]int{"lb": 2},
			instances: []*store.InstanceRecord{
				rec("app", "a1", store.StateReady, 1), rec("app", "a2", store.StateReady, 2),
				rec("lb", "l1", store.StateReady, 3), rec("lb", "l2", store.StatePending, 4),
			},
			check: func(t *testing.T, p plan) {
				if p.ready {
					t.Error("ready while lb has a pending instance")
				}
				if st := p.status["lb"]; st.target != 2 || st.live != 2 || st.ready != 1 {
					t.Errorf("lb status = %+v", st)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, makePlan(planInput{nodes: tt.nodes, targets: tt.targets, instances: tt.instances, now: now}))
		})
	}
}

func TestMakePlanDrainDoneEndsDrainEarly(t *testing.T) {
	now := time.Unix(1000, 0)
	in := planInput{
		nodes:     []nodeSpec{{name: "app", limits: limits{min: 0, max: 3}, drainTimeout: time.Hour}},
		instances: []*store.InstanceRecord{{NodeID: "d", Node: "app", State: store.StateDraining, DrainDeadline: now.Add(time.Hour)}},
		now:       now,
		drainDone: func(r *store.InstanceRecord) bool { return r.NodeID == "d" },
	}
	if p := makePlan(in); !slices.Equal(ids(p.drained), []string{"d"}) {
		t.Errorf("drained = %v, want [d]", ids(p.drained))
	}
}
