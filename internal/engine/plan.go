package engine

import (
	"time"

	"github.com/skyfleet/skyfleet/internal/store"
)

// nodeSpec is what planning needs to know about one described node.
type nodeSpec struct {
	name         string
	limits       limits
	dependsOn    []string
	drainTimeout time.Duration
}

// planInput is one pass's view of desired and actual state.
type planInput struct {
	// nodes in topological order (dependees before dependents).
	nodes     []nodeSpec
	targets   map[string]int
	instances []*store.InstanceRecord
	now       time.Time
	// drainDone reports whether a draining instance has no connections left (nil: wait for
	// the deadline).
	drainDone func(r *store.InstanceRecord) bool
	// connections reports a ready instance's active connections as the load balancers see
	// them, for the choice of scale-in victims (nil: newest first).
	connections func(r *store.InstanceRecord) (int, bool)
}

// dropKind says how a surplus instance leaves.
type dropKind int

const (
	dropNow   dropKind = iota // straight to destroying
	dropDrain                 // draining first, destroyed at the deadline
)

// victim is an instance chosen to leave.
type victim struct {
	rec      *store.InstanceRecord
	kind     dropKind
	deadline time.Time
}

// nodeStatus is one node's counts after planning.
type nodeStatus struct {
	target int
	live   int
	ready  int
}

// plan is what one pass will do. Planning is a pure function of planInput so that the rules
// (clamps, replacement, victim choice, dependency gating) are tested without a cloud.
type plan struct {
	// removed are live instances of nodes no longer in the descriptor.
	removed []*store.InstanceRecord
	// failed instances are archived, destroyed and replaced.
	failed []*store.InstanceRecord
	// surplus are victims of a target below the live count.
	surplus []victim
	// drained are draining instances whose deadline passed or whose connections ended.
	drained []*store.InstanceRecord
	// create is the number of new instances per node.
	create map[string]int
	// blocked names, per node that is missing instances, a dependee without a ready instance.
	blocked map[string]string
	status  map[string]nodeStatus
	// ready is true when every node has exactly its target of ready instances.
	ready bool
}

// makePlan computes the pass's actions.
func makePlan(in planInput) plan {
	p := plan{create: map[string]int{}, blocked: map[string]string{}, status: map[string]nodeStatus{}}
	described := make(map[string]nodeSpec, len(in.nodes))
	for _, n := range in.nodes {
		described[n.name] = n
	}
	liveByNode := map[string][]*store.InstanceRecord{}
	readyByNode := map[string]int{}
	for _, r := range in.instances {
		_, ok := described[r.Node]
		switch {
		case !ok:
			if live(r.State) || r.State == store.StateDraining || r.State == store.StateFailed {
				p.removed = append(p.removed, r)
			}
		case r.State == store.StateFailed:
			p.failed = append(p.failed, r)
		case r.State == store.StateDraining:
			if !in.now.Before(r.DrainDeadline) || (in.drainDone != nil && in.drainDone(r)) {
				p.drained = append(p.drained, r)
			}
		case live(r.State):
			liveByNode[r.Node] = append(liveByNode[r.Node], r)
			if r.State == store.StateReady {
				readyByNode[r.Node]++
			}
		}
	}
	p.ready = true
	for _, n := range in.nodes {
		target := currentTarget(in.targets, n.name, n.limits)
		liveN := liveByNode[n.name]
		st := nodeStatus{target: target, live: len(liveN), ready: readyByNode[n.name]}
		switch {
		case len(liveN) > target:
			for _, v := range chooseVictims(liveN, len(liveN)-target, in.connections) {
				if n.drainTimeout > 0 && v.State == store.StateReady {
					p.surplus = append(p.surplus, victim{rec: v, kind: dropDrain, deadline: in.now.Add(n.drainTimeout)})
				} else {
					p.surplus = append(p.surplus, victim{rec: v, kind: dropNow})
				}
				if v.State == store.StateReady {
					st.ready--
				}
			}
			st.live = target
		case len(liveN) < target:
			if dep := missingDependee(n, readyByNode); dep != "" {
				p.blocked[n.name] = dep
			} else {
				p.create[n.name] = target - len(liveN)
			}
		}
		p.status[n.name] = st
		if st.ready != target || st.live != target {
			p.ready = false
		}
	}
	return p
}

// missingDependee returns the first node n depends on that has no ready instance, or "".
func missingDependee(n nodeSpec, readyByNode map[string]int) string {
	for _, d := range n.dependsOn {
		if readyByNode[d] == 0 {
			return d
		}
	}
	return ""
}
