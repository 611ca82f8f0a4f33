package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/skyfleet/skyfleet/internal/client"
	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/engine"
	"github.com/skyfleet/skyfleet/internal/store"
	"github.com/skyfleet/skyfleet/internal/template"
)

func newImportCmd(e *env) *cobra.Command {
	var (
		remote  remoteConfig
		dataDir string
	)
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Import node definitions (as occopus-import)",
		Long: `import reads a node definition file ('node_def:NAME' keys), resolves its !yaml_import and
!text_import tags relative to the file, checks it, and stores every definition, replacing
ones of the same name. Infrastructures already built keep the definitions they were built with.

By default the definitions go to the server (--server). With --data-dir they are written
straight into that data directory, which no server may hold at the time: this is the
tutorial's order, import first and then start "skyfleet serve --data-dir" on it.

Unlike occopus-import, an invalid file exits with status 1 (every problem is printed, one per
line, as file:line:col).`,
		Example: `  skyfleet import nodes/node_definitions.yaml
  skyfleet import --data-dir ~/.local/state/skyfleet nodes/node_definitions.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			defs, err := loadNodeDefs(e.stderr, args[0])
			if err != nil {
				return err
			}
			var names []string
			if dataDir != "" {
				names, err = importIntoStore(cmd, e, dataDir, defs, args[0])
			} else {
				names, err = importThroughServer(cmd, &remote, defs, args[0])
			}
			if err != nil {
				return err
			}
			_, _ = fmt.Fprintf(e.stdout, "Successfully imported nodes: %s\n", strings.Join(names, ", "))
			return nil
		},
	}
	addRemoteFlags(cmd, &remote)
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "write into this data directory instead of sending to a server")
	return cmd
}

// loadNodeDefs parses a node definition file with its imports, printing warnings and every
// error on w.
func loadNodeDefs(w io.Writer, path string) (descriptor.NodeDefs, error) {
	defs, warns, err := descriptor.LoadNodeDefsFile(path)
	for _, wn := range warns {
		_, _ = fmt.Fprintln(w, wn.String())
	}
	if err != nil {
		var de descriptor.Errors
		if errors.As(err, &de) {
			for _, d := range de {
				_, _ = fmt.Fprintln(w, d.Error())
			}
			return nil, &ExitError{Code: 1}
		}
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	return defs, nil
}

// importThroughServer sends the resolved definitions (imports substituted) to the server.
func importThroughServer(cmd *cobra.Command, remote *remoteConfig, defs descriptor.NodeDefs, path string) ([]string, error) {
	c, err := remote.client()
	if err != nil {
		return nil, err
	}
	return importDefsWith(cmd.Context(), c, defs, path)
}

// importDefsWith sends the definitions, serialised with their imports resolved, through c.
func importDefsWith(ctx context.Context, c *client.Client, defs descriptor.NodeDefs, path string) ([]string, error) {
	var doc bytes.Buffer
	for _, name := range slices.Sorted(maps.Keys(defs)) {
		y, err := defs[name].MarshalYAML()
		if err != nil {
			return nil, fmt.Errorf("import %s: %w", path, err)
		}
		doc.Write(y)
	}
	names, err := c.ImportNodeDefs(ctx, path, doc.Bytes())
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	return names, nil
}

// importIntoStore writes the definitions straight into a data directory no server holds.
func importIntoStore(cmd *cobra.Command, e *env, dataDir string, defs descriptor.NodeDefs, path string) ([]string, error) {
	st, err := store.Open(dataDir, store.Options{Logger: e.logger(), Timeout: 500 * time.Millisecond})
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return nil, fmt.Errorf("import into %s: %w; a running server holds it: import through that server instead (skyfleet import %s --server URL)", dataDir, err, path)
		}
		return nil, fmt.Errorf("import into %s: %w", dataDir, err)
	}
	defer func() { _ = st.Close() }()
	// The engine owns the stored form of node definitions; nothing is started here.
	eng, err := engine.New(engine.Options{Store: st, Providers: cloud.NewRegistry(), Renderer: template.New(template.Options{}), Logger: e.logger()})
	if err != nil {
		return nil, err
	}
	names, err := eng.ImportNodeDefs(cmd.Context(), defs, path)
	if err != nil {
		return nil, fmt.Errorf("import %s into %s: %w", path, dataDir, err)
	}
	return names, nil
}
