package template

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestFoldLines(t *testing.T) {
	tests := []struct{ in, want string }{
		{"one line", "one line"},
		{"a\nb", "a b"},
		{"a  \n   b", "a b"},
		{"a\n\nb", "a\nb"},
		{"a\n\n\nb", "a\n\nb"},
		{"a\n \t\nb", "a\nb"},
		{"k1\n\nk2\n\nk3\n", "k1\nk2\nk3\n"},
		{"a\nb\n\n", "a b\n\n"},
		{"a\r\nb", "a b"},
		{"  indented first\nsecond", "  indented first second"},
	}
	for _, tt := range tests {
		if got := foldLines(tt.in); got != tt.want {
			t.Errorf("foldLines(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestCloudInitFoldsMultiLineValues renders a mapping template (an !yaml_import'ed
// #cloud-config) with values that span lines, as the kubernetes-cluster tutorial inserts a
// private key spaced with blank lines: the values arrive folded the way Occopus' quoted YAML
// dump folds them, and the rendered text is valid YAML, where inserting the raw lines into
// the dumped block scalars would break it.
func TestCloudInitFoldsMultiLineValues(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "occopus", "multiline_values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tmpl map[string]any
	if err := yaml.Unmarshal(src, &tmpl); err != nil {
		t.Fatal(err)
	}
	c := testContext()
	c.Variables = map[string]any{
		"key":       "-----BEGIN KEY-----\n\nAAAA\n\nBBBB\n\n-----END KEY-----\n",
		"two_lines": "x\ny",
		"one_line":  "plain",
	}
	out, warns, err := New(Options{}).CloudInit("multiline_values.yaml", tmpl, c)
	if err != nil {
		t.Fatalf("CloudInit: %v", err)
	}
	if len(warns) != 0 {
		t.Errorf("warnings %v", warns)
	}
	if !strings.HasPrefix(out, "#cloud-config\n") || strings.Count(out, "#cloud-config") != 1 {
		t.Errorf("output does not start with a single #cloud-config line:\n%s", out)
	}
	var got struct {
		WriteFiles []struct{ Path, Content, Permissions string } `yaml:"write_files"`
		Runcmd     []any                                         `yaml:"runcmd"`
	}
	if err := yaml.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("rendered text is not YAML: %v\n%s", err, out)
	}
	if want := "-----BEGIN KEY-----\nAAAA\nBBBB\n-----END KEY-----\n\n"; got.WriteFiles[0].Content != want {
		t.Errorf("key content = %q, want %q", got.WriteFiles[0].Content, want)
	}
	if got.WriteFiles[0].Permissions != "600" {
		t.Errorf("permissions = %q, want the string 600", got.WriteFiles[0].Permissions)
	}
	if want := "before x y after\nplain\n"; got.WriteFiles[1].Content != want {
		t.Errorf("motd content = %q, want %q", got.WriteFiles[1].Content, want)
	}
	if want := []any{[]any{"sh", "-c", "echo x y"}, "echo plain"}; !reflect.DeepEqual(got.Runcmd, want) {
		t.Errorf("runcmd = %#v, want %#v", got.Runcmd, want)
	}

	// A template given as text is rendered as text, as Occopus renders a !text_import: the
	// value's lines are written as they are (and, as in Jinja2, the template's final
	// newline is dropped).
	text, _, err := New(Options{}).CloudInit("t", "#!/bin/sh\necho '{{ variables.two_lines }}'\n", c)
	if err != nil {
		t.Fatal(err)
	}
	if text != "#!/bin/sh\necho 'x\ny'" {
		t.Errorf("text template = %q", text)
	}

	// Without values that span lines the dumped text is kept as rendered.
	one, _, err := New(Options{}).CloudInit("t", map[string]any{"runcmd": []any{"echo {{ variables.one_line }}"}}, c)
	if err != nil {
		t.Fatal(err)
	}
	if one != "#cloud-config\nruncmd:\n  - echo plain" {
		t.Errorf("one-line mapping = %q", one)
	}
}

// infraLookup also lists every instance, oldest first, as InfraLookup asks.
type infraLookup struct {
	fakeLookup
	all []NodeAddress
}

func (l infraLookup) AllInstances() []NodeAddress { return l.all }

// TestAddressFunctionsWithoutName covers getip(name) where name is undefined or empty, as in
// the cqueue-cluster tutorial's getip(master): Occopus then matches every instance of the
// infrastructure and answers with the first one.
func TestAddressFunctionsWithoutName(t *testing.T) {
	withAll := testContext()
	withAll.Lookup = infraLookup{
		fakeLookup: withAll.Lookup.(fakeLookup),
		all:        []NodeAddress{{Address: "127.0.1.1", Private: "10.0.0.5"}, {Address: "127.0.2.1"}},
	}
	tests := []struct {
		name, src, want, wantErr string
		ctx                      *Context
		wantWarn                 string
	}{
		{name: "undefined name", src: "{{ getip(master) }}", ctx: withAll, want: "127.0.1.1",
			wantWarn: "getip() was given an undefined or empty node name; like Occopus, it answers from every instance of the infrastructure"},
		{name: "empty name", src: "{{ getip('') }}", ctx: withAll, want: "127.0.1.1"},
		{name: "undefined variable as name", src: "{{ getprivip(variables.nosuch) }}", ctx: withAll, want: "10.0.0.5"},
		{name: "getipall without name", src: "{{ getipall(none) }}", ctx: withAll, want: "['127.0.1.1', '127.0.2.1']"},
		{name: "no instance to answer with", src: "{{ getip(master) }}", ctx: testContext(),
			wantErr: "getip(): the node name is undefined or empty, and the infrastructure has no instance yet to answer with"},
		{name: "a name still selects its node", src: "{{ getip('app') }}", ctx: withAll, want: "127.0.2.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warns, err := New(Options{}).Render("t", tt.src, tt.ctx)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if tt.wantWarn != "" && !strings.Contains(strings.Join(msgs(warns), "\n"), tt.wantWarn) {
				t.Errorf("warnings %q lack %q", msgs(warns), tt.wantWarn)
			}
		})
	}
}

// TestPuppetSoloContext covers the puppet-solo-wordpress tutorial's construct: a node with a
// puppet_solo config_management section sees puppet.modules, puppet.manifests and
// puppet.attributes as Occopus' config manager builds them, from the rendered section.
func TestPuppetSoloContext(t *testing.T) {
	c := testContext()
	c.Variables = map[string]any{"dbname": "wordpress"}
	c.Sections = map[string]any{"config_management": map[string]any{
		"type":      "puppet_solo",
		"manifests": []any{"https://example.com/site.pp"},
		"modules":   []any{"puppetlabs-mysql", "example42-php"},
		"attributes": []any{
			map[string]any{"dbname": "{{ variables.dbname }}"},
			map[string]any{"dbhost": "{{ getip('db') }}"},
			map[string]any{"port": 3306, "tls": false},
		},
	}}
	tmpl := map[string]any{"write_files": []any{
		map[string]any{"path": "/m", "content": "{{puppet.modules}}\n"},
		map[string]any{"path": "/f", "content": "{{puppet.manifests}}\n"},
		map[string]any{"path": "/a", "content": "{{puppet.attributes}}\n"},
	}}
	out, warns, err := New(Options{}).CloudInit("t", tmpl, c)
	if err != nil {
		t.Fatalf("CloudInit: %v", err)
	}
	if len(warns) != 0 {
		t.Errorf("warnings %v", msgs(warns))
	}
	for _, want := range []string{
		"content: |\n      puppetlabs-mysql example42-php\n",
		"content: |\n      https://example.com/site.pp\n",
		"content: |\n      {'dbname': 'wordpress'} {'dbhost': '127.0.1.1'} {'port': 3306, 'tls': False}\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// Without a puppet_solo section, puppet stays undefined.
	c.Sections = map[string]any{"config_management": map[string]any{"type": "chef"}}
	_, warns, err = New(Options{}).CloudInit("t", "#!/bin/sh\n{{ puppet.modules }}", c)
	if err != nil {
		t.Fatal(err)
	}
	if got := msgs(warns); len(got) != 1 || !strings.Contains(got[0], `undefined variable "puppet`) {
		t.Errorf("warnings %q, want one about the undefined puppet", got)
	}
}

func TestPyRepr(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{"plain", "'plain'"},
		{"it's", `"it's"`},
		{`both ' and "`, `'both \' and "'`},
		{"tab\there\\", `'tab\there\\'`},
		{nil, "None"},
		{true, "True"},
		{3, "3"},
		{2.0, "2.0"},
		{[]any{"a", 1}, "['a', 1]"},
		{map[string]any{"b": "x", "a": []any{}}, "{'a': [], 'b': 'x'}"},
	}
	for _, tt := range tests {
		if got := pyRepr(tt.in); got != tt.want {
			t.Errorf("pyRepr(%#v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestOperatorWordsAsAttributes covers the flowbster tutorial's variables.flowbster.app.in:
// Jinja2 reads a key named like an operator after a dot, which gonja alone cannot parse.
func TestOperatorWordsAsAttributes(t *testing.T) {
	c := testContext()
	c.Variables = map[string]any{"app": map[string]any{
		"in":    []any{map[string]any{"name": "a.zip"}, map[string]any{"name": "b.zip"}},
		"not":   map[string]any{"or": "nested"},
		"is_ok": "yes",
	}}
	tests := []struct{ src, want string }{
		{"{% for item in variables.app.in %}{{ item.name }} {% endfor %}", "a.zip b.zip "},
		{"{{ variables.app.not.or }}", "nested"},
		{"{{ variables.app.is_ok }}", "yes"},
		{"{{ variables.app.in | length }} {{ 'x.in' }}", "2 x.in"},
		{"file.in {# x.in #}{% raw %}{{ y.in }}{% endraw %}", "file.in {{ y.in }}"},
		{"{{ 'a' if 'b' in variables.app.in else 'c' }}", "c"},
	}
	for _, tt := range tests {
		got, warns, err := New(Options{}).Render("t", tt.src, c)
		if err != nil {
			t.Errorf("Render(%q): %v", tt.src, err)
			continue
		}
		if got != tt.want || len(warns) != 0 {
			t.Errorf("Render(%q) = %q (warnings %v), want %q", tt.src, got, msgs(warns), tt.want)
		}
	}
}
