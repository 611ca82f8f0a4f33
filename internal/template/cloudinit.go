package template

import (
	"bytes"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// cloudConfigHeader marks cloud-init user data that cloud-init parses as YAML.
const cloudConfigHeader = "#cloud-config"

// CloudInit renders a cloudinit context_template: a string is rendered as is; a mapping is first dumped as
// "#cloud-config\n"+YAML and then rendered (as Occopus does). If the result starts with #cloud-config it must
// parse as YAML (error names the template and the YAML error line). In a dumped mapping, a {{ }} whose value
// spans lines is folded as Occopus' quoted dump folds it (see foldLines), and the document is written out again.
// A node whose config_management section has type puppet_solo also sees "puppet" (see puppetContext).
func (r *Renderer) CloudInit(name string, tmpl any, c *Context) (string, []Warning, error) {
	var src string
	dumped := false
	switch t := tmpl.(type) {
	case string:
		src = t
	case map[string]any, map[any]any:
		dumped = true
		var buf bytes.Buffer
		buf.WriteString(cloudConfigHeader + "\n")
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(t); err != nil {
			return "", nil, fmt.Errorf("cloud-init template %s: cannot dump the mapping as YAML: %w", name, err)
		}
		if err := enc.Close(); err != nil {
			return "", nil, fmt.Errorf("cloud-init template %s: cannot dump the mapping as YAML: %w", name, err)
		}
		src = buf.String()
	case nil:
		return "", nil, fmt.Errorf("cloud-init template %s: context_template is empty", name)
	default:
		return "", nil, fmt.Errorf("cloud-init template %s: context_template must be a string or a mapping, not %T", name, tmpl)
	}
	c, warns, err := r.puppetContext(name, c)
	if err != nil {
		return "", warns, err
	}
	out, w, folded, err := r.render(name, src, c, dumped)
	warns = append(warns, w...)
	if err != nil {
		return "", warns, err
	}
	if strings.HasPrefix(out, cloudConfigHeader) {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(out), &doc); err != nil {
			return "", warns, fmt.Errorf("cloud-init template %s: the rendered #cloud-config is not valid YAML: %w", name, err)
		}
		if len(folded) > 0 {
			// Values that span lines were kept out of the text (see run.out); they go into
			// the parsed document, which is written out again.
			unfold(&doc, folded)
			var buf bytes.Buffer
			enc := yaml.NewEncoder(&buf)
			enc.SetIndent(2)
			if err := enc.Encode(&doc); err != nil {
				return "", warns, fmt.Errorf("cloud-init template %s: cannot write the rendered #cloud-config: %w", name, err)
			}
			if err := enc.Close(); err != nil {
				return "", warns, fmt.Errorf("cloud-init template %s: cannot write the rendered #cloud-config: %w", name, err)
			}
			out = buf.String()
			if !strings.HasPrefix(out, cloudConfigHeader) {
				out = cloudConfigHeader + "\n" + out
			}
		}
	}
	return out, warns, nil
}

// Contextualised is a rendered contextualisation section.
type Contextualised struct {
	// Type is the section's type (cloudinit, docker, process, basic, ...; "" when absent).
	Type string
	// UserData is the rendered cloud-init text (type cloudinit only).
	UserData string
	// Section is the rendered section: every string rendered; for cloudinit,
	// context_template holds UserData.
	Section map[string]any
}

// Contextualisation renders a node definition's contextualisation section as Occopus'
// resolver for its type does: cloudinit renders context_template into user data (see
// CloudInit); docker renders context_variables first (a mapping, or a string that must render
// to a YAML mapping) and offers them at top level, with the b64encode filter, to env and
// command; any other type has every string rendered (RenderValue). name prefixes warning and
// error locations (for example "node_def:app/contextualisation"). A nil section renders to a
// nil result.
func (r *Renderer) Contextualisation(name string, section map[string]any, c *Context) (*Contextualised, []Warning, error) {
	if section == nil {
		return nil, nil, nil
	}
	typ, _ := section["type"].(string)
	out := &Contextualised{Type: typ}
	var warns []Warning
	switch typ {
	case "cloudinit":
		ud, w, err := r.CloudInit(name+".context_template", section["context_template"], c)
		warns = append(warns, w...)
		if err != nil {
			return nil, warns, err
		}
		rest := make(map[string]any, len(section))
		for k, v := range section {
			if k != "context_template" {
				rest[k] = v
			}
		}
		rv, w, err := r.RenderValue(name, rest, c)
		warns = append(warns, w...)
		if err != nil {
			return nil, warns, err
		}
		out.UserData = ud
		out.Section = rv.(map[string]any)
		out.Section["context_template"] = ud
		return out, warns, nil
	case "docker":
		cc := c
		if cv, ok := section["context_variables"]; ok && cv != nil {
			vars, w, err := r.contextVariables(name+".context_variables", cv, c)
			warns = append(warns, w...)
			if err != nil {
				return nil, warns, err
			}
			copied := *c
			copied.Sections = make(map[string]any, len(c.Sections)+len(vars))
			for k, v := range c.Sections {
				copied.Sections[k] = v
			}
			for k, v := range vars {
				copied.Sections[k] = v
			}
			cc = &copied
		}
		rv, w, err := r.RenderValue(name, section, cc)
		warns = append(warns, w...)
		if err != nil {
			return nil, warns, err
		}
		out.Section = rv.(map[string]any)
		return out, warns, nil
	default:
		rv, w, err := r.RenderValue(name, section, c)
		warns = append(warns, w...)
		if err != nil {
			return nil, warns, err
		}
		out.Section = rv.(map[string]any)
		return out, warns, nil
	}
}

// contextVariables renders a docker section's context_variables into a mapping.
func (r *Renderer) contextVariables(name string, cv any, c *Context) (map[string]any, []Warning, error) {
	switch v := cv.(type) {
	case string:
		text, warns, err := r.Render(name, v, c)
		if err != nil {
			return nil, warns, err
		}
		var m map[string]any
		if err := yaml.Unmarshal([]byte(text), &m); err != nil {
			return nil, warns, fmt.Errorf("template %s: the rendered context_variables are not a YAML mapping: %w", name, err)
		}
		return m, warns, nil
	case map[string]any:
		rv, warns, err := r.RenderValue(name, v, c)
		if err != nil {
			return nil, warns, err
		}
		return rv.(map[string]any), warns, nil
	default:
		return nil, nil, fmt.Errorf("template %s: context_variables must be a mapping or a string, not %T", name, cv)
	}
}
