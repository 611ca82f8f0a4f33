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
// parse as YAML (error names the template and the YAML error line).
func (r *Renderer) CloudInit(name string, tmpl any, c *Context) (string, []Warning, error) {
	var src string
	switch t := tmpl.(type) {
	case string:
		src = t
	case map[string]any, map[any]any:
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
	out, warns, err := r.Render(name, src, c)
	if err != nil {
		return "", warns, err
	}
	if strings.HasPrefix(out, cloudConfigHeader) {
		var doc any
		if err := yaml.Unmarshal([]byte(out), &doc); err != nil {
			return "", warns, fmt.Errorf("cloud-init template %s: the rendered #cloud-config is not valid YAML: %w", name, err)
		}
	}
	return out, warns, nil
}
