package engine

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/skyfleet/skyfleet/internal/store"
)

// limits are a node's effective scaling limits (descriptor.Scaling with Occopus' rules
// applied: min ≥ 0, max ≥ min).
type limits struct{ min, max int }

// clamp returns n limited to l.min..l.max.
func (l limits) clamp(n int) int {
	return max(l.min, min(n, l.max))
}

// currentTarget is Occopus' calc_target starting point: the stored target (absent means
// "min", which makes the initial deployment min instances) clamped to the limits.
func currentTarget(targets map[string]int, node string, l limits) int {
	t, ok := targets[node]
	if !ok {
		return l.min
	}
	return l.clamp(t)
}

// scaleDecision is the outcome of one scaling request against a node's target.
type scaleDecision struct {
	applied bool
	from    int
	to      int
	// reason says why the request was ignored or clamped; empty when fully applied.
	reason string
}

// decideScale applies Occopus' scaling arithmetic (§6.5) to one request at once:
//   - scaleup adds count (1 when count ≤ 0) and stops at max; the excess is ignored with
//     the reason "maximum count reached (max)";
//   - scaledown removes count (1 when count ≤ 0) and stops at min ("minimum count reached");
//     a named victim removes exactly that one instance, or nothing when the victim is
//     unknown (victimKnown false) or the node is at min;
//   - scaleto sets the target, clamped to min..max with the reason of the clamp.
//
// A request that changes nothing is not applied.
func decideScale(kind store.ScalingKind, count int, victim string, victimKnown bool, from int, l limits) (scaleDecision, error) {
	d := scaleDecision{from: from, to: from}
	maxReason := fmt.Sprintf("maximum count reached (%d)", l.max)
	minReason := fmt.Sprintf("minimum count reached (%d)", l.min)
	switch kind {
	case store.ScaleUp:
		if count <= 0 {
			count = 1
		}
		want := from + count
		d.to = min(want, l.max)
		if want > l.max {
			d.reason = maxReason
		}
	case store.ScaleDown:
		if victim != "" {
			switch {
			case !victimKnown:
				d.reason = fmt.Sprintf("no instance with node id or address %q", victim)
				return d, nil
			case from-1 < l.min:
				d.reason = minReason
				return d, nil
			}
			d.to = from - 1
			d.applied = true
			return d, nil
		}
		if count <= 0 {
			count = 1
		}
		want := from - count
		d.to = max(want, l.min)
		if want < l.min {
			d.reason = minReason
		}
	case store.ScaleTo:
		d.to = l.clamp(count)
		switch {
		case count > l.max:
			d.reason = maxReason
		case count < l.min:
			d.reason = minReason
		case d.to == from:
			d.reason = fmt.Sprintf("target is already %d", from)
		}
	default:
		return d, fmt.Errorf("scale: unknown request kind %q (allowed: scaleup, scaledown, scaleto)", kind)
	}
	d.applied = d.to != d.from
	if !d.applied && d.reason == "" {
		d.reason = fmt.Sprintf("target is already %d", from)
	}
	return d, nil
}

// live reports whether an instance counts as existing for the node's target: everything that
// is or will be running and is not on its way out. temp_failed counts, as in Occopus.
func live(s store.InstanceState) bool {
	switch s {
	case store.StateCreating, store.StatePending, store.StateReady, store.StateTempFailed:
		return true
	}
	return false
}

// findVictim returns the live instance of node whose node id is ref, or which has ref as one
// of its addresses, or nil. Occopus maps a value with more than two dots to an address; we
// accept either form for both, since a node id never looks like an address.
func findVictim(instances []*store.InstanceRecord, node, ref string) *store.InstanceRecord {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return nil
	}
	for _, r := range instances {
		if r.Node == node && live(r.State) && r.NodeID == ref {
			return r
		}
	}
	want, err := netip.ParseAddr(ref)
	for _, r := range instances {
		if r.Node != node || !live(r.State) {
			continue
		}
		for _, a := range instanceAddresses(r) {
			if a == ref {
				return r
			}
			if err == nil {
				if got, perr := netip.ParseAddr(a); perr == nil && got == want {
					return r
				}
			}
		}
	}
	return nil
}

// instanceAddresses lists every address a user may name an instance by.
func instanceAddresses(r *store.InstanceRecord) []string {
	out := slices.Clone(r.Addresses)
	if r.PrivateAddress != "" {
		out = append(out, r.PrivateAddress)
	}
	switch ra := r.ResourceAddress.(type) {
	case string:
		out = append(out, ra)
	case []string:
		out = append(out, ra...)
	case []any:
		for _, v := range ra {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// chooseVictims returns the n instances to drop from live. Instances not yet ready go first
// (they serve nobody); then, when connections reports the load balancers' active connections,
// the least busy; then the newest (Occopus' "simple" downscale strategy: the youngest go).
// connections may be nil.
func chooseVictims(liveInstances []*store.InstanceRecord, n int, connections func(r *store.InstanceRecord) (int, bool)) []*store.InstanceRecord {
	if n <= 0 {
		return nil
	}
	type cand struct {
		rec    *store.InstanceRecord
		active int
		known  bool
	}
	cands := make([]cand, len(liveInstances))
	for i, r := range liveInstances {
		cands[i].rec = r
		if connections != nil && r.State == store.StateReady {
			cands[i].active, cands[i].known = connections(r)
		}
	}
	slices.SortStableFunc(cands, func(a, b cand) int {
		if ar, br := a.rec.State == store.StateReady, b.rec.State == store.StateReady; ar != br {
			if br {
				return -1
			}
			return 1
		}
		if a.known && b.known && a.active != b.active {
			return a.active - b.active
		}
		if c := b.rec.Created.Compare(a.rec.Created); c != 0 {
			return c
		}
		return strings.Compare(b.rec.NodeID, a.rec.NodeID)
	})
	out := make([]*store.InstanceRecord, 0, min(n, len(cands)))
	for _, c := range cands[:min(n, len(cands))] {
		out = append(out, c.rec)
	}
	return out
}
