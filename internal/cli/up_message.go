package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

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

// failedTail passes progress output through and, after each line reporting a failed
// instance of the local provider, prints the last lines its process wrote to stderr: why a
// node's program stopped (a missing PostgreSQL, a port in use) is on the same screen instead
// of in a file under the data directory. It reads the files directly, on this machine, so
// nothing of them goes through the API.
type failedTail struct {
	w       io.Writer
	dataDir string
	partial []byte
}

var failedLine = regexp.MustCompile(`instance ([0-9a-fA-F-]{36}) failed: `)

// failedTailLines is how many lines of a failed instance's stderr are shown.
const failedTailLines = 5

func (f *failedTail) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil {
		return n, err
	}
	f.partial = append(f.partial, p...)
	for {
		i := bytes.IndexByte(f.partial, '\n')
		if i < 0 {
			break
		}
		line := string(f.partial[:i])
		f.partial = f.partial[i+1:]
		if m := failedLine.FindStringSubmatch(line); m != nil {
			f.showTail(m[1])
		}
	}
	return n, nil
}

func (f *failedTail) showTail(nodeID string) {
	path := filepath.Join(f.dataDir, "local", "instances", "local-"+nodeID, "stderr.log")
	lines := tailLines(path, failedTailLines)
	if len(lines) == 0 {
		return
	}
	_, _ = fmt.Fprintf(f.w, "  its last output (%s):\n", path)
	for _, l := range lines {
		_, _ = fmt.Fprintf(f.w, "    %s\n", l)
	}
}

// tailLines returns the last n non-empty lines of the last 8 KiB of a file (none when it
// cannot be read).
func tailLines(path string, n int) []string {
	fh, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer func() { _ = fh.Close() }()
	const window = 8 << 10
	st, err := fh.Stat()
	if err != nil {
		return nil
	}
	off := max(st.Size()-window, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := fh.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(buf), "\n") {
		if l = strings.TrimRight(l, "\r"); strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}
