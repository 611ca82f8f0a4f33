package template

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// placeholderPattern matches what run.out writes in place of a {{ }} output that spans
// lines. It is a plain YAML word, so it stays inside whatever scalar the template put it in.
var placeholderPattern = regexp.MustCompile(`__skyfleet_folded_(\d+)__`)

func placeholder(i int) string { return fmt.Sprintf("__skyfleet_folded_%d__", i) }

// foldLines folds line breaks as YAML folds them inside a quoted scalar, which is what
// happens to a multi-line value that Occopus renders into a dumped #cloud-config mapping
// (PyYAML dumps strings that span lines in a quoted style): a single line break becomes a
// space, n+1 consecutive breaks (n blank lines) become n newlines, and the whitespace
// around a break is dropped. Breaks at the very end are kept one for one, because there
// they meet the scalar's own line break, which Occopus' dump encodes as a blank line.
// Published descriptors rely on this: the kubernetes-cluster tutorial spaces its key with
// blank lines so that the key arrives with single newlines.
func foldLines(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	lines := strings.Split(s, "\n")
	last := len(lines) - 1
	trailing := 0
	for last > 0 && strings.TrimSpace(lines[last]) == "" {
		last--
		trailing++
	}
	var b strings.Builder
	breaks := 0
	for i := 0; i <= last; i++ {
		line := lines[i]
		if i > 0 {
			line = strings.TrimLeft(line, " \t")
		}
		if i < len(lines)-1 {
			line = strings.TrimRight(line, " \t")
		}
		if i > 0 && line == "" {
			breaks++
			continue
		}
		if i > 0 {
			if breaks == 0 {
				b.WriteByte(' ')
			} else {
				b.WriteString(strings.Repeat("\n", breaks))
			}
		}
		breaks = 0
		b.WriteString(line)
	}
	b.WriteString(strings.Repeat("\n", trailing))
	return b.String()
}

// unfold puts folded values in place of their placeholders in every scalar (keys included)
// of a parsed document. A scalar that now spans lines is written in the literal style when
// the document is encoded again.
func unfold(n *yaml.Node, folded []string) {
	if n == nil {
		return
	}
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "__skyfleet_folded_") {
		n.Value = placeholderPattern.ReplaceAllStringFunc(n.Value, func(m string) string {
			i, err := strconv.Atoi(placeholderPattern.FindStringSubmatch(m)[1])
			if err != nil || i >= len(folded) {
				return m
			}
			return folded[i]
		})
		if strings.Contains(n.Value, "\n") {
			n.Style = yaml.LiteralStyle
		}
	}
	for _, c := range n.Content {
		unfold(c, folded)
	}
}
