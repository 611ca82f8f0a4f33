package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/skyfleet/skyfleet/internal/client"
)

func newDestroyCmd(e *env) *cobra.Command {
	var (
		remote remoteConfig
		id     string
		noWait bool
	)
	cmd := &cobra.Command{
		Use:   "destroy -i ID",
		Short: "Destroy an infrastructure and follow until every instance is gone (as occopus-destroy)",
		Long: `destroy asks the server to destroy the infrastructure (draining instances where the node
drains) and shows how many instances each node still has until none is left and the
infrastructure is gone. Ctrl-C stops following; the destruction goes on.

Unlike occopus-destroy, an unknown id exits with status 1.`,
		Example: `  skyfleet destroy -i 5f0c...`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := remote.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if _, err := c.DeleteInfra(ctx, id, false); err != nil {
				return fmt.Errorf("destroy %s: %w", id, err)
			}
			_, _ = fmt.Fprintf(e.stderr, "destroying infrastructure %s\n", id)
			if noWait {
				return nil
			}
			err = followDestroy(ctx, c, id, e.stderr)
			if errors.Is(err, context.Canceled) {
				_, _ = fmt.Fprintf(e.stderr, "stopped following; the destruction of %s goes on\n", id)
				return &ExitError{Code: 130}
			}
			return err
		},
	}
	addRemoteFlags(cmd, &remote)
	cmd.Flags().StringVarP(&id, "infra-id", "i", "", "infrastructure id (required)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the destruction has started")
	_ = cmd.MarkFlagRequired("infra-id")
	return cmd
}

// followDestroy polls until the infrastructure is gone, printing the remaining instances per
// node whenever they change.
func followDestroy(ctx context.Context, c *client.Client, id string, w io.Writer) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	last := ""
	errs := 0
	for {
		d, err := c.Infra(ctx, id)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case client.IsNotFound(err):
			_, _ = fmt.Fprintf(w, "%s infrastructure %s is gone\n", time.Now().Format("15:04:05"), id)
			return nil
		case err != nil:
			errs++
			if errs >= 5 {
				return fmt.Errorf("follow the destruction of %s: %w", id, err)
			}
		default:
			errs = 0
			line := ""
			for _, n := range d.Nodes {
				if line != "" {
					line += ", "
				}
				line += fmt.Sprintf("%s %d", n.Name, len(n.Instances))
			}
			if line != last {
				last = line
				_, _ = fmt.Fprintf(w, "%s instances left: %s\n", time.Now().Format("15:04:05"), line)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
