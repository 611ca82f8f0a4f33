package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/skyfleet/skyfleet/internal/api"
	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/template"
)

// upMessageFile is the optional file of an example directory that up renders and prints once
// every node is ready: where to point a browser, which load command to paste.
const upMessageFile = "up.txt"

// upMessage is an example directory's ready message, checked before anything starts.
type upMessage struct {
	path  string
	src   string
	infra *descriptor.Infra
}

// loadUpMessage reads DIR/up.txt, if there is one, and the descriptor whose variables it may
// use. A missing file is no message (nil, nil).
func loadUpMessage(dir, infraFile string) (*upMessage, error) {
	p := filepath.Join(dir, upMessageFile)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("up: read %s: %w", p, err)
	}
	in, _, err := descriptor.LoadInfraFile(infraFile)
	if err != nil {
		return nil, err
	}
	m := &upMessage{path: p, src: string(data), infra: in}
	// Render once with a stand-in address for every node, so that a mistake in the file is
	// reported before anything starts rather than after the build.
	if _, err := m.render("00000000-0000-0000-0000-000000000000", "http://127.0.0.1:5000", anyNode{}); err != nil {
		return nil, err
	}
	return m, nil
}

// anyNode answers getip for any node with one stand-in address.
type anyNode struct{}

func (anyNode) Instances(string) []template.NodeAddress {
	return []template.NodeAddress{{Address: "127.0.0.1"}}
}

// render evaluates the message for a ready infrastructure: infra_id, infra_name, user_id,
// variables, skyfleet_server (the server's URL) and getip/getipall/getprivip over the ready
// instances of each node.
func (m *upMessage) render(infraID, serverURL string, l template.Lookup) (string, error) {
	c := &template.Context{
		InfraID:   infraID,
		InfraName: m.infra.Name,
		UserID:    m.infra.UserID,
		Variables: m.infra.Variables,
		Sections:  map[string]any{"skyfleet_server": serverURL},
		Lookup:    l,
	}
	out, warns, err := template.New(template.Options{}).Render(m.path, m.src, c)
	if err != nil {
		return "", fmt.Errorf("render %s: %w", m.path, err)
	}
	if len(warns) > 0 {
		w := warns[0]
		return out, fmt.Errorf("render %s:%d: %s", m.path, w.Line, w.Msg)
	}
	return out, nil
}

// detailLookup answers getip and friends from the ready instances of an infrastructure's
// detail, in the order the server lists them (oldest first).
type detailLookup struct{ d *api.InfraDetail }

func (l detailLookup) Instances(node string) []template.NodeAddress {
	var out []template.NodeAddress
	for _, n := range l.d.Nodes {
		if n.Name != node {
			continue
		}
		for _, in := range n.Instances {
			if in.State != "ready" || len(in.Addresses) == 0 {
				continue
			}
			out = append(out, template.NodeAddress{Address: in.Addresses[0], Private: in.PrivateAddress})
		}
	}
	return out
}
