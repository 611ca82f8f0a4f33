package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/store"
)

func TestDecideScale(t *testing.T) {
	l := limits{min: 1, max: 5}
	tests := []struct {
		name        string
		kind        store.ScalingKind
		count       int
		victim      string
		victimKnown bool
		from        int
		want        scaleDecision
	}{
		{"scaleup one", store.ScaleUp, 1, "", false, 2, scaleDecision{applied: true, from: 2, to: 3}},
		{"scaleup zero count means one", store.ScaleUp, 0, "", false, 2, scaleDecision{applied: true, from: 2, to: 3}},
		{"scaleup several", store.ScaleUp, 2, "", false, 2, scaleDecision{applied: true, from: 2, to: 4}},
		{"scaleup clamped at max", store.ScaleUp, 3, "", false, 4, scaleDecision{applied: true, from: 4, to: 5, reason: "maximum count reached (5)"}},
		{"scaleup at max ignored", store.ScaleUp, 1, "", false, 5, scaleDecision{from: 5, to: 5, reason: "maximum count reached (5)"}},
		{"scaledown one", store.ScaleDown, 0, "", false, 3, scaleDecision{applied: true, from: 3, to: 2}},
		{"scaledown several clamped at min", store.ScaleDown, 5, "", false, 3, scaleDecision{applied: true, from: 3, to: 1, reason: "minimum count reached (1)"}},
		{"scaledown at min ignored", store.ScaleDown, 1, "", false, 1, scaleDecision{from: 1, to: 1, reason: "minimum count reached (1)"}},
		{"scaledown named victim", store.ScaleDown, 0, "10.0.0.1", true, 3, scaleDecision{applied: true, from: 3, to: 2}},
		{"scaledown unknown victim ignored", store.ScaleDown, 0, "nope", false, 3, scaleDecision{from: 3, to: 3, reason: `no instance with node id or address "nope"`}},
		{"scaledown named victim at min ignored", store.ScaleDown, 0, "x", true, 1, scaleDecision{from: 1, to: 1, reason: "minimum count reached (1)"}},
		{"scaleto within limits", store.ScaleTo, 4, "", false, 2, scaleDecision{applied: true, from: 2, to: 4}},
		{"scaleto above max clamped", store.ScaleTo, 9, "", false, 2, scaleDecision{applied: true, from: 2, to: 5, reason: "maximum count reached (5)"}},
		{"scaleto below min clamped", store.ScaleTo, 0, "", false, 3, scaleDecision{applied: true, from: 3, to: 1, reason: "minimum count reached (1)"}},
		{"scaleto same target ignored", store.ScaleTo, 3, "", false, 3, scaleDecision{from: 3, to: 3, reason: "target is already 3"}},
		{"scaleto above max while at max ignored", store.ScaleTo, 7, "", false, 5, scaleDecision{from: 5, to: 5, reason: "maximum count reached (5)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decideScale(tt.kind, tt.count, tt.victim, tt.victimKnown, tt.from, l)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("decideScale = %+v, want %+v", got, tt.want)
			}
		})
	}
	if _, err := decideScale("sideways", 1, "", false, 1, l); err == nil {
		t.Error("unknown kind accepted")
	}
}

func TestCurrentTarget(t *testing.T) {
	l := limits{min: 2, max: 4}
	tests := []struct {
		name    string
		targets map[string]int
		want    int
	}{
		{"absent means min (initial deployment)", nil, 2},
		{"stored within limits", map[string]int{"app": 3}, 3},
		{"stored above max (descriptor lowered max)", map[string]int{"app": 9}, 4},
		{"stored below min", map[string]int{"app": 0}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := currentTarget(tt.targets, "app", l); got != tt.want {
				t.Errorf("currentTarget = %d, want %d", got, tt.want)
			}
		})
	}
}

func rec(node, id string, state store.InstanceState, created int, addrs ...string) *store.InstanceRecord {
	return &store.InstanceRecord{
		InfraID: "i", Node: node, NodeID: id, State: state, Addresses: addrs,
		Created: time.Unix(int64(created), 0),
	}
}

func TestFindVictim(t *testing.T) {
	instances := []*store.InstanceRecord{
		rec("app", "a1", store.StateReady, 1, "10.0.0.1"),
		rec("app", "a2", store.StatePending, 2, "10.0.0.2"),
		rec("app", "a3", store.StateDestroying, 3, "10.0.0.3"),
		rec("lb", "l1", store.StateReady, 4, "10.0.0.4"),
	}
	instances[1].PrivateAddress = "192.168.0.2"
	tests := []struct {
		ref  string
		want string
	}{
		{"a1", "a1"},
		{"10.0.0.2", "a2"},
		{"192.168.0.2", "a2"},
		{"a3", ""},       // already on its way out
		{"10.0.0.4", ""}, // another node's
		{"l1", ""},
		{"", ""},
		{"10.0.0.99", ""},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got := findVictim(instances, "app", tt.ref)
			gotID := ""
			if got != nil {
				gotID = got.NodeID
			}
			if gotID != tt.want {
				t.Errorf("findVictim(%q) = %q, want %q", tt.ref, gotID, tt.want)
			}
		})
	}
}

func TestChooseVictimsNewestFirst(t *testing.T) {
	live := []*store.InstanceRecord{
		rec("app", "old", store.StateReady, 1),
		rec("app", "newest", store.StatePending, 9),
		rec("app", "mid", store.StateReady, 5),
	}
	got := chooseVictims(live, 2, nil)
	if len(got) != 2 || got[0].NodeID != "newest" || got[1].NodeID != "mid" {
		t.Errorf("victims = %v, want [newest mid]", ids(got))
	}
	if got := chooseVictims(live, 0, nil); got != nil {
		t.Errorf("chooseVictims(0) = %v", ids(got))
	}
}

func ids(rs []*store.InstanceRecord) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.NodeID
	}
	return out
}

func TestChooseVictimsPrefersPendingThenLeastBusy(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	live := []*store.InstanceRecord{
		{NodeID: "old-busy", State: store.StateReady, Created: base},
		{NodeID: "old-idle", State: store.StateReady, Created: base.Add(time.Minute)},
		{NodeID: "new-busy", State: store.StateReady, Created: base.Add(2 * time.Minute)},
		{NodeID: "booting", State: store.StatePending, Created: base.Add(-time.Hour)},
	}
	active := map[string]int{"old-busy": 9, "old-idle": 0, "new-busy": 4}
	conns := func(r *store.InstanceRecord) (int, bool) { n, ok := active[r.NodeID]; return n, ok }
	if got := ids(chooseVictims(live, 2, conns)); strings.Join(got, ",") != "booting,old-idle" {
		t.Errorf("with connections: %v, want booting then the idle one", got)
	}
	if got := ids(chooseVictims(live, 2, nil)); strings.Join(got, ",") != "booting,new-busy" {
		t.Errorf("without connections: %v, want booting then the newest", got)
	}
}
