// Package cli is the command-line side shared by the OMB commands
// (bench/omb/cmd/omb and the drivers' own modules, e.g. bench/nats): the
// `run` subcommand and its summary.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/ledgermq/ledgermq/bench/omb/driver"
	"github.com/ledgermq/ledgermq/bench/omb/runner"
	"github.com/ledgermq/ledgermq/bench/omb/workload"
)

// Drivers makes a driver by name.
type Drivers func(name string) (driver.Driver, error)

// RunWorkload is the `run` subcommand: -workload FILE [-driver NAME] [-out
// DIR] [-duration D]. It runs the workload in a fresh temporary directory,
// writes the JSON result to DIR and prints a summary.
func RunWorkload(ctx context.Context, args []string, stdout, stderr io.Writer, drivers Drivers, defaultDriver string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	wl := fs.String("workload", "", "workload YAML file")
	drv := fs.String("driver", defaultDriver, "driver")
	out := fs.String("out", "results", "directory for the JSON result")
	dur := fs.Duration("duration", 0, "override the workload's test duration")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *wl == "" {
		return errors.New("run: -workload is required")
	}
	w, err := workload.Load(*wl)
	if err != nil {
		return err
	}
	if *dur > 0 {
		w.Test.Duration = *dur
	}
	d, err := drivers(*drv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	base, err := os.MkdirTemp("", "omb-"+d.Name()+"-")
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	defer os.RemoveAll(base)
	res, err := runner.Run(ctx, d, w, runner.Options{BaseDir: base, Log: log, Progress: stderr})
	if err != nil {
		return err
	}
	path, err := runner.WriteResult(*out, res)
	if err != nil {
		return err
	}
	PrintSummary(stdout, res)
	fmt.Fprintf(stdout, "result: %s\n", path)
	return nil
}

// PrintSummary prints a result's headline figures.
func PrintSummary(w io.Writer, res *runner.Result) {
	api := res.Workload.ProduceAPI
	if api != "" {
		api = ", " + api + " produce"
	}
	fmt.Fprintf(w, "%s [%s%s]: %.0f msg/s published (%.1f MB/s), %.0f consumed, publish p50 %.2f p99 %.2f ms, e2e p99 %.2f ms, acked %d, lost %d, duplicates %d, publish errors %d\n",
		res.Workload.Name, res.System, api, res.PublishRate, res.PublishMBps, res.ConsumeRate, res.PublishLatency.P50, res.PublishLatency.P99,
		res.E2ELatency.P99, res.Acked, res.Lost, res.Duplicates, res.PublishErrors)
	for _, k := range res.Kills {
		fmt.Fprintf(w, "kill %s at %.1fs: first ack after %.0f ms, max ack gap %.0f ms, caught up after %.0f ms\n", k.Node, k.AtS, k.FirstAckMs, k.MaxGapMs, k.CatchUpMs)
	}
	if s := res.FirstAck; s != nil {
		fmt.Fprintf(w, "first ack after a kill: p50 %.0f ms, p99 %.0f ms, max %.0f ms\n", s.P50, s.P99, s.Max)
	}
	if s := res.CatchUp; s != nil && s.Count > 0 {
		fmt.Fprintf(w, "catch-up after a restart: p50 %.0f ms, p99 %.0f ms, max %.0f ms\n", s.P50, s.P99, s.Max)
	}
	if f := res.Fsync; f != nil {
		fmt.Fprintf(w, "raw write(100 KiB)+fsync: %.1f MB/s, p50 %.2f ms, p99 %.2f ms; published MB/s ÷ raw = %.3f (×3 replicas on this disk: %.3f)\n",
			f.MBps, f.Latency.P50, f.Latency.P99, res.PublishOverFsync, 3*res.PublishOverFsync)
	}
	if len(res.Kills) > 0 || res.Lost > 0 || res.Duplicates > 0 {
		verdict := "OK: every acknowledged message read back, none twice"
		if res.Lost > 0 || res.Duplicates > 0 {
			verdict = "FAILED: acknowledged messages lost or duplicated"
		}
		fmt.Fprintf(w, "verification: %s\n", verdict)
	}
}
