package template

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// puppetContext adds what Occopus' puppet_solo config manager gives a cloud-init template:
// when the node's config_management section (in c.Sections) has type puppet_solo, the
// section is rendered first, as Occopus does, and "puppet" holds its modules, manifests and
// attributes, each as one string of its items joined by spaces (an item that is not a
// string written as Python writes it: {'dbname': 'wordpress'}). The puppet-solo-wordpress
// tutorial writes these strings into files on the instance. c is returned unchanged when
// there is no such section or the context already has "puppet".
func (r *Renderer) puppetContext(name string, c *Context) (*Context, []Warning, error) {
	if c == nil {
		return c, nil, nil
	}
	cm, ok := c.Sections["config_management"].(map[string]any)
	if !ok || cm["type"] != "puppet_solo" {
		return c, nil, nil
	}
	if _, ok := c.Sections["puppet"]; ok {
		return c, nil, nil
	}
	rv, warns, err := r.RenderValue(name+".config_management", cm, c)
	if err != nil {
		return nil, warns, err
	}
	rendered, _ := rv.(map[string]any)
	puppet := map[string]any{}
	for _, k := range []string{"modules", "manifests", "attributes"} {
		puppet[k] = joinPython(rendered[k])
	}
	copied := *c
	copied.Sections = make(map[string]any, len(c.Sections)+1)
	maps.Copy(copied.Sections, c.Sections)
	copied.Sections["puppet"] = puppet
	return &copied, warns, nil
}

// joinPython is Occopus' ' '.join(str(k) for k in v) over a list (or a mapping's keys);
// anything else, or nothing, is "".
func joinPython(v any) string {
	var items []string
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			items = append(items, pyStr(e))
		}
	case map[string]any:
		items = slices.Sorted(maps.Keys(v))
	}
	return strings.Join(items, " ")
}

// pyStr is Python's str(): strings as they are, everything else as repr.
func pyStr(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return pyRepr(v)
}

// pyRepr writes a YAML-decoded value as Python's repr() writes the same value: single
// quotes unless the string holds one and no double quote, True/False/None, and mappings in
// key order (Go maps keep no order; Occopus' keep the file's).
func pyRepr(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		if v {
			return "True"
		}
		return "False"
	case string:
		q := "'"
		if strings.Contains(v, "'") && !strings.Contains(v, `"`) {
			q = `"`
		}
		var b strings.Builder
		b.WriteString(q)
		for _, r := range v {
			switch {
			case r == '\\':
				b.WriteString(`\\`)
			case string(r) == q:
				b.WriteString(`\` + q)
			case r == '\n':
				b.WriteString(`\n`)
			case r == '\r':
				b.WriteString(`\r`)
			case r == '\t':
				b.WriteString(`\t`)
			case r < 0x20 || r == 0x7f:
				fmt.Fprintf(&b, `\x%02x`, r)
			default:
				b.WriteRune(r)
			}
		}
		b.WriteString(q)
		return b.String()
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case uint64:
		return strconv.FormatUint(v, 10)
	case float64:
		s := strconv.FormatFloat(v, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eEn") {
			s += ".0"
		}
		return s
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = pyRepr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := slices.Sorted(maps.Keys(v))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = pyRepr(k) + ": " + pyRepr(v[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	default:
		return fmt.Sprint(v)
	}
}
