package cli

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/skyfleet/skyfleet/internal/demoapp"
)

func newPostgresCmd(e *env) *cobra.Command {
	n := &demoapp.PostgresNode{}
	cmd := &cobra.Command{
		Use:   "postgres",
		Short: "Run the demo's database node: a real PostgreSQL server",
		Long: `Run the database node role of the demo: the PostgreSQL server of the distribution's package
(apt-get install postgresql), in the foreground.

At the first start it initialises a cluster in --dir (initdb); at every start it writes a
pg_hba.conf that TRUSTS EVERY CONNECTION — a demonstration set-up, never one to expose —,
starts postgres listening on --listen:--port, and creates the login role and database
--database (default skyfleet) when missing. The demo app connects with
postgres://skyfleet@<address>:5432/skyfleet?sslmode=disable.

When skyfleet runs as root, initdb and postgres run as the unprivileged --user (default
postgres, created by the Debian package): --dir is given to that user, and directories above
it that the user could not enter get an ACL entry letting that user alone enter them (search
only; on a filesystem without ACLs, search permission for others, o+x, with a warning).

SIGTERM or SIGINT asks postgres for a fast shutdown (open transactions are rolled back, a
checkpoint is written); it is escalated to an immediate one if it takes too long.`,
		Example: `  skyfleet postgres --dir ./pgdata --listen 127.0.0.5`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := e.logger().With("component", "postgres")
			if n.Listen == "" {
				n.Listen = os.Getenv("SKYFLEET_IP")
			}
			n.Logger = log
			n.Stdout, n.Stderr = e.stderr, e.stderr
			if !filepath.IsAbs(n.DataDir) {
				abs, err := filepath.Abs(n.DataDir)
				if err != nil {
					return err
				}
				n.DataDir = abs
			}
			return n.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&n.DataDir, "dir", "pgdata", "cluster directory, initialised when empty (relative to the working directory)")
	fl.StringVar(&n.Listen, "listen", "", "IP address to listen on (default $SKYFLEET_IP, else 127.0.0.1)")
	fl.IntVar(&n.Port, "port", 5432, "TCP port")
	fl.StringVar(&n.Database, "database", "skyfleet", "name of the login role and of the database it owns")
	fl.StringVar(&n.BinDir, "bin-dir", "", "directory of initdb and postgres (default: the newest /usr/lib/postgresql/*/bin, else $PATH)")
	fl.StringVar(&n.RunAs, "user", "postgres", "unprivileged system user to run PostgreSQL as when skyfleet runs as root")
	fl.DurationVar(&n.StartTimeout, "start-timeout", 0, "how long postgres may take to accept connections (default 60s)")
	return cmd
}
