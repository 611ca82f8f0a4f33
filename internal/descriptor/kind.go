package descriptor

import (
	"bytes"
	"errors"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Kind is what a descriptor file holds.
type Kind int

// The kinds of file DetectKind tells apart.
const (
	// KindUnknown is neither a node definition file nor an infrastructure descriptor (for
	// example a cloud-init file), or not YAML at all.
	KindUnknown Kind = iota
	// KindNodeDefs is a node definition file: top-level 'node_def:NAME' keys.
	KindNodeDefs
	// KindInfra is an infrastructure descriptor: top-level nodes or infra_name keys.
	KindInfra
)

// String names the kind for messages.
func (k Kind) String() string {
	switch k {
	case KindNodeDefs:
		return "node definitions"
	case KindInfra:
		return "infrastructure"
	}
	return "unknown"
}

// DetectKind looks at a file's top-level keys: any 'node_def:NAME' key makes it node
// definitions, a nodes or infra_name key an infrastructure descriptor. It reads only the
// YAML structure (no imports, no alias expansion), so it is cheap and safe on any input.
func DetectKind(data []byte) Kind {
	if len(data) > MaxFileSize {
		return KindUnknown
	}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil || len(doc.Content) == 0 {
		return KindUnknown
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return KindUnknown
	}
	kind := KindUnknown
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i].Value
		switch {
		case strings.HasPrefix(k, nodeDefPrefix):
			return KindNodeDefs
		case k == "nodes" || k == "infra_name":
			kind = KindInfra
		}
	}
	return kind
}

// DetectFileKind is DetectKind for a named file, explaining failures: YAML syntax errors
// and the size limit are reported as Errors positioned in file, and so is a valid YAML file
// of neither kind.
func DetectFileKind(file string, data []byte) (Kind, error) {
	if k := DetectKind(data); k != KindUnknown {
		return k, nil
	}
	d := &diag{}
	l := &loader{d: d}
	src := source{file: file, baseDir: "."}
	switch {
	case len(data) > MaxFileSize:
		l.parse(src, data, 0)
	default:
		var doc yaml.Node
		if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
			l.yamlError(src, err)
			break
		}
		d.errorf(Pos{File: file, Line: 1, Col: 1}, "", "",
			"cannot tell what this file is: a node definition file has top-level 'node_def:NAME' keys, an infrastructure descriptor has nodes and infra_name")
	}
	_, err := d.result()
	return KindUnknown, err
}

// ReadFile reads a descriptor file of at most MaxFileSize bytes, refusing anything that is
// not a regular file (a pipe or a device could block or never end). The error is an Errors
// naming the file.
func ReadFile(path string) ([]byte, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, Errors{{Pos: Pos{File: path}, Msg: "cannot read file: " + err.Error()}}
	}
	return data, nil
}
