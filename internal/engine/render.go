package engine

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/store"
	"github.com/skyfleet/skyfleet/internal/template"
)

// addressBook answers getip, getprivip and getipall from one snapshot of the
// infrastructure's instance records: ready and pending instances that have an address,
// oldest first (Occopus' "first instance" is the oldest).
type addressBook struct {
	byNode map[string][]template.NodeAddress
	all    []template.NodeAddress
}

var _ template.InfraLookup = addressBook{}

// Instances returns the node's instances, oldest first.
func (b addressBook) Instances(node string) []template.NodeAddress { return b.byNode[node] }

// AllInstances returns every instance of the infrastructure, oldest first (Occopus' getip
// with an undefined node name answers from these).
func (b addressBook) AllInstances() []template.NodeAddress { return b.all }

func newAddressBook(instances []*store.InstanceRecord) addressBook {
	sorted := slices.Clone(instances)
	slices.SortStableFunc(sorted, func(a, b *store.InstanceRecord) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.NodeID, b.NodeID)
	})
	book := addressBook{byNode: map[string][]template.NodeAddress{}}
	for _, r := range sorted {
		if (r.State != store.StateReady && r.State != store.StatePending) || len(r.Addresses) == 0 {
			continue
		}
		a := template.NodeAddress{Address: r.Addresses[0], Private: r.PrivateAddress}
		book.byNode[r.Node] = append(book.byNode[r.Node], a)
		book.all = append(book.all, a)
	}
	return book
}

// templateContext is the Occopus template context of one new instance.
func templateContext(d *desired, n *descriptor.Node, impl *descriptor.Impl, nodeID string, book template.Lookup, extra map[string]any) *template.Context {
	sections := make(map[string]any, len(extra)+6)
	for k, v := range extra {
		sections[k] = v
	}
	sections["resource"] = impl.Resource
	sections["scaling"] = map[string]any{"min": n.Scaling.Min, "max": n.Scaling.Max}
	if impl.Contextualisation != nil {
		sections["contextualisation"] = impl.Contextualisation
	}
	if impl.HealthCheck != nil {
		sections["health_check"] = impl.HealthCheck
	}
	if impl.ConfigManagement != nil {
		sections["config_management"] = impl.ConfigManagement
	}
	if n.Filter != nil {
		sections["filter"] = n.Filter
	}
	return &template.Context{
		InfraID:   d.infraID,
		InfraName: d.infra.Name,
		UserID:    d.infra.UserID,
		NodeID:    nodeID,
		Name:      n.Name,
		Type:      n.Type,
		Variables: n.Variables,
		Sections:  sections,
		Lookup:    book,
	}
}

// renderSpec renders impl for a new instance of node n: the resource section, and the
// contextualisation (cloud-init text for `type: cloudinit`, the rendered section otherwise).
// resource, when not nil, is the resource section the instance was already recorded with (a
// Create being repeated after a restart): it is used as is, so that the provider sees the
// same resource again.
//
// When the provider picks addresses itself (cloud.AddressReserver, the local provider), the
// instance's address is reserved first and the contextualisation sees it as `ip`; the
// reservation is released again when rendering fails.
func (e *Engine) renderSpec(ctx context.Context, d *desired, n *descriptor.Node, impl *descriptor.Impl, nodeID string, book template.Lookup, resource map[string]any) (_ *cloud.InstanceSpec, err error) {
	tctx := templateContext(d, n, impl, nodeID, book, e.opts.TemplateVars)
	name := fmt.Sprintf("node_def:%s/%s", n.Type, n.Name)
	if resource == nil {
		v, _, err := e.opts.Renderer.RenderValue(name+"/resource", impl.Resource, tctx)
		if err != nil {
			return nil, fmt.Errorf("render resource of node %s: %w", n.Name, err)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("render resource of node %s: got %T, want a mapping", n.Name, v)
		}
		resource = m
	}
	if prov, berr := e.bind(resource); berr == nil {
		if r, ok := prov.(cloud.AddressReserver); ok {
			ip, rerr := r.Reserve(ctx, nodeID, resource)
			if rerr != nil {
				return nil, fmt.Errorf("reserve an address for node %s: %w", n.Name, rerr)
			}
			tctx.IP = ip
			defer func() {
				if err != nil {
					_ = r.Unreserve(context.WithoutCancel(ctx), nodeID)
				}
			}()
		}
	}
	spec := &cloud.InstanceSpec{
		Token:     nodeID,
		InfraID:   d.infraID,
		InfraName: d.infra.Name,
		Node:      n.Name,
		Resource:  resource,
		Tags: map[string]string{
			cloud.TagManaged:   "1",
			cloud.TagInfraID:   d.infraID,
			cloud.TagNode:      n.Name,
			cloud.TagNodeID:    nodeID,
			cloud.TagInfraName: d.infra.Name,
		},
	}
	switch impl.ContextType() {
	case "":
	case "cloudinit":
		ud, _, err := e.opts.Renderer.CloudInit(name+"/contextualisation", impl.Contextualisation["context_template"], tctx)
		if err != nil {
			return nil, fmt.Errorf("render cloud-init of node %s: %w", n.Name, err)
		}
		spec.UserData = ud
	default:
		v, _, err := e.opts.Renderer.RenderValue(name+"/contextualisation", impl.Contextualisation, tctx)
		if err != nil {
			return nil, fmt.Errorf("render contextualisation of node %s: %w", n.Name, err)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("render contextualisation of node %s: got %T, want a mapping", n.Name, v)
		}
		spec.Context = m
	}
	if e.opts.Credentials != nil {
		creds, err := e.opts.Credentials(resource)
		if err != nil {
			return nil, fmt.Errorf("select credentials for node %s: %w", n.Name, err)
		}
		spec.Auth = creds
	}
	return spec, nil
}

// implFor finds the implementation an instance was created from. The choice among several
// implementations is random and not stored, so it is recovered from the rendered resource
// the record keeps: the first implementation (matching the node's filter) of the same
// resource type whose untemplated resource values all equal the recorded ones. The answer is
// cached per instance.
func (l *infraLoop) implFor(d *desired, r *store.InstanceRecord) (*descriptor.Impl, error) {
	l.mu.Lock()
	impl, ok := l.impls[r.NodeID]
	l.mu.Unlock()
	if ok {
		return impl, nil
	}
	n, ok := d.node(r.Node)
	if !ok {
		return nil, fmt.Errorf("node %s is not in the descriptor", r.Node)
	}
	def, ok := d.defs[n.Type]
	if !ok {
		return nil, fmt.Errorf("node %s: no node definition %s", r.Node, n.Type)
	}
	impl = matchImpl(def.Matching(n.Filter), r.Resource)
	if impl == nil {
		return nil, fmt.Errorf("node %s: no implementation of %s matches the recorded resource (type %s)", r.Node, n.Type, r.ResourceType)
	}
	l.mu.Lock()
	l.impls[r.NodeID] = impl
	l.mu.Unlock()
	return impl, nil
}

// matchImpl returns the candidate whose resource agrees with rendered on every untemplated
// value, preferring the first; failing that, the first of the same type.
func matchImpl(candidates []*descriptor.Impl, rendered map[string]any) *descriptor.Impl {
	typ, _ := rendered["type"].(string)
	var sameType *descriptor.Impl
	for _, c := range candidates {
		if c.ResourceType() != typ {
			continue
		}
		if sameType == nil {
			sameType = c
		}
		agree := true
		for _, k := range slices.Sorted(maps.Keys(c.Resource)) {
			v := c.Resource[k]
			if s, ok := v.(string); ok && (strings.Contains(s, "{{") || strings.Contains(s, "{%")) {
				continue
			}
			if !looseEqual(v, rendered[k]) {
				agree = false
				break
			}
		}
		if agree {
			return c
		}
	}
	return sameType
}

// looseEqual compares decoded values, treating numbers of different Go types (a record
// read back from JSON has float64 where YAML gave int) as equal when their values are.
func looseEqual(a, b any) bool {
	if fa, ok := asFloat(a); ok {
		fb, ok := asFloat(b)
		return ok && fa == fb
	}
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for k, v := range av {
			if !looseEqual(v, bv[k]) {
				return false
			}
		}
		return true
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for i := range av {
			if !looseEqual(av[i], bv[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	case float32:
		return float64(x), true
	}
	return 0, false
}
