package docker

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/docker/go-units"

	"github.com/skyfleet/skyfleet/internal/cloud/decode"
)

// Origins of an image.
const (
	// OriginDockerHub pulls image:tag from the registry when it is not present locally.
	OriginDockerHub = "dockerhub"
	// OriginLocal uses image:tag as it exists on the Docker host; it is never pulled.
	OriginLocal = "local"
)

// minMemory is the smallest memory limit the Docker engine accepts.
const minMemory = 6 * 1024 * 1024

// Resource is the decoded `resource` section of a docker node definition: Occopus' keys
// (type, endpoint, origin, image, tag, name) plus skyfleet's extras (network, cpus, memory).
type Resource struct {
	// Type is always "docker".
	Type string
	// Endpoint is the Docker Engine API address: unix:///path/docker.sock or tcp://HOST:PORT.
	Endpoint string
	// Origin is dockerhub, local, or the location of an image tarball (file:///path,
	// /absolute/path, or an http(s) URL of a root filesystem tarball that the engine
	// imports, as Occopus does).
	Origin string
	// Image and Tag name the image (image without a tag; tag separately, as Occopus).
	Image string
	Tag   string
	// Name is the container name; empty means skyfleet-<node>-<first 8 of node id>.
	Name string
	// Network is the user-defined bridge network; empty means skyfleet-<first 8 of infra
	// id>, created on demand.
	Network string
	// NanoCPUs is the CPU limit in billionths of a CPU (`cpus: 0.5`); 0 is unlimited.
	NanoCPUs int64
	// Memory is the memory limit in bytes (`memory: 256m`); 0 is unlimited.
	Memory int64
}

// ImageRef returns image:tag.
func (r Resource) ImageRef() string { return r.Image + ":" + r.Tag }

// resourceKeys lists the keys a docker resource section may have, for error messages.
var resourceKeys = []string{"cpus", "endpoint", "image", "memory", "name", "network", "origin", "tag", "type"}

// containerNameRE is the Docker engine's own rule for container names.
var containerNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// DecodeResource decodes and checks a rendered resource section strictly: unknown keys,
// missing required keys and bad values are all reported at once, each naming the key, the
// bad value and what is allowed.
func DecodeResource(m map[string]any) (Resource, error) {
	var r Resource
	p := decode.NewProblems("resource")
	text := map[string]*string{
		"type": &r.Type, "endpoint": &r.Endpoint, "origin": &r.Origin, "image": &r.Image, "name": &r.Name, "network": &r.Network,
	}
	for k, v := range p.Walk(m, text) {
		switch k {
		case "tag":
			if f, ok := v.(float64); ok {
				// YAML reads tag: 3.10 as the number 3.1; the tag the user meant is lost.
				p.Bad(k, "%v is a number; quote it (tag: \"%v\") so that YAML keeps it as written", f, f)
				continue
			}
			r.Tag = p.Text(k, v)
		case "cpus":
			f, ok := decode.NumberOrString(v)
			if !ok || f < 0.01 || math.IsInf(f, 0) || math.IsNaN(f) {
				p.Bad(k, "%v is not allowed; want a number of CPUs of at least 0.01 (for example 0.5 or 2)", v)
				continue
			}
			r.NanoCPUs = int64(math.Round(f * 1e9))
		case "memory":
			var s string
			switch x := v.(type) {
			case string:
				s = x
			case int, int64, uint64:
				s = fmt.Sprint(x)
			default:
				p.Bad(k, "%v is not allowed; want a size such as 256m or 1g", v)
				continue
			}
			n, err := units.RAMInBytes(s)
			if err != nil || n < minMemory {
				p.Bad(k, "%q is not allowed; want a size of at least 6m, such as 256m or 1g (k, m, g suffixes are powers of 1024)", s)
				continue
			}
			r.Memory = n
		default:
			p.Unknown(k, resourceKeys)
		}
	}
	p.Require(m, "a docker resource", "type", "endpoint", "origin", "image", "tag")
	p.WantType(r.Type, "docker")
	if r.Endpoint != "" {
		if err := checkEndpoint(r.Endpoint); err != nil {
			p.Bad("endpoint", "%v", err)
		}
	}
	if r.Origin != "" {
		if err := checkOrigin(r.Origin); err != nil {
			p.Bad("origin", "%v", err)
		}
	}
	if r.Image != "" {
		last := r.Image[strings.LastIndex(r.Image, "/")+1:]
		if strings.Contains(last, ":") || strings.Contains(r.Image, "@") {
			p.Bad("image", "%q carries a tag or digest; put the tag in tag: (image: nginx, tag: \"1.25\")", r.Image)
		}
	}
	if r.Name != "" && (!containerNameRE.MatchString(r.Name) || len(r.Name) > 128) {
		p.Bad("name", "%q is not a valid container name (letters, digits, _ . - ; starting with a letter or digit; at most 128)", r.Name)
	}
	if r.Network != "" {
		switch r.Network {
		case "host", "none":
			p.Bad("network", "%q gives the container no address of its own; name a user-defined bridge network or leave network out", r.Network)
		default:
			if !containerNameRE.MatchString(r.Network) {
				p.Bad("network", "%q is not a valid network name (letters, digits, _ . - ; starting with a letter or digit)", r.Network)
			}
		}
	}
	if err := p.Err(); err != nil {
		return Resource{}, fmt.Errorf("docker resource: %w", err)
	}
	return r, nil
}

// checkEndpoint accepts the plain (non-TLS) Docker API addresses, as Occopus does.
func checkEndpoint(ep string) error {
	u, err := url.Parse(ep)
	if err != nil {
		return fmt.Errorf("%q is not a URL; want unix:///var/run/docker.sock or tcp://127.0.0.1:2375", ep)
	}
	switch u.Scheme {
	case "unix":
		if u.Path == "" {
			return fmt.Errorf("%q names no socket path; want unix:///var/run/docker.sock", ep)
		}
		return nil
	case "tcp":
		if u.Host == "" {
			return fmt.Errorf("%q names no host; want tcp://HOST:PORT", ep)
		}
		if u.Port() == "2376" {
			return fmt.Errorf("%q is the Docker TLS port; TLS endpoints are not supported (as in Occopus): use a unix socket or a plain tcp endpoint", ep)
		}
		return nil
	case "https":
		return fmt.Errorf("%q: TLS endpoints are not supported (as in Occopus); use unix:///var/run/docker.sock or tcp://HOST:2375", ep)
	case "http":
		return fmt.Errorf("%q: write plain HTTP endpoints as tcp://%s", ep, u.Host)
	}
	return fmt.Errorf("%q has scheme %q; want unix:// or tcp://", ep, u.Scheme)
}

// checkOrigin accepts dockerhub, local, file URLs and absolute paths of a tarball, and
// http(s) URLs.
func checkOrigin(o string) error {
	switch o {
	case OriginDockerHub, OriginLocal:
		return nil
	}
	if p, ok := strings.CutPrefix(o, "file://"); ok {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("%q: a file URL needs an absolute path (file:///path/image.tar)", o)
		}
		return nil
	}
	if filepath.IsAbs(o) {
		return nil
	}
	if u, err := url.Parse(o); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return nil
	}
	return fmt.Errorf("%q is not allowed; want dockerhub, local, or the location of an image tarball (file:///path/image.tar, /path/image.tar, http(s)://…)", o)
}

// Context is the decoded `contextualisation` section of type docker.
type Context struct {
	// Env holds "KEY=VALUE" strings, already rendered by the engine.
	Env []string
	// Command replaces the image's command; nil keeps the image's. A string is split into
	// words as a POSIX shell would (quotes and backslashes), as Occopus' docker-py does.
	Command []string
}

// contextKeys are the keys of a docker contextualisation section.
var contextKeys = []string{"command", "context_variables", "env", "type"}

// DecodeContext decodes a rendered `contextualisation` section. A nil section is an empty
// context (the image's own command and environment). context_variables is accepted and
// ignored: the engine has already rendered env and command with it.
func DecodeContext(m map[string]any) (Context, error) {
	var c Context
	if m == nil {
		return c, nil
	}
	p := decode.NewProblems("contextualisation")
	if t, _ := m["type"].(string); t != "docker" {
		p.Bad("type", "%v is not allowed for a docker resource; want docker (with env and command)", m["type"])
	}
	for k, v := range p.Walk(m, nil) {
		switch k {
		case "type", "context_variables":
		case "env":
			env, err := decodeEnv(v)
			if err != nil {
				p.Bad(k, "%v", err)
			}
			c.Env = env
		case "command":
			switch x := v.(type) {
			case nil:
			case string:
				words, err := SplitWords(x)
				if err != nil {
					p.Bad(k, "%v", err)
				}
				c.Command = words
			case []any:
				for i, w := range x {
					switch s := w.(type) {
					case string:
						c.Command = append(c.Command, s)
					case int, int64, float64, bool:
						c.Command = append(c.Command, fmt.Sprint(s))
					default:
						p.Bad(fmt.Sprintf("%s[%d]", k, i), "%v is a %s; want a string", w, decode.TypeName(w))
					}
				}
			default:
				p.Bad(k, "is a %s; want a string or a list of strings", decode.TypeName(v))
			}
		default:
			p.Unknown(k, contextKeys)
		}
	}
	if err := p.Err(); err != nil {
		return Context{}, fmt.Errorf("docker contextualisation: %w", err)
	}
	return c, nil
}

// envNameRE is what a shell accepts as a variable name.
var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// decodeEnv accepts Occopus' list of "KEY=VALUE" strings, and a KEY: VALUE mapping. Errors
// name the variable, never its value (env often carries passwords).
func decodeEnv(v any) ([]string, error) {
	var out []string
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []any:
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("item %d is a %s; want a \"KEY=VALUE\" string", i, decode.TypeName(e))
			}
			name, _, found := strings.Cut(s, "=")
			if !found {
				// Without "=" the whole item may be a value; do not quote it.
				return nil, fmt.Errorf("item %d has no \"=\"; want a \"KEY=VALUE\" string", i)
			}
			if !envNameRE.MatchString(name) {
				return nil, fmt.Errorf("item %d: %q is not a variable name (letters, digits and _, not starting with a digit)", i, name)
			}
			out = append(out, s)
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			if !envNameRE.MatchString(k) {
				return nil, fmt.Errorf("%q is not a variable name", k)
			}
			val := x[k]
			if val == nil {
				val = ""
			}
			out = append(out, k+"="+fmt.Sprint(val))
		}
	default:
		return nil, fmt.Errorf("is a %s; want a list of \"KEY=VALUE\" strings", decode.TypeName(v))
	}
	return out, nil
}

// SplitWords splits a command line into words as a POSIX shell does for quoting: single
// quotes keep everything literally, double quotes allow \" \\ \$ \` escapes, a backslash
// outside quotes escapes the next character. It expands nothing (no variables, globs or
// operators): the words go to the container's entrypoint as they are, as with Python's
// shlex.split in Occopus.
func SplitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	const (
		plain = iota
		single
		double
	)
	state := plain
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch state {
		case single:
			if c == '\'' {
				state = plain
			} else {
				cur.WriteByte(c)
			}
		case double:
			switch {
			case c == '"':
				state = plain
			case c == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`\n", s[i+1]) >= 0:
				i++
				if s[i] != '\n' {
					cur.WriteByte(s[i])
				}
			default:
				cur.WriteByte(c)
			}
		default:
			switch c {
			case ' ', '\t', '\n', '\r':
				if inWord {
					words = append(words, cur.String())
					cur.Reset()
					inWord = false
				}
			case '\'':
				state, inWord = single, true
			case '"':
				state, inWord = double, true
			case '\\':
				if i+1 >= len(s) {
					return nil, errors.New("command ends with a lone backslash")
				}
				i++
				if s[i] != '\n' {
					cur.WriteByte(s[i])
					inWord = true
				}
			default:
				cur.WriteByte(c)
				inWord = true
			}
		}
	}
	switch state {
	case single:
		return nil, errors.New("command has an unclosed single quote")
	case double:
		return nil, errors.New("command has an unclosed double quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
