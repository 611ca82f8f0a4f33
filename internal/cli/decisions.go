package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/skyfleet/skyfleet/internal/client"
	"github.com/skyfleet/skyfleet/internal/store"
)

// decisionsPoll is how often `decisions -f` asks for new decisions.
const decisionsPoll = time.Second

func newDecisionsCmd(e *env) *cobra.Command {
	var (
		remote remoteConfig
		id     string
		node   string
		follow bool
		output string
	)
	cmd := &cobra.Command{
		Use:   "decisions -i ID [-n NODE] [-f] [-o table|json]",
		Short: "Show an infrastructure's autoscaling decisions and why each was taken",
		Long: `decisions prints the autoscaler's decision log of an infrastructure, oldest first: every
step it took and every time it decided not to act, with the reason ("no: at max (3)",
"no: scale-out cooldown 14s left", "no: 2 instances still pending") and the alert or metric
that caused it. The server answers with at most the newest 1,000 matching decisions.

-o table (the default) prints the columns TIME, NODE, DIRECTION, OUTCOME, FROM→TO and REASON;
-o json prints one JSON object per decision and line, with its cause. With -f it keeps asking
for new decisions every second until Ctrl-C or until the infrastructure is destroyed.`,
		Example: `  skyfleet decisions -i 5f0c...
  skyfleet decisions -i 5f0c... -n app -f
  skyfleet decisions -i 5f0c... -o json | jq .cause`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: want table or json", output)
			}
			c, err := remote.client()
			if err != nil {
				return err
			}
			p := &decisionPrinter{w: e.stdout, json: output == "json", loc: time.Local}
			return runDecisions(cmd.Context(), c, id, node, follow, p, e.stderr)
		},
	}
	addRemoteFlags(cmd, &remote)
	cmd.Flags().StringVarP(&id, "infra-id", "i", "", "infrastructure id (required)")
	cmd.Flags().StringVarP(&node, "node", "n", "", "only the decisions of this node")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new decisions (polls every second) until Ctrl-C")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json (one object per line)")
	_ = cmd.MarkFlagRequired("infra-id")
	return cmd
}

// runDecisions prints the log once, or follows it until ctx ends or the infrastructure is
// gone. While following, a lost connection is reported once and retried.
func runDecisions(ctx context.Context, c *client.Client, id, node string, follow bool, p *decisionPrinter, stderr io.Writer) error {
	ds, err := c.Decisions(ctx, id, 0, node)
	if err != nil {
		return fmt.Errorf("decisions of %s: %w", id, err)
	}
	if err := p.print(ds); err != nil {
		return err
	}
	if !follow {
		if len(ds) == 0 && !p.json {
			_, _ = fmt.Fprintf(stderr, "no decisions recorded for %s%s yet\n", id, nodeSuffix(node))
		}
		return nil
	}
	var last uint64
	if len(ds) > 0 {
		last = ds[len(ds)-1].Seq
	}
	t := time.NewTicker(decisionsPoll)
	defer t.Stop()
	lost := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		ds, err := c.Decisions(ctx, id, last, node)
		var ce *client.Error
		switch {
		case ctx.Err() != nil:
			return nil
		case client.IsNotFound(err):
			_, _ = fmt.Fprintf(stderr, "infrastructure %s is gone\n", id)
			return nil
		case errors.As(err, &ce):
			return fmt.Errorf("follow decisions of %s: %w", id, err)
		case err != nil:
			if !lost {
				_, _ = fmt.Fprintf(stderr, "connection lost (%v); retrying every %s\n", err, decisionsPoll)
				lost = true
			}
			continue
		}
		lost = false
		if err := p.print(ds); err != nil {
			return err
		}
		if len(ds) > 0 {
			last = ds[len(ds)-1].Seq
		}
	}
}

func nodeSuffix(node string) string {
	if node == "" {
		return ""
	}
	return " node " + node
}

// decisionPrinter writes decisions as fixed-width table rows (the header before the first
// row) or as JSON lines. Fixed widths keep the columns aligned across the batches of -f.
type decisionPrinter struct {
	w      io.Writer
	json   bool
	loc    *time.Location
	header bool
}

// Column widths; a longer node name widens its row only.
const (
	decNodeWidth    = 12
	decDirWidth     = 9  // "DIRECTION"
	decOutcomeWidth = 16 // "within_tolerance"
	decFromToWidth  = 7
)

func (p *decisionPrinter) print(ds []store.Decision) error {
	var b strings.Builder
	for _, d := range ds {
		if p.json {
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false) // reasons read "target 1 -> 2"
			if err := enc.Encode(d); err != nil {
				return fmt.Errorf("encode decision: %w", err)
			}
			continue
		}
		if !p.header {
			p.row(&b, "TIME", "NODE", "DIRECTION", "OUTCOME", "FROM→TO", "REASON")
			p.header = true
		}
		fromTo := strconv.Itoa(d.From) + "→" + strconv.Itoa(d.To)
		p.row(&b, d.At.In(p.loc).Format(time.DateTime), d.Node, d.Direction, d.Outcome, fromTo, d.Reason)
	}
	if b.Len() == 0 {
		return nil
	}
	_, err := io.WriteString(p.w, b.String())
	return err
}

func (p *decisionPrinter) row(b *strings.Builder, at, node, dir, outcome, fromTo, reason string) {
	_, _ = fmt.Fprintf(b, "%-19s  %s  %s  %s  %s  %s\n", at, pad(node, decNodeWidth), pad(dir, decDirWidth),
		pad(outcome, decOutcomeWidth), pad(fromTo, decFromToWidth), reason)
}

// pad left-aligns s in width runes (fmt's %-*s counts bytes, and → is three).
func pad(s string, width int) string {
	if n := len([]rune(s)); n < width {
		return s + strings.Repeat(" ", width-n)
	}
	return s
}
