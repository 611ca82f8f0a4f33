package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/skyfleet/skyfleet/internal/api"
	"github.com/skyfleet/skyfleet/internal/client"
)

func newStatusCmd(e *env) *cobra.Command {
	var (
		remote remoteConfig
		id     string
		output string
	)
	cmd := &cobra.Command{
		Use:   "status [-i ID]",
		Short: "Show infrastructures, or one infrastructure's nodes and instances",
		Long: `status lists the server's infrastructures with their phase and per-node ready/target
counts, or with -i shows one infrastructure: every node's limits and target, and every
instance with its state, addresses, age and last health check.`,
		Example: `  skyfleet status
  skyfleet status -i 5f0c... -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" && output != "yaml" {
				return fmt.Errorf("-o %q: want table, json or yaml", output)
			}
			c, err := remote.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if id == "" {
				list, err := c.Infras(ctx)
				if err != nil {
					return fmt.Errorf("list infrastructures: %w", err)
				}
				if output != "table" {
					return encode(e.stdout, output, list)
				}
				printInfraList(e.stdout, list)
				return nil
			}
			d, err := c.Infra(ctx, id)
			if err != nil {
				return fmt.Errorf("status of %s: %w", id, err)
			}
			if output != "table" {
				return encode(e.stdout, output, d)
			}
			printInfraDetail(e.stdout, d)
			return nil
		},
	}
	addRemoteFlags(cmd, &remote)
	cmd.Flags().StringVarP(&id, "infra-id", "i", "", "infrastructure id")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	return cmd
}

// encode writes v as JSON or YAML (keys as in the API's JSON).
func encode(w io.Writer, format string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	if format == "json" {
		_, err = fmt.Fprintf(w, "%s\n", data)
		return err
	}
	var generic any
	if err := json.Unmarshal(data, &generic); err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	out, err := yaml.Marshal(generic)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	_, err = w.Write(out)
	return err
}

func printInfraList(w io.Writer, list []api.InfraSummary) {
	if len(list) == 0 {
		_, _ = fmt.Fprintln(w, "no infrastructures")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "ID\tNAME\tPHASE\tMAINTAINED\tNODES (ready/target)")
	for _, in := range list {
		var nodes []string
		for _, name := range sortedKeys(in.Nodes) {
			n := in.Nodes[name]
			nodes = append(nodes, fmt.Sprintf("%s %d/%d", name, n.Ready, n.Target))
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", in.ID, in.Name, in.Phase, in.Maintained, strings.Join(nodes, ", "))
	}
	_ = tw.Flush()
}

func printInfraDetail(w io.Writer, d *api.InfraDetail) {
	_, _ = fmt.Fprintf(w, "infrastructure %s (%s): %s", d.ID, d.Name, d.Phase)
	if !d.Maintained {
		_, _ = fmt.Fprint(w, ", not maintained")
	}
	_, _ = fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "\nNODE\tTYPE\tREADY\tTARGET\tMIN\tMAX\tDEPENDS ON")
	for _, n := range d.Nodes {
		deps := strings.Join(n.Dependencies, ",")
		if deps == "" {
			deps = "-"
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", n.Name, n.Type, n.Ready, n.Target, n.Min, n.Max, deps)
	}
	_, _ = fmt.Fprintln(tw, "\nNODE\tNODE ID\tSTATE\tADDRESSES\tAGE\tHEALTH")
	for _, n := range d.Nodes {
		for _, in := range n.Instances {
			addrs := strings.Join(in.Addresses, ",")
			if addrs == "" {
				addrs = "-"
			}
			h := in.Health
			if h == "" {
				h = "-"
			}
			_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, in.NodeID, in.State, addrs, age(in.AgeSeconds), h)
		}
	}
	_ = tw.Flush()
}

func age(sec float64) string {
	return (time.Duration(sec) * time.Second).Round(time.Second).String()
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// progress follows one infrastructure by polling its detail and prints a line per node
// whenever its counts change, and one per instance that fails.
type progress struct {
	w      io.Writer
	clock  func() time.Time
	lines  map[string]string
	failed map[string]bool
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, clock: time.Now, lines: map[string]string{}, failed: map[string]bool{}}
}

// errInstanceFailed is returned by waitReady with failFast when an instance failed.
var errInstanceFailed = errors.New("an instance failed")

// pollInterval is how often progress polls the server.
const pollInterval = 500 * time.Millisecond

// waitReady polls until every node has its target of ready instances and returns the last
// detail. With failFast it stops at the first failed instance.
func (p *progress) waitReady(ctx context.Context, c *client.Client, id string, failFast bool) (*api.InfraDetail, error) {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	errs := 0
	for {
		d, err := c.Infra(ctx, id)
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case client.IsNotFound(err):
			return nil, fmt.Errorf("infrastructure %s no longer exists", id)
		case err != nil:
			errs++
			if errs >= 5 {
				return nil, fmt.Errorf("follow %s: %w", id, err)
			}
		default:
			errs = 0
			failedNow := p.show(d)
			if failedNow && failFast {
				return d, errInstanceFailed
			}
			if d.Phase == "destroying" {
				return d, fmt.Errorf("infrastructure %s is being destroyed", id)
			}
			if allReady(d) {
				return d, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// allReady reports whether every node has at least its target of ready instances.
func allReady(d *api.InfraDetail) bool {
	for _, n := range d.Nodes {
		if n.Ready < n.Target {
			return false
		}
	}
	return true
}

// show prints what changed; it reports whether a new failed instance appeared.
func (p *progress) show(d *api.InfraDetail) bool {
	newFailure := false
	for _, n := range d.Nodes {
		counts := map[string]int{}
		for _, in := range n.Instances {
			if in.State != "ready" {
				counts[in.State]++
			}
			if in.State == "failed" && !p.failed[in.NodeID] {
				p.failed[in.NodeID] = true
				newFailure = true
				why := in.Detail
				if in.Health != "" {
					why = in.Health
				}
				_, _ = fmt.Fprintf(p.w, "%s %s: instance %s failed: %s\n", p.stamp(), n.Name, in.NodeID, why)
			}
		}
		line := fmt.Sprintf("%d/%d ready", n.Ready, n.Target)
		for _, st := range sortedKeys(counts) {
			line += fmt.Sprintf(", %d %s", counts[st], st)
		}
		if p.lines[n.Name] != line {
			p.lines[n.Name] = line
			_, _ = fmt.Fprintf(p.w, "%s %s: %s\n", p.stamp(), n.Name, line)
		}
	}
	return newFailure
}

func (p *progress) stamp() string { return p.clock().Format("15:04:05") }

// printAddresses prints every node's ready instances with their addresses.
func printAddresses(w io.Writer, d *api.InfraDetail) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "NODE\tNODE ID\tADDRESSES")
	for _, n := range d.Nodes {
		for _, in := range n.Instances {
			if in.State != "ready" {
				continue
			}
			_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\n", n.Name, in.NodeID, strings.Join(in.Addresses, ", "))
		}
	}
	_ = tw.Flush()
}
