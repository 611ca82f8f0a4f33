package cli

import (
	"github.com/spf13/cobra"
)

func newServeCmd(e *env) *cobra.Command {
	var c daemonConfig
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the orchestrator: the engine and the REST API (Occopus-compatible and /v1)",
		Long: `serve runs skyfleet's orchestrator until SIGINT or SIGTERM: it re-attaches every stored
infrastructure (adopting the instances the providers still run), maintains them, and serves
the HTTP API: Occopus' routes under /infrastructures/ and /info/, the native /v1 API,
/metrics and /healthz.

Without --token-file the API has no authentication, so serve refuses to listen on anything
but a loopback address unless --insecure-listen-any is given. On shutdown the instances keep
running; the next serve on the same --data-dir takes them over again.`,
		Example: `  skyfleet serve
  skyfleet serve --host 127.0.0.1 --port 5000          # as occopus-rest-service
  skyfleet serve --listen 0.0.0.0:5000 --token-file /etc/skyfleet/token --tls-cert c.pem --tls-key k.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dataDir := c.dataDir
			if dataDir == "" {
				var err error
				if dataDir, err = defaultDataDir(); err != nil {
					return err
				}
			}
			d, err := newDaemon(cmd, &c, dataDir, e.logger())
			if err != nil {
				return err
			}
			return d.Run(cmd.Context())
		},
	}
	addDaemonFlags(cmd, &c, "directory of skyfleet's state (default $XDG_STATE_HOME/skyfleet, else ~/.local/state/skyfleet)")
	return cmd
}
