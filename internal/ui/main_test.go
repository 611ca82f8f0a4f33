package ui

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the end-to-end tests stop everything they start: engine, autoscaler,
// event streams, HTTP server and browser.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
