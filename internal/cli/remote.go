package cli

import (
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/skyfleet/skyfleet/internal/client"
)

// remoteConfig holds the flags of the verbs that talk to a server.
type remoteConfig struct {
	server    string
	tokenFile string
}

// addRemoteFlags registers --server and --token-file on cmd, and accepts Occopus' spellings
// of the id flag (occopus-build's --infra_id, occopus-maintain's --infraid) for --infra-id.
func addRemoteFlags(cmd *cobra.Command, r *remoteConfig) {
	cmd.Flags().SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "infra_id" || name == "infraid" {
			name = "infra-id"
		}
		return pflag.NormalizedName(name)
	})
	cmd.Flags().StringVar(&r.server, "server", "", "server address (default $SKYFLEET_ADDR, else "+client.DefaultAddr+")")
	cmd.Flags().StringVar(&r.tokenFile, "token-file", "", "file holding the server's bearer token (default $SKYFLEET_TOKEN)")
}

// client builds the API client: the address from --server, else SKYFLEET_ADDR, else the
// default; the token from --token-file, else SKYFLEET_TOKEN.
func (r *remoteConfig) client() (*client.Client, error) {
	addr := r.server
	if addr == "" {
		addr = os.Getenv("SKYFLEET_ADDR")
	}
	token := strings.TrimSpace(os.Getenv("SKYFLEET_TOKEN"))
	if r.tokenFile != "" {
		var err error
		if token, err = readToken(r.tokenFile); err != nil {
			return nil, err
		}
	}
	return client.New(client.Options{Addr: addr, Token: token})
}
