package template

import (
	"regexp"
	"strings"
)

// operatorWords are the words gonja lexes as operators, so that gonja cannot parse them as
// an attribute name after a dot, where Jinja2 can: variables.app.in is a valid Jinja2
// look-up of the key "in" (the flowbster tutorial's variables have one), and a syntax error
// for gonja.
var operatorWords = []string{"in", "not", "and", "or", "is"}

var (
	rawOpen  = regexp.MustCompile(`^\{%[-+]?\s*raw\s*[-+]?%\}`)
	rawClose = regexp.MustCompile(`\{%[-+]?\s*endraw\s*[-+]?%\}`)
)

// quoteOperatorAttrs rewrites x.in (and the other operatorWords) inside {{ }} and {% %}
// tags into x["in"], which means the same in Jinja2 for the mappings templates read. Text
// outside tags, string literals, comments and raw blocks are left alone. A template
// without such a look-up is returned as it is.
func quoteOperatorAttrs(src string) string {
	found := false
	for _, w := range operatorWords {
		if strings.Contains(src, "."+w) {
			found = true
			break
		}
	}
	if !found {
		return src
	}
	var b strings.Builder
	i := 0
	for i < len(src) {
		j := strings.Index(src[i:], "{")
		if j < 0 || i+j+1 >= len(src) {
			break
		}
		j += i
		switch src[j+1] {
		case '#':
			end := strings.Index(src[j+2:], "#}")
			if end < 0 {
				b.WriteString(src[i:])
				return b.String()
			}
			end += j + 4
			b.WriteString(src[i:end])
			i = end
			continue
		case '%':
			if rawOpen.MatchString(src[j:]) {
				loc := rawClose.FindStringIndex(src[j:])
				if loc == nil {
					b.WriteString(src[i:])
					return b.String()
				}
				end := j + loc[1]
				b.WriteString(src[i:end])
				i = end
				continue
			}
		case '{':
		default:
			b.WriteString(src[i : j+1])
			i = j + 1
			continue
		}
		closer := "}}"
		if src[j+1] == '%' {
			closer = "%}"
		}
		b.WriteString(src[i : j+2])
		i = quoteInTag(&b, src, j+2, closer)
	}
	b.WriteString(src[i:])
	return b.String()
}

// quoteInTag copies one tag body from src[start:] up to and including closer, rewriting
// operator words after a dot outside string literals; it returns the index after the tag.
func quoteInTag(b *strings.Builder, src string, start int, closer string) int {
	var quote byte
	i := start
	for i < len(src) {
		c := src[i]
		switch {
		case quote != 0:
			b.WriteByte(c)
			if c == '\\' && i+1 < len(src) {
				b.WriteByte(src[i+1])
				i += 2
				continue
			}
			if c == quote {
				quote = 0
			}
			i++
		case c == '\'' || c == '"':
			quote = c
			b.WriteByte(c)
			i++
		case strings.HasPrefix(src[i:], closer):
			b.WriteString(closer)
			return i + len(closer)
		case c == '.' && i > start && attrTarget(src[i-1]):
			if w := operatorAt(src, i+1); w != "" {
				b.WriteString(`["` + w + `"]`)
				i += 1 + len(w)
				continue
			}
			b.WriteByte(c)
			i++
		default:
			b.WriteByte(c)
			i++
		}
	}
	return i
}

// attrTarget tells whether c can end the expression an attribute is read from.
func attrTarget(c byte) bool { return identChar(c) || c == ')' || c == ']' }

func identChar(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// operatorAt returns the operator word that starts at src[i] and is a whole word, or "".
func operatorAt(src string, i int) string {
	for _, w := range operatorWords {
		if strings.HasPrefix(src[i:], w) && (i+len(w) == len(src) || !identChar(src[i+len(w)])) {
			return w
		}
	}
	return ""
}
