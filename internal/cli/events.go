package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/skyfleet/skyfleet/internal/api"
	"github.com/skyfleet/skyfleet/internal/client"
)

func newEventsCmd(e *env) *cobra.Command {
	var (
		remote remoteConfig
		id     string
		follow bool
		after  uint64
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "events -i ID [-f]",
		Short: "Show an infrastructure's event log, or follow it live",
		Long: `events prints the infrastructure's events (creations, drops, failures, scaling requests
applied or ignored with their reasons), oldest first. With -f it keeps following new events
(reconnecting after a lost connection without missing or repeating any) until Ctrl-C or until
the infrastructure is destroyed.`,
		Example: `  skyfleet events -i 5f0c...
  skyfleet events -i 5f0c... -f --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := remote.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			show := func(ev api.Event) error { return printEvent(e.stdout, ev, asJSON) }
			if follow {
				err := c.Watch(ctx, id, after, show, client.WatchOptions{
					OnReconnect: func(err error) { _, _ = fmt.Fprintf(e.stderr, "connection lost (%v); reconnecting\n", err) },
				})
				switch {
				case errors.Is(err, client.ErrGone):
					_, _ = fmt.Fprintf(e.stderr, "infrastructure %s is gone\n", id)
					return nil
				case ctx.Err() != nil:
					return nil
				}
				return fmt.Errorf("follow events of %s: %w", id, err)
			}
			for {
				page, err := c.Events(ctx, id, after, 1000)
				if err != nil {
					return fmt.Errorf("events of %s: %w", id, err)
				}
				for _, ev := range page.Events {
					if err := show(ev); err != nil {
						return err
					}
				}
				if len(page.Events) < 1000 {
					return nil
				}
				after = page.Next
			}
		},
	}
	addRemoteFlags(cmd, &remote)
	cmd.Flags().StringVarP(&id, "infra-id", "i", "", "infrastructure id (required)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep following new events")
	cmd.Flags().Uint64Var(&after, "after", 0, "only events after this sequence number")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	_ = cmd.MarkFlagRequired("infra-id")
	return cmd
}

// printEvent writes one event as a line: time, sequence, type, node/instance, message, data.
func printEvent(w io.Writer, ev api.Event, asJSON bool) error {
	if asJSON {
		data, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		_, err = fmt.Fprintf(w, "%s\n", data)
		return err
	}
	var b strings.Builder
	_, _ = fmt.Fprintf(&b, "%s  #%-4d %-16s", ev.At.Local().Format(time.DateTime), ev.Seq, ev.Type)
	if ev.Node != "" {
		b.WriteString(" " + ev.Node)
		if ev.NodeID != "" {
			b.WriteString("/" + ev.NodeID)
		}
	}
	if ev.Message != "" {
		b.WriteString("  " + ev.Message)
	}
	for _, k := range sortedKeys(ev.Data) {
		_, _ = fmt.Fprintf(&b, " %s=%v", k, ev.Data[k])
	}
	_, err := fmt.Fprintln(w, b.String())
	return err
}
