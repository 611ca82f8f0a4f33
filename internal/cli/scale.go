package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skyfleet/skyfleet/internal/api"
)

func newScaleCmd(e *env) *cobra.Command {
	var (
		remote   remoteConfig
		id, node string
		change   int
		set      int
		victim   string
	)
	cmd := &cobra.Command{
		Use:   "scale -i ID -n NODE (-c ±N | -s N | -f NODE_ID_OR_IP)",
		Short: "Scale a node (as occopus-scale)",
		Long: `scale changes a node's target count at once, within its min and max:
  -c N   add N instances (N > 0) or remove -N (N < 0); 0 is refused
  -s N   set the target to N (N > 0)
  -f X   remove the instance whose node id or address is X
A request the limits do not allow is recorded as ignored and reported with its reason; that
is not an error.`,
		Example: `  skyfleet scale -i 5f0c... -n app -c 2
  skyfleet scale -i 5f0c... -n app -f 127.42.0.7`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flags := cmd.Flags()
			given := 0
			var req api.ScaleRequest
			if flags.Changed("changescale") {
				given++
				if change == 0 {
					return fmt.Errorf("-c 0 changes nothing: give a positive count to add instances or a negative one to remove them")
				}
				req.Delta = &change
			}
			if flags.Changed("setscale") {
				given++
				if set <= 0 {
					return fmt.Errorf("-s %d: the target count must be positive", set)
				}
				req.Target = &set
			}
			if flags.Changed("filter") {
				given++
				if victim == "" {
					return fmt.Errorf("-f: give the node id or an address of the instance to remove")
				}
				req.Victim = &victim
			}
			if given != 1 {
				return fmt.Errorf("give exactly one of -c, -s and -f (got %d)", given)
			}
			c, err := remote.client()
			if err != nil {
				return err
			}
			res, err := c.Scale(cmd.Context(), id, node, req)
			if err != nil {
				return fmt.Errorf("scale %s in %s: %w", node, id, err)
			}
			switch {
			case !res.Applied:
				_, _ = fmt.Fprintf(e.stdout, "%s: request ignored: %s (target stays %d)\n", node, res.Reason, res.Target)
			case res.Reason != "":
				_, _ = fmt.Fprintf(e.stdout, "%s: target %d -> %d (%s)\n", node, res.From, res.Target, res.Reason)
			default:
				_, _ = fmt.Fprintf(e.stdout, "%s: target %d -> %d\n", node, res.From, res.Target)
			}
			return nil
		},
	}
	addRemoteFlags(cmd, &remote)
	f := cmd.Flags()
	f.StringVarP(&id, "infra-id", "i", "", "infrastructure id (required)")
	f.StringVarP(&node, "node", "n", "", "node name (required)")
	f.IntVarP(&change, "changescale", "c", 0, "add (N>0) or remove (N<0) instances")
	f.IntVarP(&set, "setscale", "s", 0, "set the target count")
	f.StringVarP(&victim, "filter", "f", "", "remove the instance with this node id or address")
	_ = cmd.MarkFlagRequired("infra-id")
	_ = cmd.MarkFlagRequired("node")
	return cmd
}
