package descriptor

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

const nodeDefPrefix = "node_def:"

// implSections are the sections an implementation may have.
var implSections = []string{"resource", "contextualisation", "health_check", "config_management"}

// ParseNodeDefs parses a node definition file: a mapping of 'node_def:NAME' keys, each a
// list of alternative implementations with a resource section and optional
// contextualisation, health_check and config_management sections. Import tags are
// resolved as opts says. On failure the error is an Errors holding every problem found.
func ParseNodeDefs(file string, data []byte, opts ImportOptions) (NodeDefs, []Warning, error) {
	d := &diag{}
	root := load(file, data, opts, d)
	defs := nodeDefsFromTree(root, d)
	warns, err := d.result()
	if err != nil {
		return nil, warns, err
	}
	return defs, warns, nil
}

// LoadNodeDefsFile reads and parses a node definition file, resolving its imports relative
// to its directory.
func LoadNodeDefsFile(path string) (NodeDefs, []Warning, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, nil, Errors{{Pos: Pos{File: path}, Msg: "cannot read file: " + err.Error()}}
	}
	return ParseNodeDefs(path, data, ImportOptions{AllowImports: true})
}

func nodeDefsFromTree(root *node, d *diag) NodeDefs {
	c := &checker{d: d}
	if root.broken() {
		return nil
	}
	if root.isNull() {
		d.errorf(root.pos, "", "", "file is empty; a node definition file holds 'node_def:NAME' keys")
		return nil
	}
	if root.kind != yaml.MappingNode {
		d.errorf(root.pos, "", "", "want a mapping of 'node_def:NAME' keys, not %s", describe(root))
		return nil
	}
	defs := NodeDefs{}
	for i := 0; i+1 < len(root.content); i += 2 {
		k, v := root.content[i], root.content[i+1]
		name, ok := strings.CutPrefix(k.value, nodeDefPrefix)
		if !ok {
			d.errorf(k.pos, k.value, k.value, "unknown key %q: a node definition file holds only 'node_def:NAME' keys", k.value)
			continue
		}
		if strings.TrimSpace(name) == "" || strings.ContainsAny(name, " \t\r\n") {
			d.errorf(k.pos, k.value, k.value, "%q names no node type: write 'node_def:NAME' with a NAME without spaces", k.value)
			continue
		}
		def := &NodeDef{Name: name, Pos: k.pos}
		ok = c.list(v, k.value, "a list of implementations", func(item *node, path string) {
			if impl := c.impl(item, path, d); impl != nil {
				def.Impls = append(def.Impls, impl)
			}
		})
		if ok && len(v.content) == 0 {
			d.errorf(v.pos, k.value, "", "node type %q has no implementations; give at least one with a resource section", name)
		}
		defs[name] = def
	}
	return defs
}

// impl checks one implementation and converts it to plain data.
func (c *checker) impl(n *node, path string, d *diag) *Impl {
	f, ok := c.fields(n, path, implSections[:1], implSections[1:])
	if !ok {
		return nil
	}
	impl := &Impl{Pos: n.pos}
	if sec := f["resource"]; sec != nil {
		p := joinKey(path, "resource")
		c.checkResource(sec, p, d)
		impl.Resource, _ = toAny(sec, p, d).(map[string]any)
	}
	if sec := f["contextualisation"]; sec != nil {
		p := joinKey(path, "contextualisation")
		c.checkContext(sec, p)
		impl.Contextualisation, _ = toAny(sec, p, d).(map[string]any)
	}
	if sec := f["health_check"]; sec != nil {
		p := joinKey(path, "health_check")
		c.checkHealth(sec, p)
		impl.HealthCheck, _ = toAny(sec, p, d).(map[string]any)
	}
	if sec := f["config_management"]; sec != nil {
		p := joinKey(path, "config_management")
		c.checkConfigManagement(sec, p, d)
		impl.ConfigManagement, _ = toAny(sec, p, d).(map[string]any)
	}
	switch rt, ct := impl.ResourceType(), impl.ContextType(); {
	case rt == "azure_aci" && ct == "":
		// Occopus' azure_aci plugin reads env and command with empty defaults, so a container
		// that needs neither (the azure-aci-nginx tutorial's nginx server) has no
		// contextualisation section at all.
	case (rt == "docker" || rt == "azure_aci") && ct != "docker" && f["resource"] != nil:
		where := keyPos(n, "contextualisation")
		if ct == "" {
			d.errorf(where, joinKey(path, "contextualisation"), "", "resource type %s needs a contextualisation section of type docker (env, command)", rt)
		} else {
			d.errorf(keyPos(f["contextualisation"], "type"), joinKey(path, "contextualisation.type"), ct, "resource type %s needs contextualisation type docker, not %q", rt, ct)
		}
	case rt == "local" && ct != "process":
		d.warnf(keyPos(n, "contextualisation"), joinKey(path, "contextualisation"),
			"resource type local runs the command of a contextualisation of type process; without one its instances run nothing")
	}
	return impl
}

// Matching returns the implementations whose resource section contains every key of filter
// with an equal value (Occopus' is_subdict). A nil or empty filter matches them all.
func (d *NodeDef) Matching(filter map[string]any) []*Impl {
	var out []*Impl
	for _, im := range d.Impls {
		if isSubdict(filter, im.Resource) {
			out = append(out, im)
		}
	}
	return out
}

func isSubdict(sub, super map[string]any) bool {
	for k, v := range sub {
		sv, ok := super[k]
		if !ok || !valuesEqual(v, sv) {
			return false
		}
	}
	return true
}

// Select chooses the implementation for a new instance: among those matching filter (see
// Matching), the one at index pick(n), where n is how many match. Production passes a random
// choice (as Occopus); tests pass a fixed one. A nil pick takes the first.
func (d *NodeDef) Select(filter map[string]any, pick func(n int) int) (*Impl, error) {
	m := d.Matching(filter)
	if len(m) == 0 {
		return nil, fmt.Errorf("select implementation of node type %q: filter %s matches none of its %d implementations",
			d.Name, formatValue(filter), len(d.Impls))
	}
	i := 0
	if pick != nil {
		i = pick(len(m))
	}
	if i < 0 || i >= len(m) {
		return nil, fmt.Errorf("select implementation of node type %q: pick returned %d, want 0..%d", d.Name, i, len(m)-1)
	}
	return m[i], nil
}

// CheckInfra checks an infrastructure against these node definitions: every node's type
// must be defined, and every node's filter must match at least one implementation. The
// error is an Errors positioned in the infrastructure file.
func (defs NodeDefs) CheckInfra(in *Infra) error {
	d := &diag{}
	names := make([]string, 0, len(defs))
	for n := range defs {
		names = append(names, n)
	}
	slices.Sort(names)
	for i, n := range in.Nodes {
		def, ok := defs[n.Type]
		if !ok {
			d.errorf(n.TypePos, fmt.Sprintf("nodes[%d].type", i), n.Type, "unknown node type %q (defined: %s)", n.Type, orNone(names))
			continue
		}
		if len(def.Matching(n.Filter)) > 0 {
			continue
		}
		var have []string
		for _, im := range def.Impls {
			sel := map[string]any{}
			for k := range n.Filter {
				if v, ok := im.Resource[k]; ok {
					sel[k] = v
				}
			}
			have = append(have, formatValue(sel))
		}
		d.errorf(n.FilterPos, fmt.Sprintf("nodes[%d].filter", i), formatValue(n.Filter),
			"%s matches none of the %d implementations of node type %q (they have: %s)",
			formatValue(n.Filter), len(def.Impls), n.Type, strings.Join(have, ", "))
	}
	_, err := d.result()
	return err
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// MarshalYAML returns the resolved definition as a node definition document,
// 'node_def:NAME': [implementations], with every import already inlined, so that it can be
// stored and parsed again by ParseNodeDefs without access to the original files.
func (d *NodeDef) MarshalYAML() ([]byte, error) {
	impls := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for i, im := range d.Impls {
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, sec := range []struct {
			key string
			val map[string]any
		}{
			{"resource", im.Resource},
			{"contextualisation", im.Contextualisation},
			{"health_check", im.HealthCheck},
			{"config_management", im.ConfigManagement},
		} {
			if sec.val == nil && sec.key != "resource" {
				continue
			}
			v, err := yamlNodeOf(sec.val)
			if err != nil {
				return nil, fmt.Errorf("marshal node type %q implementation %d %s: %w", d.Name, i, sec.key, err)
			}
			m.Content = append(m.Content, strNode(sec.key), v)
		}
		impls.Content = append(impls.Content, m)
	}
	doc := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{strNode(nodeDefPrefix + d.Name), impls}}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("marshal node type %q: %w", d.Name, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal node type %q: %w", d.Name, err)
	}
	return buf.Bytes(), nil
}

func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

// yamlNodeOf builds a YAML node from plain data, with mapping keys sorted so that output is
// stable, and floats always written so that they read back as floats.
func yamlNodeOf(v any) (*yaml.Node, error) {
	switch v := v.(type) {
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v)}, nil
	case int:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(v)}, nil
	case float64:
		var s string
		switch {
		case math.IsInf(v, 1):
			s = ".inf"
		case math.IsInf(v, -1):
			s = "-.inf"
		case math.IsNaN(v):
			s = ".nan"
		default:
			s = strconv.FormatFloat(v, 'g', -1, 64)
			if !strings.ContainsAny(s, ".e") {
				s += ".0"
			}
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: s}, nil
	case string:
		return strNode(v), nil
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, e := range v {
			c, err := yamlNodeOf(e)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, c)
		}
		return n, nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, k := range keys {
			c, err := yamlNodeOf(v[k])
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, strNode(k), c)
		}
		return n, nil
	}
	return nil, errors.New("unsupported value of type " + fmt.Sprintf("%T", v))
}
