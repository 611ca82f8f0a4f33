package descriptor

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// checker holds the helpers that check node trees against the schemas, reporting every
// problem into one diag.
type checker struct{ d *diag }

func (c *checker) wrongType(n *node, path, want string) {
	c.d.errorf(n.pos, path, n.value, "want %s, not %s", want, describe(n))
}

// fields checks that n is a mapping holding only the allowed keys and every required one.
// It returns the values by key; ok is false when n is not a mapping at all. Unknown keys are
// reported and left out of the result.
func (c *checker) fields(n *node, path string, required, optional []string) (map[string]*node, bool) {
	if n.broken() {
		return nil, false
	}
	allowed := slices.Concat(required, optional)
	if n.kind != yaml.MappingNode {
		c.wrongType(n, path, "a mapping with the keys "+strings.Join(allowed, ", "))
		return nil, false
	}
	out := make(map[string]*node, len(n.content)/2)
	for i := 0; i+1 < len(n.content); i += 2 {
		k := n.content[i]
		if !slices.Contains(allowed, k.value) {
			c.d.errorf(k.pos, joinKey(path, k.value), k.value, "unknown key %q (allowed: %s)", k.value, strings.Join(allowed, ", "))
			continue
		}
		out[k.value] = n.content[i+1]
	}
	for _, r := range required {
		if _, ok := out[r]; !ok {
			c.d.errorf(n.pos, path, "", "missing required key %q", r)
		}
	}
	return out, true
}

// keyPos returns the position of key in mapping n (or n's own position).
func keyPos(n *node, key string) Pos {
	if n != nil && n.kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.content); i += 2 {
			if n.content[i].value == key {
				return n.content[i].pos
			}
		}
	}
	if n == nil {
		return Pos{}
	}
	return n.pos
}

// str reads a string. Only a YAML string is accepted (quote numbers: "8080").
func (c *checker) str(n *node, path string) (string, bool) {
	if n.broken() {
		return "", false
	}
	if n.kind != yaml.ScalarNode || n.tag != "!!str" {
		c.wrongType(n, path, "a string")
		return "", false
	}
	return n.value, true
}

// scalarString reads any non-null scalar as the text written, for values that Occopus
// treats as strings whatever they look like (user_id: 1234).
func (c *checker) scalarString(n *node, path string) (string, bool) {
	if n.broken() {
		return "", false
	}
	if n.kind != yaml.ScalarNode || n.isNull() {
		c.wrongType(n, path, "a string")
		return "", false
	}
	return n.value, true
}

// nonEmptyStr reads a string that must not be empty.
func (c *checker) nonEmptyStr(n *node, path string) (string, bool) {
	s, ok := c.str(n, path)
	if ok && strings.TrimSpace(s) == "" {
		c.d.errorf(n.pos, path, s, "must not be empty")
		return "", false
	}
	return s, ok
}

// integer reads an integer; floats with a fraction, strings and booleans are refused.
func (c *checker) integer(n *node, path string) (int, bool) {
	if n.broken() {
		return 0, false
	}
	if n.kind == yaml.ScalarNode && n.tag == "!!int" {
		if i, ok := parseInt(n.value); ok {
			return i, true
		}
	}
	c.wrongType(n, path, "an integer")
	return 0, false
}

// intRange reads an integer within [lo, hi].
func (c *checker) intRange(n *node, path string, lo, hi int) (int, bool) {
	i, ok := c.integer(n, path)
	if !ok {
		return 0, false
	}
	if i < lo || i > hi {
		if hi == math.MaxInt {
			c.d.errorf(n.pos, path, n.value, "%d is out of range; want an integer >= %d", i, lo)
		} else {
			c.d.errorf(n.pos, path, n.value, "%d is out of range; want an integer from %d to %d", i, lo, hi)
		}
		return 0, false
	}
	return i, true
}

// number reads an integer or a float.
func (c *checker) number(n *node, path string) (float64, bool) {
	if n.broken() {
		return 0, false
	}
	if n.kind == yaml.ScalarNode {
		switch n.tag {
		case "!!int":
			if i, ok := parseInt(n.value); ok {
				return float64(i), true
			}
		case "!!float":
			if f, ok := parseFloat(n.value); ok && !math.IsNaN(f) && !math.IsInf(f, 0) {
				return f, true
			}
		}
	}
	c.wrongType(n, path, "a number")
	return 0, false
}

// fraction reads a number within [0, 1].
func (c *checker) fraction(n *node, path string) (float64, bool) {
	f, ok := c.number(n, path)
	if ok && (f < 0 || f > 1) {
		c.d.errorf(n.pos, path, n.value, "%s is out of range; want a number from 0 to 1", n.value)
		return 0, false
	}
	return f, ok
}

// boolean reads true or false.
func (c *checker) boolean(n *node, path string) (bool, bool) {
	if n.broken() {
		return false, false
	}
	if n.kind == yaml.ScalarNode && n.tag == "!!str" && n.plain {
		// YAML 1.1 (PyYAML, hence Occopus) reads yes/no/on/off as booleans; keep those
		// files valid by reading the words as booleans here, where one is expected.
		switch strings.ToLower(n.value) {
		case "yes", "on", "y":
			n.tag, n.value = "!!bool", "true"
		case "no", "off", "n":
			n.tag, n.value = "!!bool", "false"
		}
	}
	if n.kind == yaml.ScalarNode && n.tag == "!!bool" {
		if b, ok := parseBool(n.value); ok {
			return b, true
		}
	}
	c.wrongType(n, path, "true or false")
	return false, false
}

// duration reads a duration: "30s", "2m", "1h30m", "1d" or an integer number of seconds.
func (c *checker) duration(n *node, path string) (time.Duration, bool) {
	if n.broken() {
		return 0, false
	}
	var v any
	switch {
	case n.kind == yaml.ScalarNode && n.tag == "!!str":
		v = n.value
	case n.kind == yaml.ScalarNode && n.tag == "!!int":
		i, ok := parseInt(n.value)
		if !ok {
			c.wrongType(n, path, `a duration such as "30s" or a number of seconds`)
			return 0, false
		}
		v = i
	default:
		c.wrongType(n, path, `a duration such as "30s" or a number of seconds`)
		return 0, false
	}
	d, err := ParseDuration(v)
	if err != nil {
		c.d.errorf(n.pos, path, n.value, "%v", err)
		return 0, false
	}
	return d, true
}

// list checks that n is a list and calls each for every item.
func (c *checker) list(n *node, path, want string, each func(item *node, path string)) bool {
	if n.broken() {
		return false
	}
	if n.kind != yaml.SequenceNode {
		c.wrongType(n, path, want)
		return false
	}
	for i, item := range n.content {
		each(item, fmt.Sprintf("%s[%d]", path, i))
	}
	return true
}

// stringList checks a list of strings.
func (c *checker) stringList(n *node, path string) {
	c.list(n, path, "a list of strings", func(item *node, p string) { c.str(item, p) })
}

// mapping checks that n is a mapping (of anything).
func (c *checker) mapping(n *node, path string) bool {
	if n.broken() {
		return false
	}
	if n.kind != yaml.MappingNode {
		c.wrongType(n, path, "a mapping")
		return false
	}
	return true
}

// oneOf checks that a string is one of the allowed values.
func (c *checker) oneOf(n *node, path string, allowed []string) (string, bool) {
	s, ok := c.str(n, path)
	if !ok {
		return "", false
	}
	if !slices.Contains(allowed, s) {
		c.d.errorf(n.pos, path, s, "%q is not allowed (allowed: %s)", s, strings.Join(allowed, ", "))
		return "", false
	}
	return s, true
}
