// Package cli builds the skyfleet command tree. Each verb lives in its own file and is
// registered in newRoot; verbs that talk to a server use only internal/client.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
)

// ExitError carries a process exit code through cobra without printing anything more.
// A command returns it when it has already told the user what went wrong.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// env is what every command gets from main: its streams and the logger options.
type env struct {
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer
	logLevel  string
	logFormat string
}

// logger builds the structured logger for a command, writing to stderr.
func (e *env) logger() *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(e.logLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if strings.EqualFold(e.logFormat, "json") {
		return slog.New(slog.NewJSONHandler(e.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(e.stderr, opts))
}

// Main runs the command line args and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRoot(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	fmt.Fprintf(stderr, "skyfleet: %v\n", err)
	return 1
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "skyfleet",
		Short: "Deploy multi-node infrastructures from Occopus-compatible descriptors and scale them from monitoring data",
		Long: `skyfleet deploys multi-node infrastructures on clouds from declarative (Occopus-compatible)
descriptors and keeps every cluster between its min and max size, scaling from alerts and metrics.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&e.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.PersistentFlags().StringVar(&e.logFormat, "log-format", "text", "log format: text or json")
	for _, add := range []func(*env) *cobra.Command{
		// Each verb's constructor is listed here, one line each.
		newValidateCmd,
		newRulesCmd,
		newServeCmd,
		newImportCmd,
		newBuildCmd,
		newStatusCmd,
		newScaleCmd,
		newDestroyCmd,
		newEventsCmd,
		newDecisionsCmd,
		newUpCmd,
		newRenderCmd,
		newLBCmd,
		newMonitorCmd,
		newAppCmd,
		newStorageCmd,
		newPostgresCmd,
		newLoadCmd,
	} {
		root.AddCommand(add(e))
	}
	return root
}
