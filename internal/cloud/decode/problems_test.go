package decode

import (
	"errors"
	"io/fs"
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
