package descriptor

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults the parser fills into a target-tracking policy that does not set them.
const (
	DefaultTargetInterval             = 15 * time.Second
	DefaultTargetTolerance            = 0.1
	DefaultTargetScaleInStabilization = 5 * time.Minute
)

var (
	infraKeys   = []string{"user_id", "infra_name", "nodes", "dependencies", "variables"}
	nodeKeys    = []string{"name", "type", "scaling", "filter", "variables"}
	scalingKeys = []string{"min", "max", "step", "cooldown", "scale_out_cooldown", "scale_in_cooldown", "drain_timeout", "target"}
	targetReq   = []string{"query", "value", "source"}
	targetOpt   = []string{"interval", "tolerance", "max_step", "scale_in_stabilization"}
	labelRE     = regexp.MustCompile(`^[a-zA-Z0-9-]{1,63}$`)
)

// ParseInfra parses an infrastructure descriptor. Import tags are refused: this is the
// entry point for descriptors received over the API, which must not read the server's files
// (LoadInfraFile resolves them). On failure the error is an Errors holding every problem.
func ParseInfra(file string, data []byte) (*Infra, []Warning, error) {
	return parseInfra(file, data, ImportOptions{})
}

// LoadInfraFile reads and parses an infrastructure descriptor file, resolving any import
// tags relative to its directory.
func LoadInfraFile(path string) (*Infra, []Warning, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, nil, Errors{{Pos: Pos{File: path}, Msg: "cannot read file: " + err.Error()}}
	}
	return parseInfra(path, data, ImportOptions{AllowImports: true})
}

// ParseInfraWith parses an infrastructure descriptor resolving import tags as opts says
// (for a file read by the CLI; see ParseInfra for descriptors received over the API).
func ParseInfraWith(file string, data []byte, opts ImportOptions) (*Infra, []Warning, error) {
	return parseInfra(file, data, opts)
}

func parseInfra(file string, data []byte, opts ImportOptions) (*Infra, []Warning, error) {
	d := &diag{}
	root := load(file, data, opts, d)
	in := infraFromTree(root, d)
	warns, err := d.result()
	if err != nil {
		return nil, warns, err
	}
	in.Source = data
	in.File = file
	return in, warns, nil
}

// infraEdge is a dependency with the position it was written at.
type infraEdge struct {
	Dependency
	pos Pos
}

func infraFromTree(root *node, d *diag) *Infra {
	c := &checker{d: d}
	in := &Infra{Variables: map[string]any{}}
	if root.broken() {
		return in
	}
	if root.isNull() {
		d.errorf(root.pos, "", "", "file is empty; an infrastructure descriptor needs user_id, infra_name and nodes")
		return in
	}
	f, ok := c.fields(root, "", infraKeys[:3], infraKeys[3:])
	if !ok {
		return in
	}
	if n := f["user_id"]; n != nil {
		in.UserID, _ = c.scalarString(n, "user_id")
	}
	if n := f["infra_name"]; n != nil {
		in.Name, _ = c.label(n, "infra_name")
	}
	if n := f["variables"]; n != nil && c.mapping(n, "variables") {
		in.Variables, _ = toAny(n, "variables", d).(map[string]any)
	}
	if n := f["nodes"]; n != nil {
		ok := c.list(n, "nodes", "a list of nodes", func(item *node, path string) {
			if nd := c.infraNode(item, path, in.Variables, d); nd != nil {
				in.Nodes = append(in.Nodes, nd)
			}
		})
		if ok && len(n.content) == 0 {
			d.errorf(n.pos, "nodes", "", "want at least one node")
		}
	}
	first := map[string]*Node{}
	namesOK := true // every node has a valid, unique name: levels can be computed
	for i, nd := range in.Nodes {
		if nd.Name == "" {
			namesOK = false
			continue
		}
		if prev, dup := first[nd.Name]; dup {
			d.errorf(nd.Pos, fmt.Sprintf("nodes[%d].name", i), nd.Name, "duplicate node name %q (first at line %d)", nd.Name, prev.Pos.Line)
			namesOK = false
			continue
		}
		first[nd.Name] = nd
	}
	var edges []infraEdge
	if n := f["dependencies"]; n != nil && !n.isNull() {
		edges = c.dependencies(n, first, in.Nodes)
	} else {
		d.warnf(root.pos, "", "no dependencies: all nodes are in one level and start without waiting for each other")
	}
	if namesOK {
		// Also with other errors, so that a cycle is reported together with them.
		computeLevels(in, edges, d)
	}
	return in
}

// label reads a hostname label: 1 to 63 letters, digits or '-'.
func (c *checker) label(n *node, path string) (string, bool) {
	s, ok := c.scalarString(n, path)
	if !ok {
		return "", false
	}
	if !labelRE.MatchString(s) {
		c.d.errorf(n.pos, path, s, "%q is not a valid name: use 1 to 63 letters, digits or '-' (no '_' or '.')", s)
		return "", false
	}
	return s, true
}

// infraNode checks one entry of nodes.
func (c *checker) infraNode(n *node, path string, infraVars map[string]any, d *diag) *Node {
	f, ok := c.fields(n, path, nodeKeys[:2], nodeKeys[2:])
	if !ok {
		return nil
	}
	nd := &Node{Pos: n.pos, TypePos: n.pos, FilterPos: n.pos}
	if v := f["name"]; v != nil {
		nd.Name, _ = c.label(v, joinKey(path, "name"))
	}
	if v := f["type"]; v != nil {
		nd.Type, _ = c.nonEmptyStr(v, joinKey(path, "type"))
		nd.TypePos = v.pos
	}
	if v := f["scaling"]; v != nil && !v.isNull() {
		nd.Scaling = c.scaling(v, joinKey(path, "scaling"))
	} else {
		nd.Scaling = Scaling{Min: 1, Max: 1, Step: 1}
		d.warnf(n.pos, path, "node %q has no scaling section: it runs exactly one instance", nd.Name)
	}
	if v := f["filter"]; v != nil && !v.isNull() {
		nd.FilterPos = v.pos
		if c.mapping(v, joinKey(path, "filter")) {
			nd.Filter, _ = toAny(v, joinKey(path, "filter"), d).(map[string]any)
		}
	}
	var own map[string]any
	if v := f["variables"]; v != nil && !v.isNull() && c.mapping(v, joinKey(path, "variables")) {
		own, _ = toAny(v, joinKey(path, "variables"), d).(map[string]any)
	}
	nd.Variables = deepMerge(infraVars, own)
	return nd
}

// scaling checks a scaling section and applies the rules: min defaults to 1 and may be 0
// when written so; max defaults to min and may not be below it.
func (c *checker) scaling(n *node, path string) Scaling {
	s := Scaling{Min: 1, Step: 1}
	f, ok := c.fields(n, path, nil, scalingKeys)
	if !ok {
		s.Max = s.Min
		return s
	}
	minOK := true
	if v := f["min"]; v != nil && !v.isNull() {
		m, ok := c.integer(v, joinKey(path, "min"))
		switch {
		case !ok:
			minOK = false
		case m < 0:
			c.d.errorf(v.pos, joinKey(path, "min"), v.value, "%d is negative; want an integer >= 0", m)
			minOK = false
		default:
			s.Min, s.MinSet = m, true
		}
	}
	s.Max = s.Min
	if v := f["max"]; v != nil && !v.isNull() {
		m, ok := c.integer(v, joinKey(path, "max"))
		if ok {
			s.MaxSet = true
			s.Max = m
			if minOK && m < s.Min {
				c.d.errorf(v.pos, joinKey(path, "max"), v.value, "%d is below min (%d)", m, s.Min)
			} else if m < 0 {
				c.d.errorf(v.pos, joinKey(path, "max"), v.value, "%d is negative; want an integer >= min", m)
			}
		}
	}
	if v := f["step"]; v != nil {
		s.Step, _ = c.intRange(v, joinKey(path, "step"), 1, math.MaxInt)
	}
	for key, dst := range map[string]*time.Duration{
		"cooldown":           &s.Cooldown,
		"scale_out_cooldown": &s.ScaleOutCooldown,
		"scale_in_cooldown":  &s.ScaleInCooldown,
		"drain_timeout":      &s.DrainTimeout,
	} {
		if v := f[key]; v != nil {
			*dst, _ = c.duration(v, joinKey(path, key))
		}
	}
	if v := f["target"]; v != nil {
		s.Target = c.target(v, joinKey(path, "target"))
	}
	return s
}

// target checks a target-tracking policy.
func (c *checker) target(n *node, path string) *TargetTracking {
	f, ok := c.fields(n, path, targetReq, targetOpt)
	if !ok {
		return nil
	}
	t := &TargetTracking{
		Interval:             DefaultTargetInterval,
		Tolerance:            DefaultTargetTolerance,
		ScaleInStabilization: DefaultTargetScaleInStabilization,
	}
	if v := f["query"]; v != nil {
		t.Query, _ = c.nonEmptyStr(v, joinKey(path, "query"))
	}
	if v := f["value"]; v != nil {
		if x, ok := c.number(v, joinKey(path, "value")); ok {
			if x <= 0 {
				c.d.errorf(v.pos, joinKey(path, "value"), v.value, "%s is out of range; want a number > 0", v.value)
			}
			t.Value = x
		}
	}
	if v := f["source"]; v != nil {
		if s, ok := c.str(v, joinKey(path, "source")); ok {
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				c.d.errorf(v.pos, joinKey(path, "source"), s, "%q is not an http:// or https:// URL of a Prometheus-compatible API (e.g. http://127.0.0.1:9090)", s)
			}
			t.Source = s
		}
	}
	if v := f["interval"]; v != nil {
		if d, ok := c.duration(v, joinKey(path, "interval")); ok {
			if d <= 0 {
				c.d.errorf(v.pos, joinKey(path, "interval"), v.value, "must be longer than 0")
			}
			t.Interval = d
		}
	}
	if v := f["tolerance"]; v != nil {
		if x, ok := c.number(v, joinKey(path, "tolerance")); ok {
			if x < 0 || x >= 1 {
				c.d.errorf(v.pos, joinKey(path, "tolerance"), v.value, "%s is out of range; want a number >= 0 and < 1", v.value)
			}
			t.Tolerance = x
		}
	}
	if v := f["max_step"]; v != nil {
		t.MaxStep, _ = c.intRange(v, joinKey(path, "max_step"), 0, math.MaxInt)
	}
	if v := f["scale_in_stabilization"]; v != nil {
		t.ScaleInStabilization, _ = c.duration(v, joinKey(path, "scale_in_stabilization"))
	}
	return t
}

// dependencies checks the dependencies list: each item is [dependent, dependee] or
// {connection: [dependent, dependee], mappings: ...}, whose elements are aliases to node
// mappings (*app) or, as a skyfleet convenience, node names.
func (c *checker) dependencies(n *node, byName map[string]*Node, nodes []*Node) []infraEdge {
	var edges []infraEdge
	names := make([]string, 0, len(nodes))
	for _, nd := range nodes {
		if nd.Name != "" {
			names = append(names, nd.Name)
		}
	}
	const want = "a list of [dependent, dependee] pairs or {connection: [dependent, dependee]} mappings"
	c.list(n, "dependencies", want, func(item *node, path string) {
		if item.broken() {
			return
		}
		conn, cpath := item, path
		switch item.kind {
		case yaml.SequenceNode:
		case yaml.MappingNode:
			f, ok := c.fields(item, path, []string{"connection"}, []string{"mappings"})
			if !ok {
				return
			}
			if m := f["mappings"]; m != nil && !m.isNull() {
				c.list(m, joinKey(path, "mappings"), "a list of attribute mappings", func(*node, string) {})
			}
			conn, cpath = f["connection"], joinKey(path, "connection")
			if conn == nil || conn.broken() {
				return
			}
		default:
			c.wrongType(item, path, "[dependent, dependee] or {connection: [dependent, dependee]}")
			return
		}
		if conn.kind != yaml.SequenceNode || len(conn.content) != 2 {
			c.wrongType(conn, cpath, "a list of two nodes [dependent, dependee], e.g. [*app, *db]")
			return
		}
		var ends [2]string
		for j, e := range conn.content {
			ends[j] = c.depEnd(e, fmt.Sprintf("%s[%d]", cpath, j), byName, names)
		}
		if ends[0] != "" && ends[1] != "" {
			edges = append(edges, infraEdge{Dependency{Dependent: ends[0], Dependee: ends[1]}, conn.pos})
		}
	})
	return edges
}

// depEnd reads one end of a dependency: a node mapping (through an alias) or a node name.
func (c *checker) depEnd(n *node, path string, byName map[string]*Node, names []string) string {
	if n.broken() {
		return ""
	}
	var name string
	switch {
	case n.kind == yaml.MappingNode:
		v := n.get("name")
		if v == nil || v.kind != yaml.ScalarNode {
			c.d.errorf(n.pos, path, "", "this mapping has no name; refer to a node with an alias to its mapping (*app) or its name")
			return ""
		}
		name = v.value
	case n.kind == yaml.ScalarNode && n.tag == "!!str":
		name = n.value
	default:
		c.wrongType(n, path, "a node: an alias to its mapping (*app) or its name")
		return ""
	}
	if _, ok := byName[name]; !ok {
		if n.kind == yaml.MappingNode && !labelRE.MatchString(name) {
			return "" // an alias to a node whose bad name is reported already
		}
		c.d.errorf(n.pos, path, name, "unknown node %q (nodes: %s)", name, orNone(names))
		return ""
	}
	return name
}

// computeLevels orders the nodes as Occopus does: level 0 holds the nodes that depend on
// nothing; each next level holds the nodes whose dependees all sit in earlier levels. When no
// node can be placed the remaining ones contain a cycle, which is reported.
func computeLevels(in *Infra, edges []infraEdge, d *diag) {
	seen := map[Dependency]bool{}
	deps := map[string][]string{}
	for _, e := range edges {
		if seen[e.Dependency] {
			continue
		}
		seen[e.Dependency] = true
		in.Dependencies = append(in.Dependencies, e.Dependency)
		deps[e.Dependent] = append(deps[e.Dependent], e.Dependee)
	}
	placed := map[string]int{}
	remaining := make([]*Node, len(in.Nodes))
	copy(remaining, in.Nodes)
	for len(remaining) > 0 {
		var level []string
		var rest []*Node
		for _, nd := range remaining {
			ready := true
			for _, dep := range deps[nd.Name] {
				if _, ok := placed[dep]; !ok {
					ready = false
					break
				}
			}
			if ready {
				level = append(level, nd.Name)
			} else {
				rest = append(rest, nd)
			}
		}
		if len(level) == 0 {
			reportCycle(rest, deps, placed, edges, d)
			in.Levels = nil
			return
		}
		for _, name := range level {
			placed[name] = len(in.Levels)
		}
		in.Levels = append(in.Levels, level)
		remaining = rest
	}
	for _, nd := range in.Nodes {
		nd.Level = placed[nd.Name]
		nd.DependsOn = slices.Clone(deps[nd.Name])
	}
}

// reportCycle follows unplaced dependees from the first unplaced node until a node repeats,
// and reports that loop.
func reportCycle(rest []*Node, deps map[string][]string, placed map[string]int, edges []infraEdge, d *diag) {
	path := []string{rest[0].Name}
	for {
		cur := path[len(path)-1]
		next := ""
		for _, dep := range deps[cur] {
			if _, ok := placed[dep]; !ok {
				next = dep
				break
			}
		}
		if next == "" { // cannot happen: every unplaced node has an unplaced dependee
			d.errorf(rest[0].Pos, "dependencies", "", "cycle among nodes %s", strings.Join(nodeNames(rest), ", "))
			return
		}
		if i := slices.Index(path, next); i >= 0 {
			cycle := append(path[i:], next)
			pos := rest[0].Pos
			for _, e := range edges {
				if e.Dependent == cycle[0] && e.Dependee == cycle[1] {
					pos = e.pos
					break
				}
			}
			d.errorf(pos, "dependencies", "", "cycle: %s", strings.Join(cycle, " -> "))
			return
		}
		path = append(path, next)
	}
}

func nodeNames(nodes []*Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name
	}
	return out
}
