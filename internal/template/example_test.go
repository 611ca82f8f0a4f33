package template_test

import (
	"fmt"

	"github.com/skyfleet/skyfleet/internal/template"
)

type addresses map[string][]template.NodeAddress

func (a addresses) Instances(node string) []template.NodeAddress { return a[node] }

func ExampleRenderer_Render() {
	r := template.New(template.Options{})
	c := &template.Context{
		InfraID:   "3f1c2a9e-77aa-4b0e-9d51-0c8e9f5b1234",
		Name:      "app",
		Variables: map[string]any{"port": 8080},
		Lookup:    addresses{"db": {{Address: "10.0.0.5"}}},
	}
	out, warns, err := r.Render("cloud_init_app.yaml",
		"DB={{ getip('db') }}:5432 PORT={{ variables.port }} ID={{ cut(infra_id, 0, 8) }} X={{ variables.typo }}\n"+
			"{% raw %}{{ .Address }}{% endraw %} {{'{{'}}end{{'}}'}}", c)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out)
	for _, w := range warns {
		fmt.Println(w)
	}
	// Output:
	// DB=10.0.0.5:5432 PORT=8080 ID=3f1c2a9e X=
	// {{ .Address }} {{end}}
	// template cloud_init_app.yaml line 1: undefined variable "variables.typo"
}
