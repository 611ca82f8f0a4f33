package decode

import (
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
)

// Problems collects what is wrong with one section of a node definition, so that a decoder
// reports every problem at once instead of stopping at the first. Each problem reads
// "SECTION.KEY: message". Create one with NewProblems; a Problems is not safe for
// concurrent use.
type Problems struct {
	section string
	list    []problem
}

// problem is one reported problem and the key it is about.
type problem struct {
	key string
	err error
}

// NewProblems returns an empty collector for the named section, such as "resource" or
// "contextualisation".
func NewProblems(section string) *Problems {
	return &Problems{section: section}
}

// Bad records a problem with key: format and args are read as by fmt.Errorf, so a %w verb
// keeps the wrapped error reachable through errors.Is and errors.As. key may be a path
// below the section, such as "tags.team" or "security_groups[1]".
func (p *Problems) Bad(key, format string, args ...any) {
	p.list = append(p.list, problem{key: key, err: fmt.Errorf("%s.%s: %w", p.section, key, fmt.Errorf(format, args...))})
}

// Has reports whether a problem has been recorded for exactly key (not for a path below
// it), so that a later check can keep quiet about a value already reported as bad.
func (p *Problems) Has(key string) bool {
	for _, x := range p.list {
		if x.key == key {
			return true
		}
	}
	return false
}

// Unknown records key as a key the section may not have, listing the allowed keys.
func (p *Problems) Unknown(key string, allowed []string) {
	p.Bad(key, "unknown key (allowed: %s)", strings.Join(allowed, ", "))
}

// Walk yields the keys of m with their values in sorted key order, so that problems are
// recorded in key order and read the same on every run. A key listed in text is not
// yielded: Walk reads it with Text into the string text points to, in its turn.
func (p *Problems) Walk(m map[string]any, text map[string]*string) iter.Seq2[string, any] {
	return func(yield func(string, any) bool) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if field, ok := text[k]; ok {
				*field = p.Text(k, m[k])
				continue
			}
			if !yield(k, m[k]) {
				return
			}
		}
	}
}

// Text reads the value of a key that holds a string. A whole number is taken as its
// decimal digits (YAML reads image_id: 123 as a number); any other value is recorded as a
// problem naming the value and its type, and Text returns "".
func (p *Problems) Text(key string, v any) string {
	switch s := v.(type) {
	case string:
		return s
	case int, int64, uint64:
		return fmt.Sprint(s)
	}
	p.Bad(key, "%v is a %s; want a string", v, TypeName(v))
	return ""
}

// String reads the value of a key that must be a string as it is, recording any other
// value as "VALUE is not a string" and returning "".
func (p *Problems) String(key string, v any) string {
	s, ok := v.(string)
	if !ok {
		p.Bad(key, "%v is not a string", v)
	}
	return s
}

// Parse reads a string that check accepts, such as an address range. A value that is not
// a string is recorded as "VALUE is not a string (want WANT)", an error from check as it
// is; either way Parse returns "".
func (p *Problems) Parse(key string, v any, want string, check func(string) error) string {
	s, ok := v.(string)
	if !ok {
		p.Bad(key, "%v is not a string (want %s)", v, want)
		return ""
	}
	if err := check(s); err != nil {
		p.Bad(key, "%w", err)
		return ""
	}
	return s
}

// StringList reads a list of non-empty strings, or one string as a list of one (Occopus
// accepts both for security groups). item and list say what is wanted: an item that is
// not a non-empty string is recorded under KEY[i] as "VALUE is not ITEM", a value that is
// neither a list nor a string as "is a TYPE; want LIST". null is an empty list.
func (p *Problems) StringList(key string, v any, item, list string) []string {
	var out []string
	switch x := v.(type) {
	case nil:
	case string:
		out = []string{x}
	case []any:
		for i, e := range x {
			s, ok := e.(string)
			if !ok || s == "" {
				p.Bad(fmt.Sprintf("%s[%d]", key, i), "%v is not %s", e, item)
				continue
			}
			out = append(out, s)
		}
	default:
		p.Bad(key, "is a %s; want %s", TypeName(v), list)
	}
	return out
}

// WantType records the section's type as wrong when it is set to something other than
// want. An empty type is left to Require.
func (p *Problems) WantType(got, want string) {
	if got != "" && got != want {
		p.Bad("type", "%q is not %s", got, want)
	}
}

// Require checks the keys a section must have, in the order given: a key missing from m
// is recorded as "missing (WHAT needs KEY, KEY and KEY)"; a key whose value is the empty
// string is recorded as "must not be empty", unless a problem about it is already
// recorded. Call it after the keys of m have been decoded. what names the section for
// the message, with its article: "an ec2 resource".
func (p *Problems) Require(m map[string]any, what string, keys ...string) {
	for _, k := range keys {
		v, present := m[k]
		switch {
		case !present:
			p.Bad(k, "missing (%s needs %s)", what, andList(keys))
		case v == "" && !p.Has(k):
			p.Bad(k, "must not be empty")
		}
	}
}

// Err returns nil when no problem was recorded, or else one error listing every problem,
// one a line, in the order they were recorded: decoders walk a section's keys in sorted
// order and then check what spans keys, so the list reads in key order first.
func (p *Problems) Err() error {
	if len(p.list) == 0 {
		return nil
	}
	errs := make([]error, len(p.list))
	for i, x := range p.list {
		errs[i] = x.err
	}
	return errors.Join(errs...)
}

// andList writes a, b and c.
func andList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}
