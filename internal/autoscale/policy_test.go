package autoscale

import (
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/descriptor"
)

var t0 = time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)

func over(step int) *Alert {
	return &Alert{Name: "app_overloaded", Kind: KindOverloaded, InfraID: "i", Node: "app", Step: step}
}

func under(step int) *Alert {
	return &Alert{Name: "app_underloaded", Kind: KindUnderloaded, InfraID: "i", Node: "app", Step: step}
}

func TestDecide(t *testing.T) {
	base := NodeState{Min: 1, Max: 10, Target: 3, Ready: 3}
	tests := []struct {
		name       string
		in         Input
		outcome    string
		dir        string
		delta      int
		wantReason string
	}{
		{"overloaded steps out", Input{Now: t0, Node: base, Overloaded: over(0)}, OutcomeScaled, DirOut, 1, `yes: "app_overloaded" firing; target 3 -> 4`},
		{"step label", Input{Now: t0, Node: base, Overloaded: over(3)}, OutcomeScaled, DirOut, 3, `yes: "app_overloaded" firing; target 3 -> 6`},
		{"node step", Input{Now: t0, Node: NodeState{Min: 1, Max: 10, Target: 3, Step: 2}, Overloaded: over(0)}, OutcomeScaled, DirOut, 2, `yes: "app_overloaded" firing; target 3 -> 5`},
		{"clamped to max", Input{Now: t0, Node: NodeState{Min: 1, Max: 4, Target: 3}, Overloaded: over(3)}, OutcomeScaled, DirOut, 1, `yes: "app_overloaded" firing; target 3 -> 4 (step 3 clamped to max 4)`},
		{"at max", Input{Now: t0, Node: NodeState{Min: 1, Max: 3, Target: 3}, Overloaded: over(0)}, OutcomeAtMax, DirOut, 0, "no: at max (3)"},
		{"pending blocks", Input{Now: t0, Node: NodeState{Min: 1, Max: 10, Target: 4, Ready: 2, Pending: 2}, Overloaded: over(0)}, OutcomePending, DirOut, 0, "no: 2 instances still pending"},
		{"one pending", Input{Now: t0, Node: NodeState{Min: 1, Max: 10, Target: 4, Ready: 3, Pending: 1}, Overloaded: over(0)}, OutcomePending, DirOut, 0, "no: 1 instance still pending"},
		{"out cooldown", Input{Now: t0, Node: base, Overloaded: over(0), LastOut: t0.Add(-time.Second)}, OutcomeCooldown, DirOut, 0, "no: scale-out cooldown 14s left"},
		{"out cooldown over", Input{Now: t0, Node: base, Overloaded: over(0), LastOut: t0.Add(-DefaultScaleOutCooldown)}, OutcomeScaled, DirOut, 1, `yes: "app_overloaded" firing; target 3 -> 4`},
		{"node cooldown", Input{Now: t0, Node: NodeState{Min: 1, Max: 10, Target: 3, ScaleOutCooldown: time.Minute}, Overloaded: over(0), LastOut: t0.Add(-30 * time.Second)}, OutcomeCooldown, DirOut, 0, "no: scale-out cooldown 30s left"},
		{"underloaded steps in", Input{Now: t0, Node: base, Underloaded: under(0)}, OutcomeScaled, DirIn, -1, `yes: "app_underloaded" firing; target 3 -> 2`},
		{"in clamped to min", Input{Now: t0, Node: NodeState{Min: 2, Max: 10, Target: 3}, Underloaded: under(5)}, OutcomeScaled, DirIn, -1, `yes: "app_underloaded" firing; target 3 -> 2 (step 5 clamped to min 2)`},
		{"at min", Input{Now: t0, Node: NodeState{Min: 1, Max: 10, Target: 1}, Underloaded: under(0)}, OutcomeAtMin, DirIn, 0, "no: at min (1)"},
		{"in waits after out", Input{Now: t0, Node: base, Underloaded: under(0), LastOut: t0.Add(-time.Minute)}, OutcomeCooldown, DirIn, 0, "no: scale-in cooldown 4m0s left"},
		{"in cooldown", Input{Now: t0, Node: base, Underloaded: under(0), LastIn: t0.Add(-4*time.Minute - 46*time.Second)}, OutcomeCooldown, DirIn, 0, "no: scale-in cooldown 14s left"},
		{"in pending", Input{Now: t0, Node: NodeState{Min: 1, Max: 10, Target: 3, Pending: 1}, Underloaded: under(0)}, OutcomePending, DirIn, 0, "no: 1 instance still pending"},
		{"opposite alerts", Input{Now: t0, Node: base, Overloaded: over(0), Underloaded: under(0)}, OutcomeConflict, DirNone, 0, `no: "app_overloaded" and "app_underloaded" are firing at once; doing nothing`},
		{"nothing firing", Input{Now: t0, Node: base}, OutcomeResolved, DirNone, 0, "no alert firing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Decide(tt.in)
			if v.Outcome != tt.outcome || v.Direction != tt.dir || v.Delta != tt.delta || v.Reason != tt.wantReason {
				t.Errorf("Decide = {%s %s %d %q}, want {%s %s %d %q}", v.Direction, v.Outcome, v.Delta, v.Reason, tt.dir, tt.outcome, tt.delta, tt.wantReason)
			}
		})
	}
}

func TestDecideTarget(t *testing.T) {
	pol := descriptor.TargetTracking{Query: "avg(cpu)", Value: 50}
	tests := []struct {
		name     string
		node     NodeState
		pol      descriptor.TargetTracking
		measured float64
		recent   []int
		outcome  string
		delta    int
	}{
		{"double load doubles", NodeState{Min: 1, Max: 10, Target: 2}, pol, 100, nil, OutcomeScaled, 2},
		{"within tolerance", NodeState{Min: 1, Max: 10, Target: 2}, pol, 54, nil, OutcomeWithinTolerance, 0},
		{"max step", NodeState{Min: 1, Max: 10, Target: 2}, descriptor.TargetTracking{Query: "q", Value: 50, MaxStep: 1}, 200, nil, OutcomeScaled, 1},
		{"clamp max", NodeState{Min: 1, Max: 3, Target: 2}, pol, 200, nil, OutcomeScaled, 1},
		{"at max", NodeState{Min: 1, Max: 2, Target: 2}, pol, 200, nil, OutcomeAtMax, 0},
		{"scale in", NodeState{Min: 1, Max: 10, Target: 4}, pol, 10, nil, OutcomeScaled, -3},
		{"stabilized by recent higher", NodeState{Min: 1, Max: 10, Target: 4}, pol, 10, []int{4}, OutcomeStabilizing, 0},
		{"stabilized partially", NodeState{Min: 1, Max: 10, Target: 4}, pol, 10, []int{3, 2}, OutcomeScaled, -1},
		{"at min", NodeState{Min: 1, Max: 10, Target: 1}, pol, 10, nil, OutcomeAtMin, 0},
		{"pending", NodeState{Min: 1, Max: 10, Target: 3, Pending: 1}, pol, 100, nil, OutcomePending, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _ := DecideTarget(TargetInput{Now: t0, Node: tt.node, Policy: tt.pol, Measured: tt.measured, Recent: tt.recent})
			if v.Outcome != tt.outcome || v.Delta != tt.delta {
				t.Errorf("DecideTarget = %s %+d (%s), want %s %+d", v.Outcome, v.Delta, v.Reason, tt.outcome, tt.delta)
			}
		})
	}
}
