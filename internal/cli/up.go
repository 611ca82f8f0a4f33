package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/skyfleet/skyfleet/internal/client"
	"github.com/skyfleet/skyfleet/internal/descriptor"
)

// upTeardownTimeout bounds how long up waits for the destruction after Ctrl-C.
const upTeardownTimeout = 10 * time.Minute

func newUpCmd(e *env) *cobra.Command {
	var (
		c         daemonConfig
		keep      bool
		infraName string
	)
	cmd := &cobra.Command{
		Use:   "up DIR",
		Short: "Run a whole example directory: serve, import its nodes, build it, show it; Ctrl-C destroys it",
		Long: `up starts an embedded server (it takes serve's flags), imports the directory's node
definitions, builds its infrastructure, shows each node's ready/target count live and, once
every node is ready, the addresses of every instance. Ctrl-C destroys the infrastructure
(showing the instances left) and exits; with --keep it leaves everything running, and
"skyfleet serve --data-dir DIR" takes it over again.

The directory holds:
  nodes/*.yaml            node definition files (or node_definitions.yaml at the top)
  infra.yaml              the infrastructure descriptor (or infrastructure_descriptor.yaml;
                          --infra FILE builds another descriptor of the directory)
  up.txt                  optional: a message printed once everything is ready, rendered as
                          a template with infra_id, infra_name, variables, skyfleet_server
                          and getip/getipall/getprivip of the ready instances

Without --data-dir the state goes to a new temporary directory, removed after a clean
teardown.`,
		Example: `  skyfleet up examples/autoscaling
  skyfleet up examples/autoscaling --infra infra-real.yaml
  skyfleet up examples/autoscaling --listen 127.0.0.1:5050 --keep --data-dir /tmp/demo`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUp(cmd, e, &c, args[0], infraName, keep)
		},
	}
	addDaemonFlags(cmd, &c, "directory of skyfleet's state (default: a new temporary directory)")
	cmd.Flags().BoolVar(&keep, "keep", false, "on Ctrl-C leave the infrastructure running instead of destroying it")
	cmd.Flags().StringVar(&infraName, "infra", "", "infrastructure descriptor to build, relative to DIR (default infra.yaml, else infrastructure_descriptor.yaml)")
	return cmd
}

// upLayout finds the node definition files and the descriptor of an example directory.
// infraName, when not empty, names the descriptor (relative to dir unless absolute).
func upLayout(dir, infraName string) (nodeFiles []string, infra string, err error) {
	nodeFiles, err = filepath.Glob(filepath.Join(dir, "nodes", "*.yaml"))
	if err != nil {
		return nil, "", err
	}
	if len(nodeFiles) == 0 {
		if p := filepath.Join(dir, "node_definitions.yaml"); fileExists(p) {
			nodeFiles = []string{p}
		}
	}
	slices.Sort(nodeFiles)
	if infraName != "" {
		p := infraName
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if !fileExists(p) {
			return nil, "", fmt.Errorf("up %s: --infra %s: no such file %s", dir, infraName, p)
		}
		infra = p
	}
	for _, name := range []string{"infra.yaml", "infrastructure_descriptor.yaml"} {
		if infra != "" {
			break
		}
		if p := filepath.Join(dir, name); fileExists(p) {
			infra = p
			break
		}
	}
	switch {
	case len(nodeFiles) == 0:
		return nil, "", fmt.Errorf("up %s: no node definitions: want %s or %s", dir,
			filepath.Join(dir, "nodes", "*.yaml"), filepath.Join(dir, "node_definitions.yaml"))
	case infra == "":
		return nil, "", fmt.Errorf("up %s: no infrastructure descriptor: want %s or %s", dir,
			filepath.Join(dir, "infra.yaml"), filepath.Join(dir, "infrastructure_descriptor.yaml"))
	}
	return nodeFiles, infra, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func runUp(cmd *cobra.Command, e *env, c *daemonConfig, dir, infraName string, keep bool) error {
	// up's own output is the progress; the server's request and scaling logs would bury it,
	// so they are shown from warnings up unless --log-level asks otherwise.
	if f := cmd.Flags().Lookup("log-level"); f != nil && !f.Changed {
		e.logLevel = "warn"
	}
	nodeFiles, infraFile, err := upLayout(dir, infraName)
	if err != nil {
		return err
	}
	msg, err := loadUpMessage(dir, infraFile)
	if err != nil {
		return err
	}
	// Check everything before starting anything.
	allDefs := make([]descriptor.NodeDefs, 0, len(nodeFiles))
	for _, f := range nodeFiles {
		defs, err := loadNodeDefs(e.stderr, f)
		if err != nil {
			return err
		}
		allDefs = append(allDefs, defs)
	}
	dataDir, tempDir := c.dataDir, false
	if dataDir == "" {
		if dataDir, err = os.MkdirTemp("", "skyfleet-up-"); err != nil {
			return fmt.Errorf("up: create a data directory: %w", err)
		}
		tempDir = true
	}
	log := e.logger()
	d, err := newDaemon(cmd, c, dataDir, log)
	if err != nil {
		return err
	}
	// The server outlives Ctrl-C: it must still destroy the infrastructure.
	serverCtx, stopServer := context.WithCancel(context.WithoutCancel(cmd.Context()))
	defer stopServer()
	runErr := make(chan error, 1)
	go func() { runErr <- d.Run(serverCtx) }()
	stop := func() error {
		stopServer()
		return <-runErr
	}

	ctx := cmd.Context()
	cl, err := client.New(client.Options{Addr: d.URL, Token: d.Token})
	if err != nil {
		return errors.Join(err, stop())
	}
	_, _ = fmt.Fprintf(e.stdout, "skyfleet serving at %s (data directory %s)\n", d.URL, dataDir)
	for i, defs := range allDefs {
		names, err := importDefsWith(ctx, cl, defs, nodeFiles[i])
		if err != nil {
			return errors.Join(err, stop())
		}
		_, _ = fmt.Fprintf(e.stdout, "imported nodes from %s: %v\n", nodeFiles[i], names)
	}
	res, err := submitInfra(ctx, cl, infraFile, "", e)
	if err != nil {
		return errors.Join(err, stop())
	}
	id := res.ID
	_, _ = fmt.Fprintf(e.stdout, "building infrastructure %s from %s\n", id, infraFile)

	p := newProgress(&failedTail{w: e.stdout, dataDir: dataDir})
	detail, err := p.waitReady(ctx, cl, id, false)
	if err == nil {
		_, _ = fmt.Fprintf(e.stdout, "infrastructure %s is ready\n", id)
		printAddresses(e.stdout, detail)
		if msg != nil {
			text, err := msg.render(id, d.URL, detailLookup{detail})
			if err != nil {
				_, _ = fmt.Fprintf(e.stderr, "up: %v\n", err)
			} else {
				_, _ = fmt.Fprintf(e.stdout, "\n%s\n", strings.TrimRight(text, "\n"))
			}
		}
		if keep {
			_, _ = fmt.Fprintln(e.stdout, "Press Ctrl-C to stop the server and leave the infrastructure running.")
		} else {
			_, _ = fmt.Fprintln(e.stdout, "Press Ctrl-C to destroy the infrastructure and exit.")
		}
		// Keep showing each node's counts as the autoscaler changes them.
		if err := followCounts(ctx, cl, id, p, runErr); err != nil {
			return err
		}
	} else if ctx.Err() == nil {
		_, _ = fmt.Fprintf(e.stderr, "up: %v\n", err)
	}

	if keep {
		_, _ = fmt.Fprintf(e.stdout, "leaving infrastructure %s running; take it over again with: skyfleet serve --data-dir %s\n", id, dataDir)
		return stop()
	}
	_, _ = fmt.Fprintf(e.stdout, "destroying infrastructure %s\n", id)
	tctx, cancel := context.WithTimeout(context.Background(), upTeardownTimeout)
	defer cancel()
	derr := func() error {
		if _, err := cl.DeleteInfra(tctx, id, false); err != nil {
			return fmt.Errorf("destroy %s: %w", id, err)
		}
		return followDestroy(tctx, cl, id, e.stdout)
	}()
	serr := stop()
	if derr != nil {
		return errors.Join(fmt.Errorf("up: %w; the state is kept in %s (skyfleet serve --data-dir %s, then skyfleet destroy -i %s)", derr, dataDir, dataDir, id), serr)
	}
	if tempDir && serr == nil {
		if err := os.RemoveAll(dataDir); err != nil {
			return fmt.Errorf("up: remove %s: %w", dataDir, err)
		}
	}
	return serr
}

// followCounts shows the nodes' ready/target counts whenever they change, until ctx ends
// (nil) or the server stops (its error).
func followCounts(ctx context.Context, cl *client.Client, id string, p *progress, runErr <-chan error) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-runErr:
			return fmt.Errorf("up: the server stopped: %w", err)
		case <-t.C:
			// A failed poll is skipped; the next one tries again.
			if d, err := cl.Infra(ctx, id); err == nil {
				p.show(d)
			}
		}
	}
}
