package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/skyfleet/skyfleet/internal/api"
	"github.com/skyfleet/skyfleet/internal/client"
	"github.com/skyfleet/skyfleet/internal/descriptor"
)

func newBuildCmd(e *env) *cobra.Command {
	var (
		remote      remoteConfig
		id          string
		noWait      bool
		keepWaiting bool
	)
	cmd := &cobra.Command{
		Use:   "build INFRA_FILE [-i ID]",
		Short: "Submit an infrastructure descriptor and follow it until it is ready (as occopus-build)",
		Long: `build sends the infrastructure descriptor to the server, prints the infrastructure id on
stdout, then follows the build on stderr, one line per node whenever its counts change, until
every node has its target of ready instances. It then prints the addresses of every instance.

With -i ID the descriptor replaces the one stored under ID (new nodes are created, removed
ones dropped, targets re-clamped), or creates the infrastructure under that id.

An instance that fails ends the wait with status 1 (the infrastructure stays and the server
keeps repairing it; see skyfleet status and skyfleet destroy), unless --keep-waiting is given.
Ctrl-C stops following; the build goes on.`,
		Example: `  skyfleet build infra.yaml
  skyfleet build infra.yaml -i micado-worker-infra --no-wait`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := remote.client()
			if err != nil {
				return err
			}
			res, err := submitInfra(cmd.Context(), c, args[0], id, e)
			if err != nil {
				return err
			}
			_, _ = fmt.Fprintln(e.stdout, res.ID)
			if noWait {
				return nil
			}
			return followBuild(cmd.Context(), c, res.ID, e, keepWaiting)
		},
	}
	addRemoteFlags(cmd, &remote)
	cmd.Flags().StringVarP(&id, "infra-id", "i", "", "replace the descriptor stored under this id (or create the infrastructure under it)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "print the id and return without following the build")
	cmd.Flags().BoolVar(&keepWaiting, "keep-waiting", false, "keep following after an instance fails (the server replaces it)")
	return cmd
}

// submitInfra reads and submits a descriptor file, printing its warnings on stderr.
func submitInfra(ctx context.Context, c *client.Client, path, id string, e *env) (*api.SubmitResult, error) {
	data, err := descriptor.ReadFile(path)
	if err != nil {
		return nil, err
	}
	name := filepath.Base(path)
	var res *api.SubmitResult
	if id != "" {
		res, err = c.PutInfra(ctx, id, name, data)
	} else {
		res, err = c.CreateInfra(ctx, name, data)
	}
	if err != nil {
		return nil, fmt.Errorf("submit %s: %w", path, err)
	}
	for _, w := range res.Warnings {
		_, _ = fmt.Fprintf(e.stderr, "%s: warning: %s\n", w.Position, w.Message)
	}
	return res, nil
}

// followBuild shows progress until the infrastructure is ready, then its addresses.
func followBuild(ctx context.Context, c *client.Client, id string, e *env, keepWaiting bool) error {
	p := newProgress(e.stderr)
	d, err := p.waitReady(ctx, c, id, !keepWaiting)
	switch {
	case errors.Is(err, context.Canceled):
		_, _ = fmt.Fprintf(e.stderr, "stopped following; infrastructure %s keeps building (skyfleet status -i %s)\n", id, id)
		return &ExitError{Code: 130}
	case errors.Is(err, errInstanceFailed):
		_, _ = fmt.Fprintf(e.stderr, "infrastructure %s is not ready: an instance failed; the server keeps replacing failed instances (skyfleet status -i %s, skyfleet destroy -i %s)\n", id, id, id)
		return &ExitError{Code: 1}
	case err != nil:
		return err
	}
	_, _ = fmt.Fprintf(e.stderr, "infrastructure %s is ready\n", id)
	printAddresses(e.stderr, d)
	return nil
}
