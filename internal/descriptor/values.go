package descriptor

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// toAny turns a checked node into plain data: map[string]any, []any, string, int, float64,
// bool or nil. Timestamps stay strings (as written), so that values survive a YAML round trip
// unchanged. It reports integers that do not fit an int64.
func toAny(n *node, path string, d *diag) any {
	if n.broken() {
		return nil
	}
	switch n.kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.content)/2)
		for i := 0; i+1 < len(n.content); i += 2 {
			k := n.content[i].value
			m[k] = toAny(n.content[i+1], joinKey(path, k), d)
		}
		return m
	case yaml.SequenceNode:
		l := make([]any, len(n.content))
		for i, c := range n.content {
			l[i] = toAny(c, fmt.Sprintf("%s[%d]", path, i), d)
		}
		return l
	}
	switch n.tag {
	case "!!null":
		return nil
	case "!!bool":
		b, ok := parseBool(n.value)
		if !ok {
			d.errorf(n.pos, path, n.value, "%q is not a boolean (use true or false)", n.value)
		}
		return b
	case "!!int":
		i, ok := parseInt(n.value)
		if !ok {
			d.errorf(n.pos, path, n.value, "%s is not an integer in the range of a 64-bit integer", n.value)
		}
		return i
	case "!!float":
		f, ok := parseFloat(n.value)
		if !ok {
			d.errorf(n.pos, path, n.value, "%q is not a number", n.value)
		}
		return f
	default:
		return n.value
	}
}

// parseBool, parseInt and parseFloat read scalars the way YAML resolved them (YAML 1.1
// booleans, 0x/0o prefixes, underscores, .inf/.nan), by letting the yaml package decode them.
func parseBool(s string) (bool, bool) {
	var b bool
	err := (&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: s}).Decode(&b)
	return b, err == nil
}

func parseInt(s string) (int, bool) {
	var i int64
	if err := (&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: s}).Decode(&i); err != nil {
		return 0, false
	}
	if i > math.MaxInt || i < math.MinInt {
		return 0, false
	}
	return int(i), true
}

func parseFloat(s string) (float64, bool) {
	var f float64
	err := (&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: s}).Decode(&f)
	return f, err == nil
}

// joinKey appends a mapping key to a key path.
func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// deepMerge returns a new map holding base with over merged into it: where both hold a
// mapping under the same key the mappings are merged recursively, otherwise over wins. The
// inputs are not modified and share nothing with the result.
func deepMerge(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(over))
	for k, v := range base {
		out[k] = deepCopy(v)
	}
	for k, v := range over {
		bm, bok := out[k].(map[string]any)
		om, ook := v.(map[string]any)
		if bok && ook {
			out[k] = deepMerge(bm, om)
			continue
		}
		out[k] = deepCopy(v)
	}
	return out
}

// deepCopy copies maps and lists of plain data.
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, e := range v {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}

// valuesEqual compares plain data as Python compares the equivalent objects: numbers are
// equal when their values are (1 == 1.0), maps and lists element by element.
func valuesEqual(a, b any) bool {
	if fa, ok := number(a); ok {
		fb, ok := number(b)
		return ok && fa == fb
	}
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		return ok && maps.EqualFunc(a, b, valuesEqual)
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !valuesEqual(a[i], b[i]) {
				return false
			}
		}
		return true
	case string, bool, nil:
		return a == b
	}
	return false
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case int:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

// ParseDuration reads a skyfleet duration value as plain data gives it: a Go duration
// string ("1m30s", "500ms"), a Prometheus duration string ("2m", "1d", "1w"), or a
// non-negative integer number of seconds. Negative durations are refused.
func ParseDuration(v any) (time.Duration, error) {
	switch v := v.(type) {
	case int:
		if v < 0 {
			return 0, fmt.Errorf("%d is negative; want a duration such as \"30s\" or a number of seconds >= 0", v)
		}
		if v > math.MaxInt64/int(time.Second) {
			return 0, fmt.Errorf("%d seconds is too long", v)
		}
		return time.Duration(v) * time.Second, nil
	case string:
		s := strings.TrimSpace(v)
		if d, err := time.ParseDuration(s); err == nil {
			if d < 0 {
				return 0, fmt.Errorf("%q is negative; want a duration such as \"30s\"", v)
			}
			return d, nil
		}
		if d, err := model.ParseDuration(s); err == nil {
			return time.Duration(d), nil
		}
		return 0, fmt.Errorf("%q is not a duration; want a duration such as \"30s\", \"2m\", \"1h30m\" or a number of seconds", v)
	}
	return 0, fmt.Errorf("%s is not a duration; want a string such as \"30s\" or a number of seconds", formatValue(v))
}

// formatValue prints plain data compactly for messages, with strings quoted.
func formatValue(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case nil:
		return "null"
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + formatValue(v[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = formatValue(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v)
}
