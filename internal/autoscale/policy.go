package autoscale

import (
	"fmt"
	"time"
)

// Alert kinds of the seed's label contract (label "alert").
const (
	KindOverloaded  = "overloaded"
	KindUnderloaded = "underloaded"
)

// Directions of a decision.
const (
	DirOut  = "out"
	DirIn   = "in"
	DirNone = "none"
)

// Outcomes of a decision. OutcomeScaled is the only one that changes anything.
const (
	OutcomeScaled          = "scaled"
	OutcomeAtMax           = "at_max"
	OutcomeAtMin           = "at_min"
	OutcomeCooldown        = "cooldown"
	OutcomePending         = "pending"
	OutcomeConflict        = "conflict"
	OutcomeStale           = "stale"
	OutcomeResolved        = "resolved"
	OutcomeWithinTolerance = "within_tolerance"
	OutcomeStabilizing     = "stabilizing"
	OutcomeRejected        = "rejected"
	OutcomeError           = "error"
)

// Defaults for the cooldowns, chosen from the systems users compare us with:
//   - scale-out: Kubernetes' HPA scales up with no stabilization window, at most once per
//     15 s sync period; skyfleet in addition never steps while the previous step's
//     instances are pending, so a short cooldown after they are ready is safe.
//   - scale-in: the HPA's scale-down stabilization window, AWS Auto Scaling's default
//     cooldown and the Nomad Autoscaler's default cooldown are all 5 minutes.
const (
	DefaultScaleOutCooldown = 15 * time.Second
	DefaultScaleInCooldown  = 5 * time.Minute
)

// NodeState is what the policy needs to know about a node when it decides.
type NodeState struct {
	Min, Max int
	// Target is the node's current target count; Ready counts its ready instances and
	// Pending those created but not ready yet plus those the target asks for that have not
	// been started (so a step is pending from the moment it is requested).
	Target  int
	Ready   int
	Pending int
	// Step is the node's default step (scaling.step), 0 meaning 1.
	Step int
	// Cooldowns from the node's scaling section; zero means the package default.
	ScaleOutCooldown time.Duration
	ScaleInCooldown  time.Duration
}

func (n NodeState) step() int {
	if n.Step > 0 {
		return n.Step
	}
	return 1
}

func (n NodeState) outCooldown() time.Duration {
	if n.ScaleOutCooldown > 0 {
		return n.ScaleOutCooldown
	}
	return DefaultScaleOutCooldown
}

func (n NodeState) inCooldown() time.Duration {
	if n.ScaleInCooldown > 0 {
		return n.ScaleInCooldown
	}
	return DefaultScaleInCooldown
}

// Input is one evaluation of the alert policy for one node.
type Input struct {
	Now  time.Time
	Node NodeState
	// Overloaded and Underloaded are the active (firing, not stale) alerts of each kind, nil
	// when none is active.
	Overloaded  *Alert
	Underloaded *Alert
	// LastOut and LastIn are when the last applied scale-out and scale-in happened.
	LastOut time.Time
	LastIn  time.Time
}

// Verdict is the policy's answer: which way, by how much, and why.
type Verdict struct {
	Direction string
	Outcome   string
	// Delta is the signed change of the target (0 unless Outcome is OutcomeScaled).
	Delta  int
	Reason string
	// Alert is the alert that caused the verdict (nil when none did).
	Alert *Alert
	// cause describes a metric-driven verdict (target tracking).
	cause map[string]any
}

// Decide applies the alert policy. It is a pure function of its input.
//
// Rules, in order: opposite alerts at once resolve to no action; a firing alert steps the
// node by its step (the alert's step label, else scaling.step, else 1) clamped to min..max;
// no step while instances of the node are pending; no step before the direction's cooldown
// has passed since the last step in that direction (scale-in also waits a scale-in cooldown
// after a scale-out, so that a freshly grown cluster is not shrunk at once).
func Decide(in Input) Verdict {
	n := in.Node
	switch {
	case in.Overloaded != nil && in.Underloaded != nil:
		return Verdict{Direction: DirNone, Outcome: OutcomeConflict, Alert: in.Overloaded,
			Reason: fmt.Sprintf("no: %q and %q are firing at once; doing nothing", in.Overloaded.Name, in.Underloaded.Name)}
	case in.Overloaded != nil:
		a := in.Overloaded
		if n.Target >= n.Max {
			return Verdict{Direction: DirOut, Outcome: OutcomeAtMax, Alert: a,
				Reason: fmt.Sprintf("no: at max (%d)", n.Max)}
		}
		if n.Pending > 0 {
			return Verdict{Direction: DirOut, Outcome: OutcomePending, Alert: a,
				Reason: fmt.Sprintf("no: %s still pending", plural(n.Pending, "instance"))}
		}
		if left := cooldownLeft(in.Now, in.LastOut, n.outCooldown()); left > 0 {
			return Verdict{Direction: DirOut, Outcome: OutcomeCooldown, Alert: a,
				Reason: fmt.Sprintf("no: scale-out cooldown %s left", roundDur(left))}
		}
		step := stepOf(a, n)
		to := min(n.Target+step, n.Max)
		reason := fmt.Sprintf("yes: %q firing; target %d -> %d", a.Name, n.Target, to)
		if to-n.Target < step {
			reason += fmt.Sprintf(" (step %d clamped to max %d)", step, n.Max)
		}
		return Verdict{Direction: DirOut, Outcome: OutcomeScaled, Delta: to - n.Target, Alert: a, Reason: reason}
	case in.Underloaded != nil:
		a := in.Underloaded
		if n.Target <= n.Min {
			return Verdict{Direction: DirIn, Outcome: OutcomeAtMin, Alert: a,
				Reason: fmt.Sprintf("no: at min (%d)", n.Min)}
		}
		if n.Pending > 0 {
			return Verdict{Direction: DirIn, Outcome: OutcomePending, Alert: a,
				Reason: fmt.Sprintf("no: %s still pending", plural(n.Pending, "instance"))}
		}
		last := in.LastIn
		if in.LastOut.After(last) {
			last = in.LastOut
		}
		if left := cooldownLeft(in.Now, last, n.inCooldown()); left > 0 {
			return Verdict{Direction: DirIn, Outcome: OutcomeCooldown, Alert: a,
				Reason: fmt.Sprintf("no: scale-in cooldown %s left", roundDur(left))}
		}
		step := stepOf(a, n)
		to := max(n.Target-step, n.Min)
		reason := fmt.Sprintf("yes: %q firing; target %d -> %d", a.Name, n.Target, to)
		if n.Target-to < step {
			reason += fmt.Sprintf(" (step %d clamped to min %d)", step, n.Min)
		}
		return Verdict{Direction: DirIn, Outcome: OutcomeScaled, Delta: to - n.Target, Alert: a, Reason: reason}
	}
	return Verdict{Direction: DirNone, Outcome: OutcomeResolved, Reason: "no alert firing"}
}

func stepOf(a *Alert, n NodeState) int {
	if a != nil && a.Step > 0 {
		return a.Step
	}
	return n.step()
}

func cooldownLeft(now, last time.Time, cooldown time.Duration) time.Duration {
	if last.IsZero() {
		return 0
	}
	return last.Add(cooldown).Sub(now)
}

// roundDur rounds up to whole seconds so that "14s left" never reads "0s left".
func roundDur(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return ((d + time.Second - 1) / time.Second) * time.Second
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
