package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/skyfleet/skyfleet/internal/promrules"
)

func newRulesCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Work with Prometheus rule files",
	}
	var out string
	convert := &cobra.Command{
		Use:   "convert FILE",
		Short: "Convert a Prometheus 1.x rule file (ALERT … IF … FOR …) to the 2.x YAML format",
		Long: `convert reads a Prometheus 1.x rule file, as the Occopus autoscaling examples ship it,
and writes the same rules in Prometheus 2.x YAML. node_exporter metrics renamed since 0.16
(node_cpu, node_memory_MemFree, …) are renamed, with a warning each. Placeholders such as
{{infra_id}} are kept so that skyfleet renders them per infrastructure. The output is checked
with Prometheus' own rule parser.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("rules convert: %w", err)
			}
			yml, warns, err := promrules.Convert(args[0], src)
			for _, w := range warns {
				fmt.Fprintln(e.stderr, w.String())
			}
			if err != nil {
				fmt.Fprintln(e.stderr, err)
				return &ExitError{Code: 1}
			}
			if out == "" || out == "-" {
				_, err = e.stdout.Write(yml)
				return err
			}
			if err := os.WriteFile(out, yml, 0o644); err != nil {
				return fmt.Errorf("rules convert: %w", err)
			}
			return nil
		},
	}
	convert.Flags().StringVarP(&out, "output", "o", "", "write the 2.x rules to this file instead of standard output")
	cmd.AddCommand(convert)
	return cmd
}
