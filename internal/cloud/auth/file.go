package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/skyfleet/skyfleet/internal/cloud"
)

// Section names of an auth_data.yaml file.
const (
	// SectionResource holds the credentials of resource (cloud) plugins.
	SectionResource = "resource"
	// SectionConfigManagement holds the credentials of configuration managers (for example
	// Chef); skyfleet parses it for compatibility.
	SectionConfigManagement = "config_management"
)

// Sentinel errors of credential selection; test for them with errors.Is.
var (
	// ErrNoCredentials means that no entry of the section matches the resource.
	ErrNoCredentials = errors.New("no credentials")
	// ErrAmbiguousCredentials means that more than one entry matches the resource.
	ErrAmbiguousCredentials = errors.New("ambiguous credentials")
)

// maxImportDepth bounds nested !yaml_import chains, so that a file importing itself fails
// with an error instead of recursing forever.
const maxImportDepth = 8

// Option configures a File.
type Option func(*File)

// WithLogger sets the logger that receives the warning about a file readable by other users.
// Without it, nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(f *File) {
		if l != nil {
			f.logger = l
		}
	}
}

// File is a loaded auth_data.yaml. It re-reads the file when its modification time or size
// changes (Occopus re-reads it on every lookup; a stat is enough to notice an edit), so a user
// can fix credentials without restarting skyfleet. A File is safe for concurrent use.
type File struct {
	path   string
	logger *slog.Logger

	mu       sync.Mutex
	stamp    fileStamp
	parsed   *parsed
	warnedAt os.FileMode // the mode last warned about, so an unchanged file warns once
}

type fileStamp struct {
	modTime time.Time
	size    int64
	mode    os.FileMode
}

type parsed struct {
	sections map[string][]entry
}

// entry is one list item of a section: its filter keys and its auth_data mapping.
type entry struct {
	index  int
	line   int
	column int
	filter map[string]any
	auth   map[string]any
}

// LoadFile reads and checks the auth_data.yaml at path. Every problem in the file is
// reported at once, each as path:line:column with the key path; no error ever contains a
// credential value.
func LoadFile(path string, opts ...Option) (*File, error) {
	f := &File{path: path, logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(f)
	}
	if _, err := f.current(); err != nil {
		return nil, err
	}
	return f, nil
}

// Path returns the file's path as given to LoadFile.
func (f *File) Path() string { return f.path }

// current returns the parsed file, re-reading it when it changed since the last read.
func (f *File) current() (*parsed, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fi, err := os.Stat(f.path)
	if err != nil {
		return nil, fmt.Errorf("read auth data: %w", err)
	}
	st := fileStamp{modTime: fi.ModTime(), size: fi.Size(), mode: fi.Mode().Perm()}
	if f.parsed != nil && st == f.stamp {
		return f.parsed, nil
	}
	f.warnPermissions(st.mode)
	data, err := os.ReadFile(f.path)
	if err != nil {
		return nil, fmt.Errorf("read auth data: %w", err)
	}
	p, err := parse(f.path, data)
	if err != nil {
		return nil, err
	}
	f.parsed, f.stamp = p, st
	return p, nil
}

// warnPermissions logs (once per mode) when the file can be read by its group or others.
// It names the file and the mode, never the content.
func (f *File) warnPermissions(mode os.FileMode) {
	if mode&0o077 == 0 || mode == f.warnedAt {
		return
	}
	f.warnedAt = mode
	f.logger.Warn("auth data file is accessible by other users; restrict it with chmod 600",
		"file", f.path, "mode", fmt.Sprintf("%#o", uint32(mode)))
}

// Select returns the credentials of section (SectionResource or SectionConfigManagement)
// whose filter keys all appear in resource with equal values (compared deeply, numbers by
// value). Exactly one entry must match: none is an error wrapping ErrNoCredentials, more
// than one an error wrapping ErrAmbiguousCredentials that names the entries' lines. The
// messages name only non-secret resource keys (type, endpoint, region, project) and never a
// credential value.
func (f *File) Select(section string, resource map[string]any) (*cloud.Credentials, error) {
	if section != SectionResource && section != SectionConfigManagement {
		return nil, fmt.Errorf("select credentials: unknown section %q (allowed: %s, %s)",
			section, SectionConfigManagement, SectionResource)
	}
	p, err := f.current()
	if err != nil {
		return nil, fmt.Errorf("select credentials: %w", err)
	}
	var matches []entry
	var near []string
	for _, e := range p.sections[section] {
		differ := differingKeys(e.filter, resource)
		if len(differ) == 0 {
			matches = append(matches, e)
			continue
		}
		// An entry for the same type that differs only in a few keys is the likely intent;
		// naming those keys (not their values) tells the user what to fix.
		if t, ok := e.filter["type"]; ok && equal(t, resource["type"]) {
			near = append(near, fmt.Sprintf("line %d differs in %s", e.line, strings.Join(differ, ", ")))
		}
	}
	switch len(matches) {
	case 1:
		return cloud.NewCredentials(copyMap(matches[0].auth)), nil
	case 0:
		hint := ""
		if len(near) > 0 {
			hint = " (" + strings.Join(near, "; ") + ")"
		}
		return nil, fmt.Errorf("select credentials: %w in %s match %s %s%s",
			ErrNoCredentials, f.path, section, describe(resource), hint)
	default:
		lines := make([]string, len(matches))
		for i, m := range matches {
			lines[i] = fmt.Sprint(m.line)
		}
		return nil, fmt.Errorf("select credentials: %w: %d entries of %s in %s match %s %s (lines %s); add a key such as endpoint to their filters to tell them apart",
			ErrAmbiguousCredentials, len(matches), section, f.path, section, describe(resource), strings.Join(lines, ", "))
	}
}

// differingKeys returns the filter keys that are absent from resource or have another value,
// sorted.
func differingKeys(filter, resource map[string]any) []string {
	var out []string
	for k, fv := range filter {
		rv, ok := resource[k]
		if !ok || !equal(fv, rv) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// publicKeys are the resource keys that identify a cloud without being secret; only these
// appear in error messages.
var publicKeys = []string{
	"type", "endpoint", "regionname", "region_name", "region", "project_id", "location",
	"resource_group", "origin", "image", "tag",
}

// describe renders the identifying, non-secret keys of a resource section, for example
// `{type: ec2, endpoint: https://ec2.eu-west-1.amazonaws.com}`.
func describe(resource map[string]any) string {
	var parts []string
	for _, k := range publicKeys {
		v, ok := resource[k]
		if !ok {
			continue
		}
		switch v.(type) {
		case string, bool, int, int64, float64, uint64:
			parts = append(parts, fmt.Sprintf("%s: %v", k, v))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// parse checks the document structure and resolves imports; all problems are joined.
func parse(path string, data []byte) (*parsed, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// yaml.v3 syntax errors carry a line and no document content.
		return nil, fmt.Errorf("parse auth data: %s:%s", path, syntaxMessage(data, err))
	}
	p := &parsed{sections: map[string][]entry{}}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return p, nil // an empty file holds no credentials
	}
	root := doc.Content[0]
	var errs []error
	bad := func(n *yaml.Node, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d:%d: %s", path, n.Line, n.Column, fmt.Sprintf(format, args...)))
	}
	if root.Kind != yaml.MappingNode {
		bad(root, "top level must be a mapping with the keys %s and %s", SectionConfigManagement, SectionResource)
		return nil, fmt.Errorf("parse auth data: %w", errors.Join(errs...))
	}
	dir := filepath.Dir(path)
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		name := k.Value
		if name != SectionResource && name != SectionConfigManagement {
			bad(k, "unknown key %q (allowed: %s, %s)", name, SectionConfigManagement, SectionResource)
			continue
		}
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			continue
		}
		if v.Kind != yaml.SequenceNode {
			bad(v, "%s: must be a list of entries, each with filter keys and an auth_data mapping", name)
			continue
		}
		for j, item := range v.Content {
			e, itemErrs := parseEntry(path, dir, fmt.Sprintf("%s[%d]", name, j), item)
			errs = append(errs, itemErrs...)
			if len(itemErrs) == 0 {
				e.index = j
				p.sections[name] = append(p.sections[name], e)
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("parse auth data: %w", errors.Join(errs...))
	}
	return p, nil
}

// parseEntry decodes one list item. Messages about the auth_data mapping describe its shape
// only, never its values.
func parseEntry(path, dir, where string, n *yaml.Node) (entry, []error) {
	var errs []error
	bad := func(at *yaml.Node, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d:%d: %s: %s", path, at.Line, at.Column, where, fmt.Sprintf(format, args...)))
	}
	e := entry{line: n.Line, column: n.Column, filter: map[string]any{}}
	if n.Kind != yaml.MappingNode {
		bad(n, "must be a mapping of filter keys and auth_data")
		return e, errs
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			bad(k, "keys must be strings")
			continue
		}
		if seen[k.Value] {
			bad(k, "key %q appears twice", k.Value)
			continue
		}
		seen[k.Value] = true
		if at, err := resolveImports(v, dir, 0); err != nil {
			bad(at, "%s: %v", k.Value, err)
			continue
		}
		if k.Value == "auth_data" {
			if v.Kind != yaml.MappingNode {
				bad(v, "auth_data must be a mapping of credential keys to values (for example accesskey: …, secretkey: …)")
				continue
			}
			var m map[string]any
			if err := v.Decode(&m); err != nil {
				// Decoding into map[string]any fails only on the key structure; say so
				// without echoing the decoder's text, which may quote values.
				bad(v, "auth_data must be a mapping with string keys")
				continue
			}
			e.auth = m
			continue
		}
		var val any
		if err := v.Decode(&val); err != nil {
			bad(v, "%s: cannot decode value: %v", k.Value, err)
			continue
		}
		e.filter[k.Value] = val
	}
	if !seen["auth_data"] && len(errs) == 0 {
		bad(n, "missing auth_data (each entry needs an auth_data mapping next to its filter keys)")
	}
	return e, errs
}

// resolveImports replaces !text_import and !yaml_import nodes in place. Paths are relative
// to dir, the importing file's directory; only the file:// scheme is supported, as in
// Occopus. On failure it returns the node that failed, for the error position.
func resolveImports(n *yaml.Node, dir string, depth int) (*yaml.Node, error) {
	switch n.Tag {
	case "!text_import", "!yaml_import":
		if depth >= maxImportDepth {
			return n, fmt.Errorf("%s nested more than %d deep (an import loop?)", n.Tag, maxImportDepth)
		}
		target, err := importPath(n, dir)
		if err != nil {
			return n, err
		}
		data, err := os.ReadFile(target)
		if err != nil {
			return n, fmt.Errorf("%s: %w", n.Tag, err)
		}
		if n.Tag == "!text_import" {
			*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: string(data), Line: n.Line, Column: n.Column}
			return nil, nil
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return n, fmt.Errorf("!yaml_import %s: %w", target, err)
		}
		if len(doc.Content) == 0 {
			*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
			return nil, nil
		}
		line, col := n.Line, n.Column
		*n = *doc.Content[0]
		if at, err := resolveImports(n, filepath.Dir(target), depth+1); err != nil {
			// Positions inside the imported file mean nothing in the importing one.
			return &yaml.Node{Line: line, Column: col}, fmt.Errorf("in %s line %d: %w", target, at.Line, err)
		}
		return nil, nil
	}
	for _, c := range n.Content {
		if at, err := resolveImports(c, dir, depth); err != nil {
			return at, err
		}
	}
	return nil, nil
}

// importPath extracts the file:// URL of an import node and makes it absolute.
func importPath(n *yaml.Node, dir string) (string, error) {
	if n.Kind != yaml.MappingNode {
		return "", fmt.Errorf("%s needs a mapping {url: file://PATH}", n.Tag)
	}
	var url string
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "url" {
			url = n.Content[i+1].Value
		}
	}
	if url == "" {
		return "", fmt.Errorf("%s needs a url key (url: file://PATH)", n.Tag)
	}
	p, ok := strings.CutPrefix(url, "file://")
	if !ok {
		return "", fmt.Errorf("%s url %q: only the file:// scheme is supported", n.Tag, url)
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	return p, nil
}

// lineRE matches yaml.v3's "line N: " position.
var lineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// syntaxMessage turns a yaml.v3 syntax error into "N: message". yaml.v3 reports the line
// where the enclosing block started (often line 1); the first line at which a prefix of the
// file stops parsing is where the user has to look. The message never quotes content.
func syntaxMessage(data []byte, err error) string {
	bare := lineRE.ReplaceAllString(err.Error(), "")
	lines := strings.SplitAfter(string(data), "\n")
	var n yaml.Node
	for k := 1; k <= len(lines) && k <= 5000; k++ {
		if yaml.Unmarshal([]byte(strings.Join(lines[:k], "")), &n) != nil {
			return fmt.Sprintf("%d: %s", k, bare)
		}
	}
	return " " + err.Error()
}
