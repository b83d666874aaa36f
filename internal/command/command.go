// Package command is the entry point shared by the project's benchmark
// commands: run with the process's arguments, stop on SIGINT or SIGTERM,
// exit non-zero on an error.
package command

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Run is a command's body.
type Run func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Main runs run with os.Args[1:], cancelling its context on SIGINT or
// SIGTERM, and exits with status 1 (after printing the error prefixed by
// name) if it fails; -h is not a failure.
func Main(name string, run Run) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}
