package readyset

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Set is one immutable picture of every infrastructure's ready instances. A Set and
// everything reachable from it must not be modified; the Tracker replaces it as a whole.
type Set struct {
	// Version increases with every Set a Tracker publishes.
	Version uint64
	infras  map[string]*Infra
}

// Infra is one infrastructure as a Set sees it.
type Infra struct {
	ID string
	// Name is the descriptor's infra_name; it may be empty and need not be unique.
	Name    string
	Created time.Time
	// Nodes holds every node the infrastructure names (in its descriptor, its targets or
	// its instances), keyed by node name, including nodes without ready instances.
	Nodes map[string]*Node
	// descriptor is the stored descriptor text the variables come from, so that two reads
	// compare equal exactly when nothing a reader sees changed.
	descriptor string
}

// Node is one node of an infrastructure.
type Node struct {
	Name string
	// Variables are the node's variables merged over the infrastructure's; nil when the
	// stored descriptor could not be read.
	Variables map[string]any
	// Ready lists the node's ready instances sorted by node id.
	Ready []Instance
}

// Instance is one ready instance.
type Instance struct {
	NodeID string
	// Address is the primary address: the first of Addresses, or the private address when
	// the instance reports no other (the same rule as the registry's endpoints).
	Address string
	// Addresses lists every address the instance reports, most public first, followed by
	// its private address when that is not already listed.
	Addresses []string
}

// Infra returns the infrastructure with id, or nil.
func (s *Set) Infra(id string) *Infra {
	if s == nil {
		return nil
	}
	return s.infras[id]
}

// Infras returns every infrastructure sorted by id.
func (s *Set) Infras() []*Infra {
	if s == nil {
		return nil
	}
	out := slices.Collect(maps.Values(s.infras))
	slices.SortFunc(out, func(a, b *Infra) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Len returns the number of infrastructures.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.infras)
}

// Newer reports whether a should win over b when both carry the same name: the most recently
// created one wins, and of two created at the same instant the one with the greater id, so
// that the choice never depends on map order.
func Newer(a, b *Infra) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.After(b.Created)
	}
	return a.ID > b.ID
}

// NodeNames returns the infrastructure's node names, sorted.
func (in *Infra) NodeNames() []string {
	return slices.Sorted(maps.Keys(in.Nodes))
}

// Port returns the first of keys that the node's variables set to a valid port (1 to 65535,
// written as a YAML integer or a string), or def when none does.
func (n *Node) Port(def int, keys ...string) int {
	for _, k := range keys {
		if p, ok := portOf(n.Variables[k]); ok {
			return p
		}
	}
	return def
}

// portOf accepts a port written as a YAML integer or string.
func portOf(v any) (int, bool) {
	var p int
	switch x := v.(type) {
	case int:
		p = x
	case int64:
		p = int(x)
	case uint64:
		if x > 65535 {
			return 0, false
		}
		p = int(x)
	case float64:
		if x != float64(int(x)) {
			return 0, false
		}
		p = int(x)
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil {
			return 0, false
		}
		p = n
	default:
		return 0, false
	}
	if p < 1 || p > 65535 {
		return 0, false
	}
	return p, true
}
