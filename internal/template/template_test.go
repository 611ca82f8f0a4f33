package template

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type fakeLookup map[string][]NodeAddress

func (f fakeLookup) Instances(n string) []NodeAddress { return f[n] }

func testContext() *Context {
	return &Context{
		InfraID:   "3f1c2a9e-77aa-4b0e-9d51-0c8e9f5b1234",
		InfraName: "autoscaling",
		UserID:    "ada",
		NodeID:    "a1b2c3d4-0000-4000-8000-000000000001",
		Name:      "lb",
		Type:      "lb_node",
		Variables: map[string]any{
			"lb_port":     80,
			"message":     "hello",
			"extra_ports": []any{8080, 9100},
			"db":          map[string]any{"port": 5432, "users": []any{"app", "ro"}},
			"empty":       nil,
		},
		Sections: map[string]any{
			"resource": map[string]any{"type": "ec2", "instance_type": "t3.small"},
			"scaling":  map[string]any{"min": 1, "max": 5},
		},
		Lookup: fakeLookup{
			"consul": {{Address: "127.0.0.10"}},
			"db":     {{Address: "127.0.1.1", Private: "10.0.0.5"}},
			"app":    {{Address: "127.0.2.1"}, {Address: "127.0.2.2", Private: "10.0.2.2"}, {Address: "127.0.2.3"}},
		},
	}
}

func msgs(ws []Warning) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = fmt.Sprintf("%d: %s", w.Line, w.Msg)
	}
	return out
}

func TestRenderContextVariables(t *testing.T) {
	r := New(Options{})
	tests := []struct{ name, src, want string }{
		{"node_id", "{{ node_id }}", "a1b2c3d4-0000-4000-8000-000000000001"},
		{"name and type", "{{ name }}/{{ type }}", "lb/lb_node"},
		{"infra", "{{ infra_id }} {{ infra_name }} {{ user_id }}", "3f1c2a9e-77aa-4b0e-9d51-0c8e9f5b1234 autoscaling ada"},
		{"variable", "{{ variables.message }}", "hello"},
		{"nested variable", "{{ variables.db.port }}:{{ variables.db.users[1] }}", "5432:ro"},
		{"item syntax", "{{ variables['db']['port'] }}", "5432"},
		{"section at top level", "{{ resource.instance_type }} {{ scaling.max }}", "t3.small 5"},
		{"list renders as Jinja2", "{{ variables.extra_ports }} {{ variables.db.users }}", "[8080, 9100] ['app', 'ro']"},
		{"dict renders as Jinja2", "{{ variables.db }}", "{'port': 5432, 'users': ['app', 'ro']}"},
		{"null variable renders empty", "[{{ variables.empty }}]", "[]"},
		{"for and loop", "{% for p in variables.extra_ports %}{{ loop.index }}:{{ p }} {% endfor %}", "1:8080 2:9100 "},
		{"for over dict items", "{% for k, v in variables.db.items() %}{{ k }}={{ v }};{% endfor %}", "port=5432;users=['app', 'ro'];"},
		{"if else", "{% if variables.lb_port == 80 %}http{% else %}other{% endif %}", "http"},
		{"set and filter", "{% set u = variables.message | upper %}{{ u }}", "HELLO"},
		{"macro", "{% macro srv(n) %}server {{ n }};{% endmacro %}{{ srv('a') }}{{ srv('b') }}", "server a;server b;"},
		{"one trailing newline dropped as Jinja2 does", "a\n", "a"},
		{"lower-case none", "{{ none is none }}", "True"},
		{"b64encode filter", "{{ 'hello' | b64encode }}", "aGVsbG8="},
		{"string repetition", "{{ '-' * 3 }}{{ 2 * 'ab' }}{{ 2 * 3 }}", "---abab6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warns, err := r.Render("t", tt.src, testContext())
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if len(warns) != 0 {
				t.Errorf("unexpected warnings %v", warns)
			}
		})
	}
}

func TestRenderIP(t *testing.T) {
	r := New(Options{})
	c := testContext()
	c.IP = "127.0.0.7"
	got, warns, err := r.Render("health_check.urls[0]", "http://{{ip}}/wordpress", c)
	if err != nil || got != "http://127.0.0.7/wordpress" || len(warns) != 0 {
		t.Fatalf("got %q %v %v", got, warns, err)
	}
	// Without an address, ip is undefined: empty, and reported.
	got, warns, err = r.Render("ctx", "ip={{ip}}", testContext())
	if err != nil || got != "ip=" {
		t.Fatalf("got %q %v", got, err)
	}
	if want := []string{`1: undefined variable "ip"`}; fmt.Sprint(msgs(warns)) != fmt.Sprint(want) {
		t.Errorf("warnings %v, want %v", msgs(warns), want)
	}
}

func TestAddressFunctions(t *testing.T) {
	r := New(Options{})
	tests := []struct {
		name, src, want, wantErr string
	}{
		{name: "getip first instance", src: "{{ getip('app') }}", want: "127.0.2.1"},
		{name: "getip single", src: "{{ getip('db') }}", want: "127.0.1.1"},
		{name: "getprivip private", src: "{{ getprivip('db') }}", want: "10.0.0.5"},
		{name: "getprivip falls back to address", src: "{{ getprivip('consul') }}", want: "127.0.0.10"},
		{name: "getipall in creation order", src: "{{ getipall('app') }}", want: "['127.0.2.1', '127.0.2.2', '127.0.2.3']"},
		{name: "getipall loop", src: "{% for a in getipall('app') %}server {{ a }}\n{% endfor %}", want: "server 127.0.2.1\nserver 127.0.2.2\nserver 127.0.2.3\n"},
		{name: "getipall of a node without instances", src: "{{ getipall('cache') }}", want: "[]"},
		{name: "getip of a node without instances", src: "x\n{{ getip('cache') }}", wantErr: `template t line 2: getip('cache'): node "cache" has no instance yet`},
		{name: "getprivip of a node without instances", src: "{{ getprivip('cache') }}", wantErr: `getprivip('cache'): node "cache" has no instance yet`},
		{name: "getip with a number", src: "{{ getip(3) }}", wantErr: "getip(): the node name must be a string, not 3"},
		{name: "getip without argument", src: "{{ getip() }}", wantErr: "getip() takes exactly one argument"},
		{name: "getip failure is not swallowed by default", src: "{{ getip('cache') | default('x') }}", wantErr: `node "cache" has no instance yet`},
		{name: "unknown Occopus function", src: "{{ ibget('x') }}", wantErr: "template t line 1: ibget() is not a function here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := r.Render("t", tt.src, testContext())
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
		})
	}
}

func TestNoInstanceErrorIsTyped(t *testing.T) {
	_, _, err := New(Options{}).Render("t", "{{ getip('db') }}", &Context{})
	var ni *NoInstanceError
	if !errors.As(err, &ni) || ni.Node != "db" || ni.Func != "getip" {
		t.Fatalf("error %v (%T) is not a NoInstanceError for db", err, err)
	}
}

func TestCut(t *testing.T) {
	r := New(Options{})
	c := &Context{InfraID: "abcdef12-3456"}
	// Expected values are Python's "abcdef12-3456"[start:end].
	tests := []struct{ args, want string }{
		{"0, 8", "abcdef12"},
		{"0, 4", "abcd"},
		{"9, 13", "3456"},
		{"-4, 13", "3456"},
		{"-4, 100", "3456"},
		{"0, -5", "abcdef12"},
		{"-100, 3", "abc"},
		{"5, 2", ""},
		{"20, 30", ""},
		{"3", "def12-3456"},
		{"3, none", "def12-3456"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			got, _, err := r.Render("t", "{{ cut(infra_id, "+tt.args+") }}", c)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("cut(infra_id, %s) = %q, want %q", tt.args, got, tt.want)
			}
		})
	}
	t.Run("code points", func(t *testing.T) {
		got, _, err := r.Render("t", "{{ cut('héllo', 1, 3) }}", c)
		if err != nil || got != "él" {
			t.Fatalf("got %q %v", got, err)
		}
	})
	t.Run("bad index", func(t *testing.T) {
		_, _, err := r.Render("t", "{{ cut(infra_id, 'a', 2) }}", c)
		if err == nil || !strings.Contains(err.Error(), `cut(): start must be an integer, not "a"`) {
			t.Fatalf("error %v", err)
		}
	})
}

func TestCmd(t *testing.T) {
	t.Run("disabled by default", func(t *testing.T) {
		_, _, err := New(Options{}).Render("t", "{{ cmd('echo hi') }}", nil)
		if err == nil || !strings.Contains(err.Error(), "cmd() is disabled; start the server with --allow-template-cmd to enable it") {
			t.Fatalf("error %v", err)
		}
		if !errors.Is(err, ErrCmdDisabled) {
			t.Errorf("error does not wrap ErrCmdDisabled")
		}
	})
	r := New(Options{AllowCmd: true, CmdTimeout: 2 * time.Second})
	tests := []struct{ name, src, want, wantErr string }{
		{name: "stdout without one trailing newline", src: "[{{ cmd('echo hi there') }}]", want: "[hi there]"},
		{name: "no shell", src: "{{ cmd('echo $HOME;x') }}", want: "$HOME;x"},
		{name: "only one newline trimmed", src: "[{{ cmd('printf a\\\\n\\\\n') }}]", want: "[a\n]"},
		{name: "failing command", src: "{{ cmd('false') }}", wantErr: "cmd('false'): exit status 1"},
		{name: "missing command", src: "{{ cmd('skyfleet-no-such-command') }}", wantErr: "cmd('skyfleet-no-such-command')"},
		{name: "empty command", src: "{{ cmd('  ') }}", wantErr: "cmd(''): empty command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := r.Render("t", tt.src, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		r := New(Options{AllowCmd: true, CmdTimeout: 100 * time.Millisecond})
		_, _, err := r.Render("t", "{{ cmd('sleep 5') }}", nil)
		if err == nil || !strings.Contains(err.Error(), "timed out after 100ms") {
			t.Fatalf("error %v", err)
		}
	})
}

func TestUndefinedVariables(t *testing.T) {
	tests := []struct {
		name, src, want string
		warnings        []string
	}{
		{name: "top-level name", src: "a{{ nope }}b", want: "ab", warnings: []string{`1: undefined variable "nope"`}},
		{name: "variable", src: "x\nport={{ variables.missing }}", want: "x\nport=", warnings: []string{`2: undefined variable "variables.missing"`}},
		{name: "nested reported once", src: "{{ variables.missing.deeper.still }}", warnings: []string{`1: undefined variable "variables.missing"`}},
		{name: "nested under existing", src: "{{ variables.db.host }}", warnings: []string{`1: undefined variable "variables.db.host"`}},
		{name: "item syntax", src: "{{ variables['nope'] }}", warnings: []string{`1: undefined variable "variables['nope']"`}},
		{name: "index out of range", src: "{{ variables.extra_ports[5] }}", warnings: []string{`1: undefined variable "variables.extra_ports[5]"`}},
		{name: "each line once", src: "{% for i in [1,2,3] %}{{ variables.x }}{% endfor %}", warnings: []string{`1: undefined variable "variables.x"`}},
		{name: "in a condition", src: "{% if variables.debug %}on{% endif %}", warnings: []string{`1: undefined variable "variables.debug"`}},
		{name: "in set", src: "{% set p = variables.port %}[{{ p }}]", want: "[]", warnings: []string{`1: undefined variable "variables.port"`}},
		{name: "in with", src: "{% with a = variables.w %}[{{ a }}]{% endwith %}", want: "[]", warnings: []string{`1: undefined variable "variables.w"`}},
		{name: "in a filter block", src: "{% filter upper %}x{{ variables.f }}{% endfilter %}", want: "X", warnings: []string{`1: undefined variable "variables.f"`}},
		{name: "in a set block", src: "{% set b %}[{{ variables.sb }}]{% endset %}{{ b }}", want: "[]", warnings: []string{`1: undefined variable "variables.sb"`}},
		{name: "in a loop's iterable", src: "{% for a in variables.list %}{{ a }}{% else %}empty{% endfor %}", want: "empty", warnings: []string{`1: undefined variable "variables.list"`}},
		{name: "in a macro default", src: "{% macro m(a=variables.md) %}[{{ a }}]{% endmacro %}{{ m() }}", want: "[]", warnings: []string{`1: undefined variable "variables.md"`}},
		{name: "in function arguments", src: "{{ cut(variables.s, 0, 2) }}", warnings: []string{`1: undefined variable "variables.s"`}},
		{name: "guarded by is defined", src: "{% if variables.x is defined %}x{% else %}none{% endif %}", want: "none"},
		{name: "guarded by default", src: "{{ variables.x | default('dflt') }}", want: "dflt"},
		{name: "guarded by d", src: "{{ variables.x | d('y') }}", want: "y"},
		{name: "loop variables are defined", src: "{% for a in [1] %}{{ a }}{{ loop.first }}{% endfor %}", want: "1True"},
		{name: "set variables are defined", src: "{% set a = 1 %}{{ a }}", want: "1"},
		{name: "macro arguments are defined", src: "{% macro m(a, b=2) %}{{ a }}{{ b }}{% endmacro %}{{ m(1) }}", want: "12"},
		{name: "namespace", src: "{% set ns = namespace(n=0) %}{% for i in [1,2] %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}", want: "3"},
		{name: "method call on a variable", src: "{{ variables.message.upper() }}", want: "HELLO"},
		{name: "two distinct", src: "{{ a }}\n{{ b }}", want: "\n", warnings: []string{`1: undefined variable "a"`, `2: undefined variable "b"`}},
	}
	r := New(Options{})
	strict := New(Options{Strict: true})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warns, err := r.Render("t", tt.src, testContext())
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if fmt.Sprint(msgs(warns)) != fmt.Sprint(tt.warnings) {
				t.Errorf("warnings %q, want %q", msgs(warns), tt.warnings)
			}
			for _, w := range warns {
				if w.Template != "t" {
					t.Errorf("warning names template %q", w.Template)
				}
			}
			_, _, err = strict.Render("t", tt.src, testContext())
			if len(tt.warnings) == 0 {
				if err != nil {
					t.Errorf("strict: %v", err)
				}
				return
			}
			// Strict: the first undefined variable is an error naming it and its line.
			first := tt.warnings[0]
			line, msg, _ := strings.Cut(first, ": ")
			want := fmt.Sprintf("template t line %s: %s", line, msg)
			if err == nil || err.Error() != want {
				t.Errorf("strict error %v, want %q", err, want)
			}
		})
	}
}

func TestEscapesAndRaw(t *testing.T) {
	r := New(Options{})
	tests := []struct{ name, src, want string }{
		{"escaped braces", "{{'{{'}}range service \"app\"{{'}}'}}", `{{range service "app"}}`},
		{"raw block", "{% raw %}{{ .Address }}:{{ .Port }}{% endfor %}{% endraw %}", "{{ .Address }}:{{ .Port }}{% endfor %}"},
		{"raw multi-line consul-template", "{% raw %}\n{{range service \"app\"}}\n  server {{.Node}} {{.Address}}:{{.Port}}{{end}}\n{% endraw %}", "\n{{range service \"app\"}}\n  server {{.Node}} {{.Address}}:{{.Port}}{{end}}\n"},
		{"comment", "a{# {{ nope }} #}b", "ab"},
		{"whitespace control", "a\n{%- if true -%}\n b \n{%- endif -%}\nc", "abc"},
		{"whitespace control in loops", "[\n{%- for x in [1, 2] -%}\n  {{ x }}\n{%- endfor -%}\n]", "[12]"},
		{"loop else", "{% for x in [] %}{{ x }}{% else %}none{% endfor %}", "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warns, err := r.Render("t", tt.src, testContext())
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if len(warns) != 0 {
				t.Errorf("warnings %v", warns)
			}
		})
	}
}

func TestRenderErrorMessages(t *testing.T) {
	r := New(Options{})
	tests := []struct{ name, src, want string }{
		{"unknown filter", "a\n{{ name | nofilter }}", "template t line 2: filter 'nofilter' not found"},
		{"not a function", "{{ name() }}", "template t line 1: name() cannot be called: name is not a function"},
		{"bad range argument", "{{ range('a') }}", "template t line 1: range(): a is not an integer"},
		{"unknown method", "{{ variables.db.nope() }}", "template t line 1: invalid call to method 'nope'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := r.Render("t", tt.src, testContext())
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to start with %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "map[") || strings.Contains(err.Error(), "call(") {
				t.Errorf("error shows gonja's syntax tree: %v", err)
			}
		})
	}
}

func TestSyntaxErrors(t *testing.T) {
	r := New(Options{})
	tests := []struct{ name, src, want string }{
		{"unclosed if", "a\nb\n{% if true %}x", "template cloud_init.yaml line "},
		{"bad expression", "line1\n{% if %}", "template cloud_init.yaml line 2 col"},
		{"unclosed variable", "a\n{{ foo(\n", "template cloud_init.yaml line 2"},
		{"unknown tag", "ok\n\n{% frobnicate %}", "template cloud_init.yaml line 3 col"},
		{"include refused", "{% include '/etc/passwd' %}", "{% include %} is not available: templates cannot load other templates"},
		{"import refused", "{% import 'x' as y %}", "{% import %} is not available"},
		{"extends refused", "{% extends 'x' %}", "{% extends %} is not available"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := r.Render("cloud_init.yaml", tt.src, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	// The time limit is generous so that only the test about time meets it.
	r := New(Options{MaxOutput: 1 << 20, Timeout: time.Minute})
	tests := []struct{ name, src, want string }{
		{"output size", "{% for i in range(100000) %}0123456789abcdef{% endfor %}", "output exceeds 1048576 bytes"},
		{"macro recursion", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "nested too deeply"},
		{"recursive loop", "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}", "nested too deeply"},
		{"range length", "{{ range(10000000000) | length }}", "range() would have over 100000 items"},
		{"loop length", "{% for c in 'x' * 200000 %}{% endfor %}", "a loop over 200000 items (the limit is 100000)"},
		{"string repetition", "{{ 'abc' * 100000000 }}", "string repetition would exceed 1048576 bytes"},
		{"doubling", "{% set ns = namespace(x='ab') %}{% for i in range(64) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}", "a string exceeds 1048576 bytes"},
		{"padding width", "{{ 'a' | center(100000000) }}", "width or count 100000000 is over the limit"},
		{"method width", "{{ 'a'.ljust(100000000) }}", "width or count 100000000 is over the limit"},
		{"str.format width", "{{ '{:>999999999}'.format(1) }}", "format field {:>999999999} asks for a width or precision over the limit"},
		{"indent growth", "{{ ('\\n' * 500000) | indent(60000) }}", "indent: the result would exceed"},
		{"replace growth", "{{ ('a' * 500000) | replace('a', 'bbbbbbbbbb') }}", "replace: the result would exceed"},
		{"division by zero", "{{ 1 % 0 }}", "render failed"},
		{"long chain", "{{ variables" + strings.Repeat(".a", 6000) + " }}", "line 1: a tag longer than 10000 tokens"},
		{"deep brackets", "x\n{{ " + strings.Repeat("(", 150) + "1" + strings.Repeat(")", 150) + " }}", "line 2: nested deeper than 100 levels"},
		{"deep blocks", strings.Repeat("{% if true %}", 150) + strings.Repeat("{% endif %}", 150), "nested deeper than 100 levels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := r.Render("t", tt.src, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
	t.Run("time", func(t *testing.T) {
		r := New(Options{Timeout: 50 * time.Millisecond})
		_, _, err := r.Render("t", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", nil)
		if err == nil || !strings.Contains(err.Error(), "render took longer than 50ms") {
			t.Fatalf("error %v", err)
		}
	})
}

func TestCloudInit(t *testing.T) {
	r := New(Options{})
	t.Run("mapping is dumped then rendered", func(t *testing.T) {
		tmpl := map[string]any{
			"runcmd":      []any{"echo {{ name }} > /etc/motd", "consul join {{ getip('consul') }}"},
			"write_files": []any{map[string]any{"path": "/etc/infra", "content": "{{ infra_id }}\n"}},
		}
		got, warns, err := r.CloudInit("node_def:lb/contextualisation", tmpl, testContext())
		if err != nil {
			t.Fatal(err)
		}
		if len(warns) != 0 {
			t.Errorf("warnings %v", warns)
		}
		if !strings.HasPrefix(got, "#cloud-config\n") {
			t.Fatalf("missing header: %q", got)
		}
		var doc struct {
			Runcmd     []string `yaml:"runcmd"`
			WriteFiles []struct {
				Path, Content string
			} `yaml:"write_files"`
		}
		if err := yaml.Unmarshal([]byte(got), &doc); err != nil {
			t.Fatalf("rendered mapping is not YAML: %v\n%s", err, got)
		}
		if want := []string{"echo lb > /etc/motd", "consul join 127.0.0.10"}; fmt.Sprint(doc.Runcmd) != fmt.Sprint(want) {
			t.Errorf("runcmd %q, want %q", doc.Runcmd, want)
		}
		if len(doc.WriteFiles) != 1 || doc.WriteFiles[0].Content != "3f1c2a9e-77aa-4b0e-9d51-0c8e9f5b1234\n" {
			t.Errorf("write_files %+v", doc.WriteFiles)
		}
	})
	t.Run("string is rendered as is", func(t *testing.T) {
		got, _, err := r.CloudInit("t", "#!/bin/sh\necho {{ name }}\n", testContext())
		if err != nil || got != "#!/bin/sh\necho lb" {
			t.Fatalf("got %q %v", got, err)
		}
	})
	t.Run("invalid cloud-config", func(t *testing.T) {
		src := "#cloud-config\nruncmd:\n  - echo {{ name }}\n bad: [\n"
		_, _, err := r.CloudInit("cloud_init_app.yaml", src, testContext())
		if err == nil {
			t.Fatal("no error for invalid YAML")
		}
		for _, want := range []string{"cloud_init_app.yaml", "not valid YAML", "line "} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
	})
	t.Run("value that breaks the YAML", func(t *testing.T) {
		c := testContext()
		c.Variables["motd"] = "a: b: c"
		_, _, err := r.CloudInit("t", "#cloud-config\nbootcmd: {{ variables.motd }}\n", c)
		if err == nil || !strings.Contains(err.Error(), "not valid YAML") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("other types refused", func(t *testing.T) {
		_, _, err := r.CloudInit("t", 42, testContext())
		if err == nil || !strings.Contains(err.Error(), "must be a string or a mapping, not int") {
			t.Fatalf("error %v", err)
		}
	})
}

func TestCloudInitFixtureGolden(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "cloud_init_lb.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got, warns, err := New(Options{}).CloudInit("cloud_init_lb.yaml", string(src), testContext())
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Errorf("warnings %v", warns)
	}
	golden := filepath.Join("testdata", "cloud_init_lb.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("rendered fixture differs from %s (run with -update to accept):\n%s", golden, got)
	}
	for _, s := range []string{`{{range service "app"}}`, `server {{.Node}} {{.Address}}:{{.Port}} check{{end}}`, `{{range $i, $s := service "app"}}`, "bind *:80", `"retry_join": ["127.0.0.10"]`, "ufw allow 9100/tcp"} {
		if !strings.Contains(got, s) {
			t.Errorf("rendered fixture lacks %q", s)
		}
	}
}

func TestRenderValue(t *testing.T) {
	r := New(Options{})
	in := map[string]any{
		"type":        "ec2",
		"server_name": "app-{{ cut(infra_id, 0, 4) }}",
		"count":       3,
		"tags":        []any{"{{ name }}", map[string]any{"k": "{{ variables.nope }}"}},
	}
	out, warns, err := r.RenderValue("resource", in, testContext())
	if err != nil {
		t.Fatal(err)
	}
	m := out.(map[string]any)
	if m["server_name"] != "app-3f1c" || m["count"] != 3 || m["type"] != "ec2" {
		t.Errorf("rendered %v", m)
	}
	tags := m["tags"].([]any)
	if tags[0] != "lb" || tags[1].(map[string]any)["k"] != "" {
		t.Errorf("tags %v", tags)
	}
	if in["server_name"] != "app-{{ cut(infra_id, 0, 4) }}" {
		t.Errorf("input was modified")
	}
	if len(warns) != 1 || warns[0].Template != "resource.tags[1].k" || warns[0].Msg != `undefined variable "variables.nope"` {
		t.Errorf("warnings %+v", warns)
	}
	_, _, err = r.RenderValue("resource", map[string]any{"a": "{{ getip('x') }}"}, testContext())
	if err == nil || !strings.Contains(err.Error(), "template resource.a line 1: getip('x')") {
		t.Errorf("error %v", err)
	}
}

func TestTemplateCannotChangeCallerValues(t *testing.T) {
	c := testContext()
	_, _, err := New(Options{}).Render("t", "{% do variables.extra_ports.append(1) %}{% do variables.db.update({'port': 1}) %}", c)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(c.Variables["extra_ports"]) != "[8080 9100]" || c.Variables["db"].(map[string]any)["port"] != 5432 {
		t.Errorf("caller's variables changed: %v", c.Variables)
	}
}

const concurrentSrc = "{% macro up(x) %}{{ x | upper }}{% endmacro %}{% set n = name %}" +
	"{% filter upper %}{{ n }}{% endfilter %}:{{ up(n) }}|" +
	"{% set ns = namespace(c=0) %}{% for a in [1, 2, 3] %}{% set ns.c = ns.c + 1 %}{% endfor %}{{ ns.c }}|" +
	"{% with m = name %}{{ m }}{% endwith %}"

func TestConcurrentRenders(t *testing.T) {
	r := New(Options{})
	src, err := os.ReadFile(filepath.Join("testdata", "cloud_init_lb.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := r.Render("t", string(src), testContext())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := testContext()
			c.Name = fmt.Sprintf("n%d", i)
			for range 20 {
				got, _, err := r.Render("t", string(src), c)
				if err != nil {
					errs <- err
					return
				}
				if !strings.Contains(got, "node n"+fmt.Sprint(i)+"\"") {
					errs <- fmt.Errorf("render %d lacks its own name", i)
					return
				}
				if _, w, _ := r.Render("u", "{{ variables.nope }}", c); len(w) != 1 {
					errs <- fmt.Errorf("warnings leaked between renders: %v", w)
					return
				}
				// Scopes, macros, namespaces and filter blocks must not leak between renders
				// that share one parsed template.
				got, _, err = r.Render("v", concurrentSrc, c)
				if err != nil {
					errs <- err
					return
				}
				if want := fmt.Sprintf("N%d:N%d|3|n%d", i, i, i); got != want {
					errs <- fmt.Errorf("render %d: got %q, want %q", i, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !strings.Contains(want, "node lb\"") {
		t.Errorf("baseline render lacks the node name")
	}
}

func TestParseCacheIsBounded(t *testing.T) {
	r := New(Options{CacheSize: 4})
	for i := range 10 {
		if _, _, err := r.Render("t", fmt.Sprintf("{{ name }}%d", i), testContext()); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.cache.len(); n != 4 {
		t.Errorf("cache holds %d templates, want 4", n)
	}
	// A cached template still renders with each call's own context.
	c := testContext()
	c.Name = "other"
	got, _, err := r.Render("t", "{{ name }}9", c)
	if err != nil || got != "other9" {
		t.Errorf("got %q %v", got, err)
	}
}

func TestContextualisation(t *testing.T) {
	r := New(Options{})
	t.Run("cloudinit", func(t *testing.T) {
		got, _, err := r.Contextualisation("node_def:lb/contextualisation", map[string]any{
			"type": "cloudinit", "context_template": "#cloud-config\nruncmd: ['echo {{ name }}']\n",
		}, testContext())
		if err != nil {
			t.Fatal(err)
		}
		if got.Type != "cloudinit" || got.UserData != "#cloud-config\nruncmd: ['echo lb']" || got.Section["context_template"] != got.UserData {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("docker context_variables string", func(t *testing.T) {
		got, _, err := r.Contextualisation("c", map[string]any{
			"type":              "docker",
			"context_variables": "greeting: hi {{ name }}\nport: {{ variables.lb_port }}\n",
			"env":               []any{"MSG={{ greeting }}", "PORT={{ port }}", "B={{ greeting | b64encode }}"},
			"command":           "sh -c 'echo {{ greeting }}'",
		}, testContext())
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got.Section["env"]) != "[MSG=hi lb PORT=80 B=aGkgbGI=]" || got.Section["command"] != "sh -c 'echo hi lb'" {
			t.Errorf("got %v", got.Section)
		}
	})
	t.Run("docker context_variables mapping", func(t *testing.T) {
		got, _, err := r.Contextualisation("c", map[string]any{
			"type": "docker", "context_variables": map[string]any{"who": "{{ name }}"}, "env": []any{"WHO={{ who }}"},
		}, testContext())
		if err != nil || fmt.Sprint(got.Section["env"]) != "[WHO=lb]" {
			t.Fatalf("got %v %v", got, err)
		}
	})
	t.Run("docker context_variables not a mapping", func(t *testing.T) {
		_, _, err := r.Contextualisation("c", map[string]any{"type": "docker", "context_variables": "- a\n- b", "env": []any{}}, testContext())
		if err == nil || !strings.Contains(err.Error(), "not a YAML mapping") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("process files and env", func(t *testing.T) {
		got, warns, err := r.Contextualisation("c", map[string]any{
			"type":    "process",
			"command": []any{"app", "--port", "{{ variables.lb_port }}"},
			"env":     map[string]any{"DB": "{{ getip('db') }}"},
			"files":   map[string]any{"motd": "{{ variables.message }} {{ variables.nope }}"},
		}, testContext())
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got.Section["command"]) != "[app --port 80]" || got.Section["env"].(map[string]any)["DB"] != "127.0.1.1" ||
			got.Section["files"].(map[string]any)["motd"] != "hello " {
			t.Errorf("got %v", got.Section)
		}
		if len(warns) != 1 || warns[0].Template != "c.files.motd" {
			t.Errorf("warnings %+v", warns)
		}
	})
	t.Run("absent", func(t *testing.T) {
		got, _, err := r.Contextualisation("c", nil, testContext())
		if got != nil || err != nil {
			t.Fatalf("got %v %v", got, err)
		}
	})
}

func TestRenderValueKeepsTrailingNewlines(t *testing.T) {
	r := New(Options{})
	out, _, err := r.RenderValue("files", map[string]any{
		"motd":  "hello {{ name }}\n",
		"plain": "no template here\n",
		"bare":  "{{ name }}",
	}, testContext())
	if err != nil {
		t.Fatal(err)
	}
	m := out.(map[string]any)
	if m["motd"] != "hello lb\n" || m["plain"] != "no template here\n" || m["bare"] != "lb" {
		t.Errorf("got %q", m)
	}
}

func TestRenderValueWarningsInKeyOrder(t *testing.T) {
	r := New(Options{})
	in := map[string]any{}
	for _, k := range []string{"d", "b", "a", "c", "e"} {
		in[k] = "{{ variables." + k + "_missing }}"
	}
	for range 5 {
		_, warns, err := r.RenderValue("v", in, testContext())
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, w := range warns {
			got = append(got, w.Template)
		}
		if fmt.Sprint(got) != "[v.a v.b v.c v.d v.e]" {
			t.Fatalf("warnings in order %v", got)
		}
	}
}
