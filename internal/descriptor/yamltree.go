package descriptor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Limits that keep hostile input from taking much time or memory. A descriptor that hits
// one is refused with an error that names the limit.
const (
	// MaxFileSize is the largest descriptor, node definition or imported file read (4 MiB).
	MaxFileSize = 4 << 20
	// MaxDepth is the deepest nesting of mappings and lists, counted after aliases and
	// imports are resolved.
	MaxDepth = 100
	// MaxAliasNodes bounds how many nodes may be produced by expanding aliases in one parse.
	// A "billion laughs" document reaches it after a few milliseconds of work.
	MaxAliasNodes = 100_000
	// MaxImports bounds how many !yaml_import and !text_import tags one parse resolves.
	MaxImports = 64
	// MaxImportDepth bounds how deeply imported files may import further files.
	MaxImportDepth = 8
)

// ImportOptions says whether and how !yaml_import and !text_import tags are resolved.
type ImportOptions struct {
	// BaseDir is the directory that relative file:// URLs of the parsed file are resolved
	// against. Empty means the directory of the file name given to the parser. Files imported
	// from imported files resolve their own imports relative to their own directory.
	BaseDir string
	// AllowImports enables the import tags. When false (YAML received over the API, which
	// must not read the server's files) an import tag is an error.
	AllowImports bool
}

// node is a YAML node with aliases, merge keys and imports resolved, carrying the file
// position it came from. A node whose kind is 0 is broken: its problem was already reported
// and checks skip it.
type node struct {
	kind  yaml.Kind
	tag   string // short tag: !!str, !!int, !!float, !!bool, !!null, !!map, !!seq, ...
	value string
	plain bool // a scalar written without quotes or tag
	pos   Pos
	// content holds a sequence's items, or a mapping's keys and values alternately.
	content []*node
}

func (n *node) broken() bool { return n == nil || n.kind == 0 }

func (n *node) isNull() bool { return n.kind == yaml.ScalarNode && n.tag == "!!null" }

// source is one file being converted.
type source struct {
	file    string // name used in positions
	baseDir string // directory its relative imports resolve against
}

// loader converts yaml.Node trees into node trees, resolving aliases, merge keys and
// imports within the limits above.
type loader struct {
	opts        ImportOptions
	d           *diag
	aliasNodes  int
	imports     int
	fatal       bool         // a limit was hit: stop converting, the one error says why
	importStack []string     // absolute paths of the files being imported, outermost first
	expanding   []*yaml.Node // anchors whose aliases are being expanded
}

// load parses data as the top-level file and returns its root, or a broken node when the
// file could not be read as YAML at all. An empty document yields a null node.
func load(file string, data []byte, opts ImportOptions, d *diag) *node {
	base := opts.BaseDir
	if base == "" {
		base = filepath.Dir(file)
	}
	l := &loader{opts: opts, d: d}
	root := l.parse(source{file: file, baseDir: base}, data, 0)
	if l.fatal {
		// Conversion stopped part way: checking the truncated tree would only add noise.
		return &node{}
	}
	return root
}

// parse decodes one YAML file and converts its single document.
func (l *loader) parse(src source, data []byte, depth int) *node {
	filePos := Pos{File: src.file}
	if len(data) > MaxFileSize {
		l.d.errorf(filePos, "", "", "file is %d bytes; the limit is %d bytes (4 MiB)", len(data), MaxFileSize)
		return &node{}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &node{kind: yaml.ScalarNode, tag: "!!null", pos: Pos{File: src.file, Line: 1, Col: 1}}
		}
		l.yamlError(src, err)
		return &node{}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		l.yamlError(src, err)
		return &node{}
	default:
		l.d.errorf(Pos{File: src.file, Line: extra.Line, Col: extra.Column}, "", "",
			"file holds more than one YAML document; only one is allowed")
		return &node{}
	}
	if len(doc.Content) == 0 {
		return &node{kind: yaml.ScalarNode, tag: "!!null", pos: Pos{File: src.file, Line: 1, Col: 1}}
	}
	if a := aliasBomb(doc.Content[0]); a != nil {
		return l.fatalf(Pos{File: src.file, Line: a.Line, Col: a.Column},
			"alias expansion limit exceeded: aliases expand to more than %d nodes", MaxAliasNodes)
	}
	return l.convert(doc.Content[0], src, depth, false)
}

// aliasBomb measures, without expanding anything, how many nodes the document's aliases
// expand to, and returns the alias at which the total passes MaxAliasNodes (nil if it never
// does). Sizes are memoised per node, so the walk is linear in the document's size and a
// "billion laughs" document is refused in microseconds.
func aliasBomb(root *yaml.Node) *yaml.Node {
	const ceiling = MaxAliasNodes + 1
	memo := map[*yaml.Node]int{}
	var size func(n *yaml.Node) int
	size = func(n *yaml.Node) int {
		if s, ok := memo[n]; ok {
			return s
		}
		memo[n] = 0 // an alias back into a node being measured counts nothing here: convert reports it
		s := 1
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			s = size(n.Alias)
		}
		for _, c := range n.Content {
			s = min(s+size(c), ceiling)
		}
		memo[n] = s
		return s
	}
	var found *yaml.Node
	expanded := 0
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if found != nil {
			return
		}
		if n.Kind == yaml.AliasNode {
			if n.Alias != nil {
				expanded = min(expanded+size(n.Alias), ceiling)
			}
			if expanded > MaxAliasNodes {
				found = n
			}
			return
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(root)
	return found
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

var yamlContextHints = map[string]string{
	"did not find expected '-' indicator": "in the list that starts on this line: a line below it is not indented like its items",
	"did not find expected key":           "in the mapping that starts on this line: a line below it is not indented like its keys",
	"did not find expected ',' or ']'":    "in the [...] list that starts on this line",
	"did not find expected ',' or '}'":    "in the {...} mapping that starts on this line",
	"did not find expected node content":  "in the value that starts on this line",
}

// yamlError reports a YAML syntax error at the line the parser names (it gives no column).
func (l *loader) yamlError(src source, err error) {
	msg := err.Error()
	pos := Pos{File: src.file}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		pos.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
		// For these errors the parser names the line where the enclosing collection
		// starts, not the offending line: say so, so that the user looks below it.
		if hint, ok := yamlContextHints[msg]; ok {
			msg += " (" + hint + ")"
		}
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	l.d.errorf(pos, "", "", "invalid YAML: %s", msg)
}

// fatalf reports a hit limit and stops all further conversion.
func (l *loader) fatalf(pos Pos, format string, args ...any) *node {
	if !l.fatal {
		l.d.errorf(pos, "", "", format, args...)
	}
	l.fatal = true
	return &node{}
}

// standardTags are the YAML core tags a descriptor may use.
var standardTags = []string{"!!str", "!!int", "!!float", "!!bool", "!!null", "!!timestamp", "!!binary", "!!merge"}

const (
	tagYAMLImport = "!yaml_import"
	tagTextImport = "!text_import"
)

func (l *loader) convert(yn *yaml.Node, src source, depth int, inAlias bool) *node {
	if l.fatal {
		return &node{}
	}
	pos := Pos{File: src.file, Line: yn.Line, Col: yn.Column}
	if depth > MaxDepth {
		return l.fatalf(pos, "nesting depth limit exceeded: more than %d levels of mappings and lists", MaxDepth)
	}
	if inAlias {
		l.aliasNodes++
		if l.aliasNodes > MaxAliasNodes {
			return l.fatalf(pos, "alias expansion limit exceeded: aliases expand to more than %d nodes", MaxAliasNodes)
		}
	}
	tag := yn.ShortTag()
	switch yn.Kind {
	case yaml.AliasNode:
		if yn.Alias == nil {
			l.d.errorf(pos, "", "*"+yn.Value, "unknown anchor %q", yn.Value)
			return &node{}
		}
		if slices.Contains(l.expanding, yn.Alias) {
			return l.fatalf(pos, "alias *%s refers to a node that contains it", yn.Value)
		}
		l.expanding = append(l.expanding, yn.Alias)
		n := l.convert(yn.Alias, src, depth, true)
		l.expanding = l.expanding[:len(l.expanding)-1]
		return n
	case yaml.ScalarNode:
		if tag == tagYAMLImport || tag == tagTextImport {
			l.d.errorf(pos, "", yn.Value, "%s takes a mapping {url: file://PATH}, not the scalar %q", tag, yn.Value)
			return &node{}
		}
		if !slices.Contains(standardTags, tag) {
			l.d.errorf(pos, "", yn.Value, "unknown tag %s (allowed: !yaml_import, !text_import and the YAML core tags)", tag)
			return &node{}
		}
		if tag == "!!binary" {
			l.d.errorf(pos, "", "", "binary values (!!binary) are not supported; use a string")
			return &node{}
		}
		return &node{kind: yaml.ScalarNode, tag: tag, value: yn.Value, pos: pos, plain: yn.Style == 0}
	case yaml.SequenceNode:
		if tag != "!!seq" {
			l.d.errorf(pos, "", "", "unknown tag %s on a list (allowed: none)", tag)
			return &node{}
		}
		n := &node{kind: yaml.SequenceNode, tag: tag, pos: pos, content: make([]*node, 0, len(yn.Content))}
		for _, c := range yn.Content {
			n.content = append(n.content, l.convert(c, src, depth+1, inAlias))
		}
		return n
	case yaml.MappingNode:
		switch tag {
		case tagYAMLImport, tagTextImport:
			return l.importTag(yn, tag, src, depth, pos)
		case "!!map":
		default:
			l.d.errorf(pos, "", "", "unknown tag %s (allowed: !yaml_import, !text_import)", tag)
			return &node{}
		}
		return l.mapping(yn, src, depth, inAlias, pos)
	default:
		l.d.errorf(pos, "", "", "unexpected YAML node")
		return &node{}
	}
}

// mapping converts a mapping, checking for duplicate keys and applying merge keys (<<):
// explicit keys win over merged ones, and earlier merged mappings win over later ones.
func (l *loader) mapping(yn *yaml.Node, src source, depth int, inAlias bool, pos Pos) *node {
	n := &node{kind: yaml.MappingNode, tag: "!!map", pos: pos, content: make([]*node, 0, len(yn.Content))}
	seen := map[string]*node{}
	var merges []*node
	for i := 0; i+1 < len(yn.Content); i += 2 {
		k := l.convert(yn.Content[i], src, depth+1, inAlias)
		v := l.convert(yn.Content[i+1], src, depth+1, inAlias)
		if k.broken() {
			continue
		}
		if k.kind != yaml.ScalarNode {
			l.d.errorf(k.pos, "", "", "a mapping key must be a plain value, not a %s", describe(k))
			continue
		}
		if k.tag == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if first, dup := seen[k.value]; dup {
			l.d.errorf(k.pos, "", k.value, "duplicate key %q (first at line %d)", k.value, first.pos.Line)
			continue
		}
		seen[k.value] = k
		n.content = append(n.content, k, v)
	}
	for _, m := range merges {
		var srcs []*node
		switch {
		case m.broken():
		case m.kind == yaml.MappingNode:
			srcs = []*node{m}
		case m.kind == yaml.SequenceNode && !slices.ContainsFunc(m.content, func(c *node) bool { return !c.broken() && c.kind != yaml.MappingNode }):
			srcs = m.content
		default:
			l.d.errorf(m.pos, "", "", "a merge key (<<) takes a mapping or a list of mappings, not %s", describe(m))
		}
		for _, s := range srcs {
			if s.broken() {
				continue
			}
			for i := 0; i+1 < len(s.content); i += 2 {
				if _, ok := seen[s.content[i].value]; ok {
					continue
				}
				seen[s.content[i].value] = s.content[i]
				n.content = append(n.content, s.content[i], s.content[i+1])
			}
		}
	}
	return n
}

// importTag resolves !yaml_import {url: file://PATH} and !text_import {url: file://PATH}.
func (l *loader) importTag(yn *yaml.Node, tag string, src source, depth int, pos Pos) *node {
	if !l.opts.AllowImports {
		l.d.errorf(pos, "", "", "%s is not allowed here: a descriptor sent to the server must be self-contained (import the files on the client, e.g. with skyfleet import)", tag)
		return &node{}
	}
	var url *yaml.Node
	for i := 0; i+1 < len(yn.Content); i += 2 {
		k, v := yn.Content[i], yn.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "url" && url == nil {
			url = v
			continue
		}
		l.d.errorf(Pos{File: src.file, Line: k.Line, Col: k.Column}, "", k.Value,
			"unknown key %q in %s (allowed: url)", k.Value, tag)
		return &node{}
	}
	if url == nil || url.Kind != yaml.ScalarNode || url.ShortTag() != "!!str" {
		l.d.errorf(pos, "", "", "%s needs a url: write it as %s {url: file://PATH}", tag, tag)
		return &node{}
	}
	rel, ok := strings.CutPrefix(url.Value, "file://")
	if !ok {
		l.d.errorf(pos, "", url.Value, "%s url %q: unsupported scheme; only file:// URLs are supported", tag, url.Value)
		return &node{}
	}
	if rel == "" {
		l.d.errorf(pos, "", url.Value, "%s url %q names no file; write file://PATH", tag, url.Value)
		return &node{}
	}
	path := rel
	if !filepath.IsAbs(path) {
		path = filepath.Join(src.baseDir, rel)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = filepath.Clean(path)
	}
	if i := slices.Index(l.importStack, abs); i >= 0 {
		chain := append(slices.Clone(l.importStack[i:]), abs)
		for j := range chain {
			chain[j] = filepath.Base(chain[j])
		}
		l.d.errorf(pos, "", url.Value, "import cycle: %s", strings.Join(chain, " -> "))
		return &node{}
	}
	if len(l.importStack) >= MaxImportDepth {
		return l.fatalf(pos, "import depth limit exceeded: imports nested more than %d files deep", MaxImportDepth)
	}
	l.imports++
	if l.imports > MaxImports {
		return l.fatalf(pos, "import limit exceeded: more than %d imports", MaxImports)
	}
	data, err := readLimited(path)
	if err != nil {
		l.d.errorf(pos, "", url.Value, "%s: cannot read %s: %v", tag, path, err)
		return &node{}
	}
	if tag == tagTextImport {
		if !utf8.Valid(data) {
			l.d.errorf(pos, "", url.Value, "%s: %s is not UTF-8 text", tag, path)
			return &node{}
		}
		return &node{kind: yaml.ScalarNode, tag: "!!str", value: string(data), pos: pos}
	}
	l.importStack = append(l.importStack, abs)
	n := l.parse(source{file: path, baseDir: filepath.Dir(path)}, data, depth)
	l.importStack = l.importStack[:len(l.importStack)-1]
	return n
}

// readLimited reads a regular file of at most MaxFileSize bytes. It refuses devices, pipes
// and directories, which could block or never end.
func readLimited(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, unwrapPathError(err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("file is %d bytes; the limit is %d bytes (4 MiB)", st.Size(), MaxFileSize)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, unwrapPathError(err)
	}
	defer func() { _ = f.Close() }() // read-only
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, unwrapPathError(err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("file is larger than the limit of %d bytes (4 MiB)", MaxFileSize)
	}
	return data, nil
}

// unwrapPathError drops the operation and path from an *fs.PathError, since messages name
// the file themselves.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// describe names a node's kind and value for messages: `"80" (a string)`, `a list`.
func describe(n *node) string {
	switch n.kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		if len(n.content) == 1 {
			return "a list of 1 item"
		}
		return fmt.Sprintf("a list of %d items", len(n.content))
	case yaml.ScalarNode:
		switch n.tag {
		case "!!str":
			return fmt.Sprintf("the string %q", n.value)
		case "!!int":
			return "the integer " + n.value
		case "!!float":
			return "the number " + n.value
		case "!!bool":
			return "the boolean " + n.value
		case "!!null":
			return "null"
		default:
			return fmt.Sprintf("%q", n.value)
		}
	}
	return "an invalid value"
}

// get returns the value of key in mapping n, or nil.
func (n *node) get(key string) *node {
	if n.broken() || n.kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.content); i += 2 {
		if n.content[i].value == key {
			return n.content[i+1]
		}
	}
	return nil
}
