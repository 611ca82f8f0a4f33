package template

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzRender feeds arbitrary template sources to a renderer with small limits: rendering must
// return (a result or an error) without panicking or hanging.
func FuzzRender(f *testing.F) {
	seeds := []string{
		"",
		"plain text",
		"{{ name }}-{{ cut(infra_id, 0, 8) }}",
		"{{ variables.db.port }} {{ variables['db']['users'][0] }} {{ variables.missing.x }}",
		"{{'{{'}}range service \"app\"{{'}}'}}",
		"{% raw %}{{ .Address }}{% endraw %}",
		"{% for a in getipall('app') %}server {{ loop.index }} {{ a }}\n{% else %}none{% endfor %}",
		"{% if variables.x is defined %}{{ variables.x }}{% elif name == 'lb' %}lb{% endif %}",
		"{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}",
		"{% macro m(a, b=2) %}{{ a * b }}{% endmacro %}{{ m(3) }}{{ m('x', 3) }}",
		"{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
		"{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}",
		"{{ getip('db') }} {{ getprivip('db') }} {{ getip('nope') }}",
		"{{ 'a' * 99999999 }} {{ 'a' | center(99999999) }} {{ range(99999999) }}",
		"{{ 1 % 0 }} {{ 1 / 0 }} {{ 1 // 0 }}",
		"{{ [1, 2] + [3] }} {{ {'a': 1}.items() | list }} {{ 'x' ~ 1 ~ none }}",
		"{{ variables | tojson }} {{ 'aGk=' | b64decode }} {{ 'hi' | b64encode }}",
		"{% filter upper %}{{ name }}{% endfilter %}{% with a = 1 %}{{ a }}{% endwith %}",
		"{% call m() %}x{% endcall %}",
		"{{ cmd('echo hi') }}",
		"{% include 'x' %}",
		"{{ ((((((((((1)))))))))) }}",
		"{{ not not not 1 }} {{ - - 1 }}",
		"{{ variables.a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p }} {{ 1~2~3~4~5~6 }} {{ x[0][1][2] }}",
		"{% if %}{% endif",
		"{{",
		"{%",
		"#cloud-config\nruncmd:\n  - echo {{ name }}\n",
	}
	if src, err := os.ReadFile(filepath.Join("testdata", "cloud_init_lb.yaml")); err == nil {
		seeds = append(seeds, string(src))
	}
	for _, s := range seeds {
		f.Add(s)
	}
	r := New(Options{Timeout: 200 * time.Millisecond, MaxOutput: 64 << 10, CacheSize: 16})
	f.Fuzz(func(t *testing.T, src string) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			out, _, err := r.Render("fuzz", src, testContext())
			if err == nil && len(out) > 64<<10 {
				t.Errorf("output of %d bytes passed the 64 KiB limit", len(out))
			}
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("render did not return within 20s")
		}
	})
}
