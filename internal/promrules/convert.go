package promrules

import (
	"bytes"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// Renames maps node_exporter metric names of the 0.1x releases (which the 1.x-era rule files
// use) to their names since node_exporter 0.16.
var Renames = map[string]string{
	"node_cpu":                      "node_cpu_seconds_total",
	"node_memory_MemFree":           "node_memory_MemFree_bytes",
	"node_memory_MemTotal":          "node_memory_MemTotal_bytes",
	"node_memory_MemAvailable":      "node_memory_MemAvailable_bytes",
	"node_memory_Buffers":           "node_memory_Buffers_bytes",
	"node_memory_Cached":            "node_memory_Cached_bytes",
	"node_memory_SwapFree":          "node_memory_SwapFree_bytes",
	"node_memory_SwapTotal":         "node_memory_SwapTotal_bytes",
	"node_filesystem_free":          "node_filesystem_free_bytes",
	"node_filesystem_size":          "node_filesystem_size_bytes",
	"node_filesystem_avail":         "node_filesystem_avail_bytes",
	"node_network_receive_bytes":    "node_network_receive_bytes_total",
	"node_network_transmit_bytes":   "node_network_transmit_bytes_total",
	"node_network_receive_packets":  "node_network_receive_packets_total",
	"node_network_transmit_packets": "node_network_transmit_packets_total",
	"node_disk_bytes_read":          "node_disk_read_bytes_total",
	"node_disk_bytes_written":       "node_disk_written_bytes_total",
	"node_disk_reads_completed":     "node_disk_reads_completed_total",
	"node_disk_writes_completed":    "node_disk_writes_completed_total",
	"node_disk_io_time_ms":          "node_disk_io_time_seconds_total",
	"node_boot_time":                "node_boot_time_seconds",
	"node_time":                     "node_time_seconds",
	"node_context_switches":         "node_context_switches_total",
	"node_forks":                    "node_forks_total",
	"node_intr":                     "node_intr_total",
	"node_textfile_mtime":           "node_textfile_mtime_seconds",
}

// Error is a conversion error at a line of the input file.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Errors is every error found in one file.
type Errors []*Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Warning is something the user should look at in the converted output.
type Warning struct {
	File string
	Line int
	Msg  string
}

func (w Warning) String() string { return fmt.Sprintf("%s:%d: warning: %s", w.File, w.Line, w.Msg) }

type rule struct {
	line        int
	record      string
	recordLabel map[string]string
	alert       string
	expr        string
	exprLine    int
	forDur      string
	labels      map[string]string
	annotations map[string]string
}

// Convert turns a 1.x rule file into a 2.x rule file with one group named after the file.
// Template placeholders such as `{{infra_id}}` in label values are kept for skyfleet to render.
func Convert(file string, src []byte) ([]byte, []Warning, error) {
	c := &converter{file: file}
	rules := c.parse(string(src))
	for _, r := range rules {
		r.expr = c.rename(r.expr, r.exprLine)
	}
	if len(c.errs) > 0 {
		return nil, c.warns, c.errs
	}
	out, err := render(groupName(file), rules)
	if err != nil {
		return nil, c.warns, err
	}
	if err := validate(file, out); err != nil {
		return nil, c.warns, err
	}
	return out, c.warns, nil
}

func groupName(file string) string {
	base := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	if base == "" || base == "." || base == "-" {
		return "converted"
	}
	return base
}

type converter struct {
	file  string
	errs  Errors
	warns []Warning
}

func (c *converter) errorf(line int, format string, args ...any) {
	c.errs = append(c.errs, &Error{File: c.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (c *converter) warnf(line int, format string, args ...any) {
	c.warns = append(c.warns, Warning{File: c.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

var (
	alertStart  = regexp.MustCompile(`^ALERT\s+([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\s+(.*))?$`)
	recordStart = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s*=\s*(.*)$`)
	keyword     = regexp.MustCompile(`^(IF|FOR|LABELS|ANNOTATIONS|SUMMARY|DESCRIPTION|RUNBOOK)\b\s*(.*)$`)
)

// statement is one rule's text: its first line number and its lines.
type statement struct {
	line  int
	lines []string
}

// split cuts the file into statements: a statement starts at a line beginning in column one
// with ALERT or a recording rule `name =`; indented lines continue it.
func (c *converter) split(src string) []statement {
	var out []statement
	for i, raw := range strings.Split(src, "\n") {
		n := i + 1
		line := strings.TrimRight(raw, " \t\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indented := line[0] == ' ' || line[0] == '\t'
		if !indented && (alertStart.MatchString(trimmed) || recordStart.MatchString(trimmed) || strings.HasPrefix(trimmed, "ALERT")) {
			out = append(out, statement{line: n, lines: []string{trimmed}})
			continue
		}
		if len(out) == 0 {
			c.errorf(n, "unexpected %q: a rule starts with `ALERT name` or `name = expression`", clip(trimmed))
			continue
		}
		out[len(out)-1].lines = append(out[len(out)-1].lines, trimmed)
	}
	return out
}

func (c *converter) parse(src string) []*rule {
	var rules []*rule
	seen := map[string]int{}
	for _, st := range c.split(src) {
		var r *rule
		if strings.HasPrefix(st.lines[0], "ALERT") {
			r = c.parseAlert(st)
		} else {
			r = c.parseRecord(st)
		}
		if r == nil {
			continue
		}
		name := r.alert + r.record
		if r.alert != "" {
			if prev, dup := seen["ALERT "+name]; dup {
				c.warnf(st.line, "alert %q is defined again (first at line %d); both are kept", name, prev)
			}
			seen["ALERT "+name] = st.line
		}
		rules = append(rules, r)
	}
	return rules
}

func (c *converter) parseRecord(st statement) *rule {
	m := recordStart.FindStringSubmatch(st.lines[0])
	if m == nil {
		c.errorf(st.line, "cannot read recording rule %q: want `name = expression`", clip(st.lines[0]))
		return nil
	}
	r := &rule{line: st.line, record: m[1], exprLine: st.line}
	if m[2] != "" {
		r.recordLabel = c.labelSet(m[2], st.line, "labels of "+m[1])
	}
	r.expr = strings.TrimSpace(strings.Join(append([]string{m[3]}, st.lines[1:]...), " "))
	if r.expr == "" {
		c.errorf(st.line, "recording rule %q has no expression", m[1])
		return nil
	}
	return r
}

func (c *converter) parseAlert(st statement) *rule {
	m := alertStart.FindStringSubmatch(st.lines[0])
	if m == nil {
		c.errorf(st.line, "cannot read %q: want `ALERT name` on a line of its own, the name made of letters, digits, _ and :", clip(st.lines[0]))
		return nil
	}
	r := &rule{line: st.line, alert: m[1]}
	body := st.lines[1:]
	if rest := strings.TrimSpace(m[2]); rest != "" {
		// `ALERT name IF expr FOR 1m` on one line.
		body = append([]string{rest}, body...)
	}
	first := st.line + 1
	if m[2] != "" {
		first = st.line
	}
	// Join the body and cut it at the keywords; braces and quotes may span lines.
	var section string
	var buf []string
	var bufLine int
	flush := func() {
		text := strings.TrimSpace(strings.Join(buf, " "))
		switch section {
		case "IF":
			r.expr, r.exprLine = c.splitInlineFor(r, text, bufLine)
		case "FOR":
			r.forDur = c.duration(text, bufLine)
		case "LABELS":
			r.labels = c.labelSet(text, bufLine, "LABELS")
		case "ANNOTATIONS":
			anns := c.labelSet(text, bufLine, "ANNOTATIONS")
			if r.annotations == nil {
				r.annotations = map[string]string{}
			}
			for k, v := range anns {
				r.annotations[k] = v
			}
		case "SUMMARY", "DESCRIPTION", "RUNBOOK":
			if r.annotations == nil {
				r.annotations = map[string]string{}
			}
			r.annotations[strings.ToLower(section)] = c.quoted(text, bufLine, section)
		}
		buf = nil
	}
	depth := 0
	for i, line := range body {
		n := first + i
		if depth == 0 {
			if km := keyword.FindStringSubmatch(line); km != nil {
				if section != "" {
					flush()
				}
				section, bufLine = km[1], n
				line = km[2]
			} else if section == "" {
				c.errorf(n, "unexpected %q in alert %q: want IF, FOR, LABELS or ANNOTATIONS", clip(line), r.alert)
				return nil
			} else if section == "LABELS" && looksLikeAnnotations(line) {
				c.errorf(n, "%q follows LABELS {…} in alert %q; annotations need their own `ANNOTATIONS {` line", clip(line), r.alert)
				return nil
			}
		}
		depth += strings.Count(line, "{") - strings.Count(line, "}")
		buf = append(buf, line)
	}
	if section != "" {
		flush()
	}
	if r.expr == "" {
		c.errorf(st.line, "alert %q has no IF expression", r.alert)
		return nil
	}
	return r
}

func looksLikeAnnotations(line string) bool {
	l := strings.TrimSpace(line)
	return strings.HasPrefix(l, "summary") || strings.HasPrefix(l, "description")
}

// splitInlineFor handles `IF expr FOR 1m` written on one line.
func (c *converter) splitInlineFor(r *rule, text string, line int) (string, int) {
	if i := strings.LastIndex(text, " FOR "); i > 0 && !strings.ContainsAny(text[i:], "{}\"") {
		r.forDur = c.duration(strings.TrimSpace(text[i+5:]), line)
		return strings.TrimSpace(text[:i]), line
	}
	return text, line
}

func (c *converter) duration(text string, line int) string {
	d, err := model.ParseDuration(strings.TrimSpace(text))
	if err != nil {
		c.errorf(line, "FOR %q is not a duration (want e.g. 30s, 1m, 2h)", text)
		return ""
	}
	return d.String()
}

func (c *converter) quoted(text string, line int, what string) string {
	text = strings.TrimSpace(text)
	if len(text) >= 2 && text[0] == '"' && text[len(text)-1] == '"' {
		return unescape(text[1 : len(text)-1])
	}
	c.errorf(line, "%s %s is not a double-quoted string", what, clip(text))
	return ""
}

// labelSet reads `{name = "value", name2="value"}` (1.x syntax; also `:` is not accepted).
func (c *converter) labelSet(text string, line int, what string) map[string]string {
	text = strings.TrimSpace(text)
	if !strings.HasPrefix(text, "{") || !strings.HasSuffix(text, "}") {
		c.errorf(line, "%s must be a set in braces like {severity=\"page\"}, got %s", what, clip(text))
		return nil
	}
	body := text[1 : len(text)-1]
	out := map[string]string{}
	for len(strings.TrimSpace(body)) > 0 {
		body = strings.TrimLeft(body, " \t,")
		if body == "" {
			break
		}
		eq := strings.IndexByte(body, '=')
		if eq < 0 {
			c.errorf(line, "%s: %s has no `= \"value\"`", what, clip(body))
			return out
		}
		name := strings.TrimSpace(body[:eq])
		if !model.LegacyValidation.IsValidLabelName(name) {
			c.errorf(line, "%s: %q is not a valid label name", what, name)
			return out
		}
		rest := strings.TrimLeft(body[eq+1:], " \t")
		if !strings.HasPrefix(rest, `"`) {
			c.errorf(line, "%s: value of %s must be a double-quoted string", what, name)
			return out
		}
		end := closingQuote(rest)
		if end < 0 {
			c.errorf(line, "%s: value of %s has no closing quote", what, name)
			return out
		}
		out[name] = unescape(rest[1:end])
		body = rest[end+1:]
	}
	return out
}

func closingQuote(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

func unescape(s string) string {
	return strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\n`, "\n").Replace(s)
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// rename replaces renamed node_exporter metric names in expr, keeping the rest of the text as
// written, and reports each replacement as a warning. Template placeholders are masked while
// parsing so that `{{infra_id}}` inside a label value does not upset the PromQL parser.
func (c *converter) rename(expr string, line int) string {
	p := parser.NewParser(parser.Options{})
	ast, err := p.ParseExpr(expr)
	if err != nil {
		c.errorf(line, "expression %q: %v", clip(expr), err)
		return expr
	}
	type edit struct {
		start, end int
		to         string
	}
	var edits []edit
	parser.Inspect(ast, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		to, ok := Renames[vs.Name]
		if !ok {
			return nil
		}
		start := int(vs.PosRange.Start)
		if start+len(vs.Name) <= len(expr) && expr[start:start+len(vs.Name)] == vs.Name {
			edits = append(edits, edit{start, start + len(vs.Name), to})
			c.warnf(line, "metric %s was renamed %s in node_exporter 0.16; the rule now uses the new name", vs.Name, to)
		}
		return nil
	})
	sort.Slice(edits, func(i, j int) bool { return edits[i].start > edits[j].start })
	for _, e := range edits {
		expr = expr[:e.start] + e.to + expr[e.end:]
	}
	return expr
}

// render writes the 2.x YAML with keys in Prometheus' documented order.
func render(group string, rules []*rule) ([]byte, error) {
	seq := &yaml.Node{Kind: yaml.SequenceNode}
	for _, r := range rules {
		m := &yaml.Node{Kind: yaml.MappingNode}
		add := func(k string, v *yaml.Node) { m.Content = append(m.Content, str(k), v) }
		if r.record != "" {
			add("record", str(r.record))
			add("expr", str(r.expr))
			if len(r.recordLabel) > 0 {
				add("labels", strMap(r.recordLabel))
			}
		} else {
			add("alert", str(r.alert))
			add("expr", str(r.expr))
			if r.forDur != "" && r.forDur != "0s" {
				add("for", str(r.forDur))
			}
			if len(r.labels) > 0 {
				add("labels", strMap(r.labels))
			}
			if len(r.annotations) > 0 {
				add("annotations", strMap(r.annotations))
			}
		}
		seq.Content = append(seq.Content, m)
	}
	g := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{str("name"), str(group), str("rules"), seq}}
	doc := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{str("groups"), {Kind: yaml.SequenceNode, Content: []*yaml.Node{g}}}}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("write rules: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("write rules: %w", err)
	}
	return buf.Bytes(), nil
}

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func strMap(m map[string]string) *yaml.Node {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range keys {
		n.Content = append(n.Content, str(k), str(m[k]))
	}
	return n
}

// placeholder matches the Jinja2 placeholders skyfleet renders before Prometheus reads the file.
var placeholder = regexp.MustCompile(`\{\{\s*[a-zA-Z_][a-zA-Z0-9_.]*\s*\}\}`)

// validate runs Prometheus' own rule-file parser over out, with skyfleet's placeholders
// replaced by a dummy value (Prometheus would read `{{infra_id}}` as a template function).
func validate(file string, out []byte) error {
	masked := placeholder.ReplaceAllFunc(out, func(b []byte) []byte {
		if bytes.Contains(b, []byte("$")) {
			return b
		}
		return []byte("placeholder")
	})
	_, errs := rulefmt.Parse(masked, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		var es Errors
		for _, e := range errs {
			es = append(es, &Error{File: file, Line: 0, Msg: "converted rules do not validate: " + e.Error()})
		}
		return es
	}
	return nil
}
