package descriptor

import (
	"fmt"
	"time"
)

// Pos is a position in a source file, 1-based.
type Pos struct {
	File string
	Line int
	Col  int
}

// String formats the position as "file:line:col". Parts that are unknown are left out:
// a zero Col gives "file:line" (YAML syntax errors carry no column), and a zero Line gives
// just the file.
func (p Pos) String() string {
	var s string
	switch {
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		s = fmt.Sprintf("%d", p.Line)
	default:
		s = fmt.Sprintf("%d:%d", p.Line, p.Col)
	}
	if p.File == "" {
		return s
	}
	return p.File + ":" + s
}

// Infra is a compiled, validated infrastructure descriptor.
type Infra struct {
	// UserID and Name are the descriptor's user_id and infra_name.
	UserID string
	Name   string
	// Nodes in descriptor order.
	Nodes []*Node
	// Variables are the infrastructure-level variables (node variables are merged over them
	// into each Node's Variables).
	Variables map[string]any
	// Dependencies lists edges in descriptor order: Dependent waits for Dependee.
	Dependencies []Dependency
	// Levels is the topological order: Levels[0] holds nodes that depend on nothing, and
	// every node's dependees sit in earlier levels. Names within a level keep descriptor order.
	Levels [][]string
	// Source is the descriptor text as submitted, kept so that it can be stored and re-parsed.
	Source []byte
	// File is the descriptor's file name as given to the parser (for messages).
	File string
}

// Node looks up a node by name.
func (in *Infra) Node(name string) (*Node, bool) {
	for _, n := range in.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return nil, false
}

// Dependency is one edge of the dependency graph.
type Dependency struct {
	Dependent string
	Dependee  string
}

// Node is one node of an infrastructure: a named cluster of instances of one node type.
type Node struct {
	Name string
	Type string
	// Scaling holds the effective limits and skyfleet's autoscaling settings.
	Scaling Scaling
	// Filter selects among the node type's implementations: every key/value must equal the
	// same key in an implementation's resource section. Nil when absent.
	Filter map[string]any
	// Variables are the infrastructure variables with the node's own deep-merged over them.
	Variables map[string]any
	// DependsOn lists the node's dependees (direct ones).
	DependsOn []string
	// Level is the node's index in Infra.Levels.
	Level int
	// Pos is where the node's mapping starts.
	Pos Pos
	// TypePos and FilterPos are where the node's type and filter are written (FilterPos is
	// the node's Pos when there is no filter); CheckInfra reports problems there.
	TypePos   Pos
	FilterPos Pos
}

// Scaling is a node's scaling section, with Occopus' rules applied: Min is at least 1 unless
// written as 0 explicitly; Max is at least Min (and defaults to Min).
type Scaling struct {
	Min int
	Max int
	// MinSet and MaxSet tell whether the descriptor wrote the keys (Occopus warns when a node
	// has no scaling section).
	MinSet bool
	MaxSet bool

	// skyfleet extensions (documented superset; zero means "use the default").

	// Step is the number of instances one alert-driven step adds or removes (the parser
	// sets the default, 1, when the descriptor does not write it).
	Step int
	// Cooldown applies to both directions unless the direction-specific value is set.
	Cooldown time.Duration
	// ScaleOutCooldown and ScaleInCooldown override Cooldown per direction.
	ScaleOutCooldown time.Duration
	ScaleInCooldown  time.Duration
	// DrainTimeout bounds how long a scale-in victim is drained before it is destroyed.
	DrainTimeout time.Duration
	// Target is the optional target-tracking policy.
	Target *TargetTracking
}

// TargetTracking keeps a metric near a value by resizing the node.
type TargetTracking struct {
	// Query is a PromQL expression yielding one number (it may use {{infra_id}} and other
	// template variables, rendered before use).
	Query string
	// Value is the target value of the query per instance.
	Value float64
	// Source is the base URL of a Prometheus-compatible API (e.g. http://127.0.0.1:9090).
	Source string
	// Interval between evaluations (default 15s). The parser fills in the defaults of
	// Interval, Tolerance and ScaleInStabilization when the descriptor does not write them.
	Interval time.Duration
	// Tolerance is the relative deviation ignored (default 0.1, as Kubernetes HPA).
	Tolerance float64
	// MaxStep bounds how many instances one evaluation may add or remove (0: no bound).
	MaxStep int
	// ScaleInStabilization is the window over which the highest recommendation wins before
	// scaling in (default 5m, as Kubernetes HPA).
	ScaleInStabilization time.Duration
}

// NodeDefs maps node type names (the part after "node_def:") to their definitions.
type NodeDefs map[string]*NodeDef

// NodeDef is one node type: a list of alternative implementations.
type NodeDef struct {
	Name  string
	Impls []*Impl
	Pos   Pos
}

// Impl is one implementation of a node type. Sections are kept as plain data (maps, lists,
// strings, numbers, bools) with every !yaml_import and !text_import already resolved, so an
// Impl can be stored and re-read without access to the original files.
type Impl struct {
	// Resource is the resource section; Resource["type"] names the provider.
	Resource map[string]any
	// Contextualisation, HealthCheck and ConfigManagement are nil when absent.
	Contextualisation map[string]any
	HealthCheck       map[string]any
	ConfigManagement  map[string]any
	Pos               Pos
}

// ResourceType returns the resource section's type.
func (i *Impl) ResourceType() string {
	t, _ := i.Resource["type"].(string)
	return t
}

// ContextType returns the contextualisation section's type ("" when absent).
func (i *Impl) ContextType() string {
	if i.Contextualisation == nil {
		return ""
	}
	t, _ := i.Contextualisation["type"].(string)
	return t
}
