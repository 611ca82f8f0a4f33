// Command skyfleet is the skyfleet orchestrator, its CLI and its node-side roles in one binary.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/skyfleet/skyfleet/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
