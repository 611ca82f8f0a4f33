package decode

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"testing"
)

func TestProblems(t *testing.T) {
	tests := []struct {
		name string
		fill func(p *Problems)
		want string // "" for no error
	}{
		{"none", func(*Problems) {}, ""},
		{"one, prefixed with section and key", func(p *Problems) {
			p.Bad("cpus", "%v is not allowed; want %s", -1, "0.01 or more")
		}, "resource.cpus: -1 is not allowed; want 0.01 or more"},
		{"every problem, one a line, in the order reported", func(p *Problems) {
			p.Bad("b", "second key")
			p.Bad("tags.team", "a path below the section")
			p.Bad("a", "reported after the walk over keys")
		}, "resource.b: second key\nresource.tags.team: a path below the section\nresource.a: reported after the walk over keys"},
		{"unknown key lists the allowed ones", func(p *Problems) {
			p.Unknown("zone", []string{"endpoint", "type"})
		}, "resource.zone: unknown key (allowed: endpoint, type)"},
		{"text of a string, a whole number, and a list", func(p *Problems) {
			if got := p.Text("image_id", "ami-1"); got != "ami-1" {
				p.Bad("image_id", "Text = %q", got)
			}
			if got := p.Text("tag", 20); got != "20" {
				p.Bad("tag", "Text = %q", got)
			}
			if got := p.Text("name", []any{"a"}); got != "" {
				p.Bad("name", "Text = %q", got)
			}
			p.Text("key_name", nil)
		}, "resource.name: [a] is a list; want a string\nresource.key_name: <nil> is a null; want a string"},
		{"string, strictly", func(p *Problems) {
			if got := p.String("name", "web"); got != "web" {
				p.Bad("name", "String = %q", got)
			}
			if got := p.String("workdir", 7); got != "" {
				p.Bad("workdir", "String = %q", got)
			}
		}, "resource.workdir: 7 is not a string"},
		{"parse: accepted, not a string, rejected by check", func(p *Problems) {
			check := func(s string) error {
				if s != "127.0.0.0/8" {
					return fmt.Errorf("%q is not loopback", s)
				}
				return nil
			}
			if got := p.Parse("address_range", "127.0.0.0/8", "e.g. 127.0.0.0/8", check); got != "127.0.0.0/8" {
				p.Bad("address_range", "Parse = %q", got)
			}
			if got := p.Parse("a", 3, "e.g. 127.0.0.0/8", check); got != "" {
				p.Bad("a", "Parse = %q", got)
			}
			if got := p.Parse("b", "10.0.0.0/8", "e.g. 127.0.0.0/8", check); got != "" {
				p.Bad("b", "Parse = %q", got)
			}
		}, "resource.a: 3 is not a string (want e.g. 127.0.0.0/8)\nresource.b: \"10.0.0.0/8\" is not loopback"},
		{"wrong type is named, empty type is left to Require", func(p *Problems) {
			p.WantType("ec2", "ec2")
			p.WantType("", "ec2")
			p.WantType("nova", "ec2")
		}, `resource.type: "nova" is not ec2`},
		{"required keys missing and empty", func(p *Problems) {
			m := map[string]any{"type": "", "endpoint": "", "image": []any{}}
			p.Bad("endpoint", "already reported")
			p.Bad("image", "is a list")
			p.Require(m, "a docker resource", "type", "endpoint", "image", "tag")
		}, "resource.endpoint: already reported\nresource.image: is a list\nresource.type: must not be empty\n" +
			"resource.tag: missing (a docker resource needs type, endpoint, image and tag)"},
		{"one required key", func(p *Problems) {
			p.Require(map[string]any{}, "a sim resource", "type")
		}, "resource.type: missing (a sim resource needs type)"},
		{"required keys present", func(p *Problems) {
			p.Require(map[string]any{"type": "ec2", "endpoint": 0}, "an ec2 resource", "type", "endpoint")
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewProblems("resource")
			tt.fill(p)
			err := p.Err()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Err() = %q; want nil", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Err() = nil; want %q", tt.want)
			case err != nil && err.Error() != tt.want:
				t.Fatalf("Err() =\n%s\nwant\n%s", err, tt.want)
			}
		})
	}
}

func TestProblemsStringList(t *testing.T) {
	const item, list = "a group name; want a string", "a list of group names"
	tests := []struct {
		name string
		in   any
		want []string
		err  string
	}{
		{"null is none", nil, nil, ""},
		{"one string is a list of one", "web", []string{"web"}, ""},
		{"a list", []any{"default", "web"}, []string{"default", "web"}, ""},
		{"bad items are named by index, good ones kept", []any{"a", 3, "", "b"}, []string{"a", "b"},
			"resource.groups[1]: 3 is not a group name; want a string\nresource.groups[2]:  is not a group name; want a string"},
		{"a mapping", map[string]any{"a": 1}, nil, "resource.groups: is a mapping; want a list of group names"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewProblems("resource")
			got := p.StringList("groups", tt.in, item, list)
			if !slices.Equal(got, tt.want) {
				t.Errorf("StringList = %q; want %q", got, tt.want)
			}
			if err := p.Err(); (err == nil) != (tt.err == "") || (err != nil && err.Error() != tt.err) {
				t.Errorf("Err() = %v; want %q", err, tt.err)
			}
		})
	}
}

func TestProblemsWalk(t *testing.T) {
	p := NewProblems("resource")
	var typ, endpoint string
	m := map[string]any{"zone": 1, "type": "ec2", "endpoint": []any{}, "cpus": 2, "b": nil}
	var seen []string
	for k := range p.Walk(m, map[string]*string{"type": &typ, "endpoint": &endpoint}) {
		seen = append(seen, k)
		p.Bad(k, "seen")
	}
	if want := []string{"b", "cpus", "zone"}; !slices.Equal(seen, want) {
		t.Errorf("Walk yielded %q; want %q (sorted, without the text keys)", seen, want)
	}
	if typ != "ec2" || endpoint != "" {
		t.Errorf("text keys read as type=%q endpoint=%q; want ec2 and empty", typ, endpoint)
	}
	// Problems come in key order, text keys among the others.
	if err := p.Err(); err == nil || err.Error() != "resource.b: seen\nresource.cpus: seen\nresource.endpoint: [] is a list; want a string\nresource.zone: seen" {
		t.Errorf("Err() =\n%v", err)
	}
	for k := range p.Walk(m, nil) {
		if k != "b" {
			t.Errorf("Walk went on to %q after the loop stopped", k)
		}
		break
	}
}

func TestProblemsHas(t *testing.T) {
	p := NewProblems("contextualisation")
	p.Bad("command[1]", "not a string")
	p.Bad("env", "not a list")
	for key, want := range map[string]bool{"env": true, "command[1]": true, "command": false, "en": false, "type": false} {
		if got := p.Has(key); got != want {
			t.Errorf("Has(%q) = %v; want %v", key, got, want)
		}
	}
	if err := p.Err(); err == nil || err.Error() != "contextualisation.command[1]: not a string\ncontextualisation.env: not a list" {
		t.Errorf("Err() = %v", err)
	}
}

func TestProblemsWrap(t *testing.T) {
	p := NewProblems("resource")
	p.Bad("address_range", "%w", fs.ErrNotExist)
	err := p.Err()
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) = false; want the wrapped error kept", err)
	}
	if want := "resource.address_range: " + fs.ErrNotExist.Error(); err.Error() != want {
		t.Errorf("Err() = %q; want %q", err, want)
	}
}
