package cli

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/skyfleet/skyfleet/internal/descriptor"
)

func newValidateCmd(e *env) *cobra.Command {
	var nodesFile string
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check node definition files and infrastructure descriptors",
		Long: `validate checks each FILE, which may be a node definition file (top-level 'node_def:NAME'
keys) or an infrastructure descriptor (nodes, infra_name, ...). It prints a short summary of
each valid file on stdout, and every problem, one per line as file:line:col, on stderr.

With --nodes, each infrastructure descriptor is also checked against the node definitions:
every node's type must be defined there and every node's filter must match an implementation.

The exit status is 1 when any file has errors. Warnings do not change it.`,
		Example: `  skyfleet validate nodes/node_definitions.yaml infra.yaml
  skyfleet validate infra.yaml --nodes nodes/node_definitions.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := &validator{stdout: e.stdout, stderr: e.stderr}
			v.run(args, nodesFile)
			if v.failed {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&nodesFile, "nodes", "", "node definition file to check each infrastructure descriptor against")
	return cmd
}

// validator runs one validate command and remembers whether anything failed.
type validator struct {
	stdout, stderr io.Writer
	failed         bool
}

func (v *validator) run(files []string, nodesFile string) {
	var defs descriptor.NodeDefs
	defsOK := false
	if nodesFile != "" {
		defs, defsOK = v.loadNodeDefs(nodesFile)
	}
	for _, file := range files {
		data, err := descriptor.ReadFile(file)
		if err != nil {
			v.report(nil, err)
			continue
		}
		kind, err := descriptor.DetectFileKind(file, data)
		if err != nil {
			v.report(nil, err)
			continue
		}
		switch kind {
		case descriptor.KindNodeDefs:
			d, warns, err := descriptor.ParseNodeDefs(file, data, descriptor.ImportOptions{AllowImports: true})
			if v.report(warns, err) {
				printNodeDefs(v.stdout, file, d)
			}
		case descriptor.KindInfra:
			in, warns, err := descriptor.ParseInfraWith(file, data, descriptor.ImportOptions{AllowImports: true})
			if !v.report(warns, err) {
				continue
			}
			printInfra(v.stdout, in)
			if defsOK {
				if v.report(nil, defs.CheckInfra(in)) {
					fmt.Fprintf(v.stdout, "  every node type is defined in %s and every filter matches an implementation\n", nodesFile)
				}
			}
		}
	}
}

// loadNodeDefs loads the --nodes file, reporting its problems.
func (v *validator) loadNodeDefs(file string) (descriptor.NodeDefs, bool) {
	data, err := descriptor.ReadFile(file)
	if err != nil {
		v.report(nil, err)
		return nil, false
	}
	if kind, err := descriptor.DetectFileKind(file, data); err != nil || kind != descriptor.KindNodeDefs {
		if err == nil {
			err = descriptor.Errors{{Pos: descriptor.Pos{File: file}, Msg: "--nodes wants a node definition file ('node_def:NAME' keys), not an " + kind.String() + " descriptor"}}
		}
		v.report(nil, err)
		return nil, false
	}
	defs, warns, err := descriptor.ParseNodeDefs(file, data, descriptor.ImportOptions{AllowImports: true})
	return defs, v.report(warns, err)
}

// report prints warnings and errors on stderr and tells whether there were no errors.
func (v *validator) report(warns []descriptor.Warning, err error) bool {
	for _, w := range warns {
		fmt.Fprintln(v.stderr, w.String())
	}
	if err == nil {
		return true
	}
	v.failed = true
	var es descriptor.Errors
	if errors.As(err, &es) {
		for _, e := range es {
			fmt.Fprintln(v.stderr, e.Error())
		}
		return false
	}
	fmt.Fprintln(v.stderr, err.Error())
	return false
}

// printNodeDefs prints each node type, in file order, with its implementations as
// resource/contextualisation types.
func printNodeDefs(w io.Writer, file string, defs descriptor.NodeDefs) {
	list := make([]*descriptor.NodeDef, 0, len(defs))
	for _, d := range defs {
		list = append(list, d)
	}
	slices.SortFunc(list, func(a, b *descriptor.NodeDef) int {
		return cmp.Or(cmp.Compare(a.Pos.Line, b.Pos.Line), cmp.Compare(a.Name, b.Name))
	})
	fmt.Fprintf(w, "%s: node definitions: %s\n", file, plural(len(list), "node type"))
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, d := range list {
		impls := make([]string, len(d.Impls))
		for i, im := range d.Impls {
			impls[i] = im.ResourceType()
			if ct := im.ContextType(); ct != "" {
				impls[i] += "/" + ct
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\n", d.Name, strings.Join(impls, ", "))
	}
	tw.Flush()
}

// printInfra prints the infrastructure's name, levels and nodes with their scaling ranges.
func printInfra(w io.Writer, in *descriptor.Infra) {
	fmt.Fprintf(w, "%s: infrastructure %q (user_id %q): %s in %s\n", in.File, in.Name, in.UserID,
		plural(len(in.Nodes), "node"), plural(len(in.Levels), "level"))
	for i, l := range in.Levels {
		fmt.Fprintf(w, "  level %d: %s\n", i, strings.Join(l, ", "))
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "  NODE\tTYPE\tSCALING\tDEPENDS ON\n")
	for _, n := range in.Nodes {
		deps := "-"
		if len(n.DependsOn) > 0 {
			deps = strings.Join(n.DependsOn, ", ")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d..%d\t%s\n", n.Name, n.Type, n.Scaling.Min, n.Scaling.Max, deps)
	}
	tw.Flush()
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
