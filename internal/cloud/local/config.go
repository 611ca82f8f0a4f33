package local

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/skyfleet/skyfleet/internal/cloud/decode"
)

// Resource is the typed resource section of a `type: local` implementation.
type Resource struct {
	// Name is an optional label, recorded with the instance.
	Name string
	// CPUs (`cpus`) limits the instance's CPU time to this many CPUs through cgroup v2
	// cpu.max; 0 means no limit.
	CPUs float64
	// Memory (`memory`, e.g. "256Mi", "1G" or a number of bytes) limits the instance's
	// memory through cgroup v2 memory.max; 0 means no limit.
	Memory int64
	// AddressRange (`address_range`) is the loopback range the instance's address comes
	// from, overriding Options.AddressRange.
	AddressRange string
}

// Context is the typed `type: process` contextualisation section, already rendered.
type Context struct {
	// Command is the argv of the instance's process. argv[0] is looked up in the PATH the
	// process gets (a name containing a slash is taken relative to its working directory);
	// exactly "skyfleet" means the running skyfleet binary.
	Command []string
	// Env is added to the process environment (SKYFLEET_* variables cannot be overridden).
	Env map[string]string
	// Files maps a path relative to the working directory to its content; each is written
	// with mode 0600 before the process starts. A path may not leave the working directory.
	Files map[string]string
	// Workdir is an optional sub directory of the instance's work directory to run in.
	Workdir string
}

var (
	resourceKeys = []string{"address_range", "cpus", "memory", "name", "type"}
	contextKeys  = []string{"command", "env", "files", "type", "workdir"}
)

// DecodeResource decodes a rendered `type: local` resource section strictly: unknown keys
// and bad values are errors naming the key, the value and what is allowed, all reported at
// once. A nil section is valid and means every default.
func DecodeResource(m map[string]any) (Resource, error) {
	var r Resource
	p := decode.NewProblems("resource")
	for k, v := range p.Walk(m, nil) {
		switch k {
		case "type":
			if s, ok := v.(string); !ok || s != "local" {
				p.Bad(k, "%v is not local", v)
			}
		case "name":
			r.Name = p.String(k, v)
		case "cpus":
			f, ok := decode.Number(v)
			if !ok || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
				p.Bad(k, "%v is not a positive number of CPUs (e.g. 0.5 or 2)", v)
				break
			}
			r.CPUs = f
		case "memory":
			n, err := parseQuantity(v)
			if err != nil {
				p.Bad(k, "%w", err)
				break
			}
			r.Memory = n
		case "address_range":
			r.AddressRange = p.Parse(k, v, "e.g. 127.42.0.0/16", func(s string) error {
				_, err := parseRange(s)
				return err
			})
		default:
			p.Bad(k, "unknown key for type local (allowed: %s)", strings.Join(resourceKeys, ", "))
		}
	}
	if err := p.Err(); err != nil {
		return Resource{}, fmt.Errorf("decode local resource: %w", err)
	}
	return r, nil
}

// DecodeContext decodes a rendered `type: process` contextualisation section strictly. The
// local provider needs one: a missing section or command is an error.
func DecodeContext(m map[string]any) (Context, error) {
	if m == nil {
		return Context{}, errors.New("decode local contextualisation: missing (want type: process with a command)")
	}
	var c Context
	p := decode.NewProblems("contextualisation")
	if _, ok := m["type"]; !ok {
		p.Bad("type", "missing (want process)")
	}
	if _, ok := m["command"]; !ok {
		p.Bad("command", "missing (want a list of strings, the program first)")
	}
	for k, v := range p.Walk(m, nil) {
		switch k {
		case "type":
			if s, ok := v.(string); !ok || s != "process" {
				p.Bad(k, "%v is not supported by the local provider (allowed: process)", v)
			}
		case "command":
			list, ok := v.([]any)
			if s, isStrings := v.([]string); isStrings {
				list, ok = make([]any, len(s)), true
				for i := range s {
					list[i] = s[i]
				}
			}
			if !ok || len(list) == 0 {
				p.Bad(k, "%v is not a non-empty list of strings", v)
				break
			}
			for i, a := range list {
				s, ok := scalar(a)
				if !ok || (i == 0 && s == "") {
					p.Bad(fmt.Sprintf("%s[%d]", k, i), "%v is not a string", a)
					continue
				}
				c.Command = append(c.Command, s)
			}
		case "env":
			env, ok := stringMap(p, k, v, true)
			if !ok {
				break
			}
			for name := range env {
				if name == "" || strings.ContainsAny(name, "=\x00") {
					p.Bad(k, "%q is not a valid variable name", name)
				}
			}
			c.Env = env
		case "files":
			files, ok := stringMap(p, k, v, false)
			if !ok {
				break
			}
			for _, path := range slices.Sorted(maps.Keys(files)) {
				if err := checkRelPath(path); err != nil {
					p.Bad(k, "%w", err)
				}
			}
			c.Files = files
		case "workdir":
			s, ok := v.(string)
			if !ok {
				p.Bad(k, "%v is not a string", v)
				break
			}
			if err := checkRelPath(s); err != nil {
				p.Bad(k, "%w", err)
				break
			}
			c.Workdir = s
		default:
			p.Bad(k, "unknown key for type process (allowed: %s)", strings.Join(contextKeys, ", "))
		}
	}
	if err := p.Err(); err != nil {
		return Context{}, fmt.Errorf("decode local contextualisation: %w", err)
	}
	return c, nil
}

// checkRelPath rejects paths that are absolute or climb out of the directory they are
// relative to.
func checkRelPath(p string) error {
	if p == "" || strings.ContainsRune(p, 0) {
		return fmt.Errorf("%q is not a file path", p)
	}
	if !filepath.IsLocal(p) {
		return fmt.Errorf("path %q leaves the working directory (want a relative path without ..)", p)
	}
	return nil
}

// stringMap reads a mapping of names to strings (or, with scalars, to any scalar, as YAML
// writes it). The first bad value in name order is reported to p, and ok is false.
func stringMap(p *decode.Problems, key string, v any, scalars bool) (out map[string]string, ok bool) {
	out = map[string]string{}
	switch m := v.(type) {
	case map[string]string:
		maps.Copy(out, m)
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(m)) {
			x := m[k]
			s, ok := x.(string)
			if !ok && scalars {
				s, ok = scalar(x)
			}
			if !ok {
				p.Bad(key+"."+k, "%v is not a string", x)
				return nil, false
			}
			out[k] = s
		}
	default:
		p.Bad(key, "%v is not a mapping of names to strings", v)
		return nil, false
	}
	return out, true
}

// scalar renders a string, number or boolean the way it is written in YAML.
func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	}
	return "", false
}

// parseQuantity reads a memory size: a number of bytes, or a number with one of the
// suffixes K, M, G, T (powers of 1000) or Ki, Mi, Gi, Ti (powers of 1024).
func parseQuantity(v any) (int64, error) {
	const allowed = `want bytes or a size such as "256Mi", "512M" or "1Gi"`
	if f, ok := decode.Number(v); ok {
		if f <= 0 || f != math.Trunc(f) || f > math.MaxInt64 {
			return 0, fmt.Errorf("%v is not a positive whole number of bytes (%s)", v, allowed)
		}
		return int64(f), nil
	}
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("%v is not a size (%s)", v, allowed)
	}
	units := []struct {
		suffix string
		mult   float64
	}{
		{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
		{"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"", 1},
	}
	for _, u := range units {
		num, found := strings.CutSuffix(s, u.suffix)
		if !found {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil {
			break
		}
		n := f * u.mult
		if n < 1 || n > math.MaxInt64 || math.IsNaN(n) {
			return 0, fmt.Errorf("%q is out of range (%s)", s, allowed)
		}
		return int64(n), nil
	}
	return 0, fmt.Errorf("%q is not a size (%s)", s, allowed)
}
