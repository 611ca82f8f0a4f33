package client

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/api"
	"github.com/skyfleet/skyfleet/internal/autoscale"
	"github.com/skyfleet/skyfleet/internal/events"
	"github.com/skyfleet/skyfleet/internal/store"
)

// TestDecisions reads the decision log through the route the daemon mounts, filtered by
// sequence number and node, and gets a not-found error for an unknown infrastructure.
func TestDecisions(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	hub := events.NewHub()
	t.Cleanup(hub.Close)
	srv := api.New(api.Options{Engine: &engine{st: st}, Store: st, Hub: hub, Token: "tok",
		Mounts: []api.Mount{{Pattern: "GET /v1/infrastructures/{id}/decisions", Handler: autoscale.DecisionsHandler(st, api.WriteError)}}})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	t.Cleanup(srv.Close)

	ctx := context.Background()
	at := time.Date(2026, 11, 29, 7, 0, 0, 0, time.UTC)
	seed := []*store.Decision{
		{Node: "app", Direction: "out", Outcome: "scaled", From: 1, To: 2, Reason: `yes: "app_overloaded" firing; target 1 -> 2`,
			Cause: map[string]any{"alert": "app_overloaded"}},
		{Node: "lb", Direction: "out", Outcome: "at_max", From: 2, To: 2, Reason: "no: at max (2)"},
		{Node: "app", Direction: "out", Outcome: "cooldown", From: 2, To: 2, Reason: "no: scale-out cooldown 14s left"},
	}
	if err := st.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutInfra(&store.InfraRecord{ID: "infra-1", Descriptor: infra, Targets: map[string]int{}, Phase: store.InfraReady}); err != nil {
			return err
		}
		for i, d := range seed {
			d.InfraID, d.At = "infra-1", at.Add(time.Duration(i)*time.Second)
			if err := tx.AddDecision(d); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Addr: ts.URL, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	all, err := c.Decisions(ctx, "infra-1", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("all decisions: got %d, want 3: %+v", len(all), all)
	}

	cases := []struct {
		name     string
		after    uint64
		node     string
		outcomes []string
	}{
		{"everything, oldest first", 0, "", []string{"scaled", "at_max", "cooldown"}},
		{"after the first", all[0].Seq, "", []string{"at_max", "cooldown"}},
		{"one node", 0, "app", []string{"scaled", "cooldown"}},
		{"one node after the first", all[0].Seq, "app", []string{"cooldown"}},
		{"nothing newer", all[2].Seq, "", nil},
		{"unknown node", 0, "web", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Decisions(ctx, "infra-1", tc.after, tc.node)
			if err != nil {
				t.Fatal(err)
			}
			var outcomes []string
			for _, d := range got {
				outcomes = append(outcomes, d.Outcome)
			}
			if len(outcomes) != len(tc.outcomes) {
				t.Fatalf("outcomes %v, want %v", outcomes, tc.outcomes)
			}
			for i := range outcomes {
				if outcomes[i] != tc.outcomes[i] {
					t.Fatalf("outcomes %v, want %v", outcomes, tc.outcomes)
				}
			}
		})
	}

	t.Run("fields survive the trip", func(t *testing.T) {
		d := all[0]
		if d.InfraID != "infra-1" || d.Node != "app" || d.Direction != "out" || d.From != 1 || d.To != 2 ||
			!d.At.Equal(at) || d.Reason != seed[0].Reason || d.Cause["alert"] != "app_overloaded" {
			t.Errorf("decision: %+v", d)
		}
	})
	t.Run("unknown infrastructure", func(t *testing.T) {
		if _, err := c.Decisions(ctx, "nope", 0, ""); !IsNotFound(err) {
			t.Errorf("got %v, want not found", err)
		}
	})
}
