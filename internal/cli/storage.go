package cli

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/skyfleet/skyfleet/internal/demoapp"
)

func newStorageCmd(e *env) *cobra.Command {
	var listen string
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "storage",
		Short: "Serve large deterministic objects for the demo app to transfer",
		Long: `Run the storage node role of the demo: an HTTP object server whose objects are generated
from their name and offset (never stored), so that any size costs no disk and the same URL
always gives the same bytes.

  GET|HEAD /objects/{name}?size=1G   sizes: bytes or K, M, G, T (powers of 1024), up to 1T;
                                     default 1G. Single Range requests get 206 with
                                     Content-Range, unsatisfiable ones 416.
  GET /healthz                       200

Each response streams through one 64 KiB buffer whatever the object's size.`,
		Example: `  skyfleet storage --listen 127.0.0.1:8081
  curl -o /dev/null http://127.0.0.1:8081/objects/demo?size=1G
  curl -r 0-1023 http://127.0.0.1:8081/objects/demo?size=1G | sha256sum`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStorage(cmd.Context(), e, listen, grace)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "address (default $SKYFLEET_IP:8081 when $SKYFLEET_IP is set, else 127.0.0.1:8081)")
	cmd.Flags().DurationVar(&grace, "shutdown-grace", 10*time.Second, "how long open responses may go on after SIGTERM")
	return cmd
}

func runStorage(ctx context.Context, e *env, listen string, grace time.Duration) error {
	log := e.logger().With("component", "storage")
	if listen == "" {
		listen = demoListen(8081)
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		return fmt.Errorf("--listen: %q is not host:port: %w", listen, err)
	}
	if grace <= 0 {
		return fmt.Errorf("--shutdown-grace: %s must be positive", grace)
	}
	ln, err := demoapp.Listen(ctx, listen)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	log.Info("storage listening", "listen", ln.Addr().String())
	s := &demoapp.Storage{Logger: log}
	return s.Serve(ctx, ln, grace)
}
