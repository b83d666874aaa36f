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
// DIR] [-duration D] [-tls] [-auth] [-fsync-baseline]. It runs the workload in a fresh temporary directory,
// writes the JSON result to DIR and prints a summary.
func RunWorkload(ctx context.Context, args []string, stdout, stderr io.Writer, drivers Drivers, defaultDriver string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	wl := fs.String("workload", "", "workload YAML file")
	drv := fs.String("driver", defaultDriver, "driver")
	out := fs.String("out", "results", "directory for the JSON result")
	dur := fs.Duration("duration", 0, "override the workload's test duration")
	fault := fs.String("fault", "", "override the workload's leader fault: kill, stall, blackhole or partition (needs root: network namespaces)")
	hold := fs.Duration("fault-hold", 0, "override how long each fault lasts before it is healed (default: the workload's, else kill 1s, stall 3s, blackhole 5s, partition 5s)")
	secure := fs.Bool("tls", false, "secured cluster: TLS on the client API and mutual TLS between the nodes (drivers with driver.SecuritySetter); the result is named after the secured driver, e.g. ledgermq-tls")
	auth := fs.Bool("auth", false, "with -tls: authentication and ACLs on, the clients authenticate as a superuser (implies -tls)")
	baseline := fs.Bool("fsync-baseline", false, "time raw write+fsync in the cluster's directory after the run (the workload's fsyncBaseline)")
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
	if *baseline {
		w.FsyncBaseline = true
	}
	if *fault != "" || *hold != 0 {
		f, h := *fault, *hold
		if f == "" {
			f = w.Fault
		}
		if h == 0 && f == w.Fault { // another fault gets its own default hold
			h = w.FaultHold.Duration
		}
		if err := w.SetFault(f, h); err != nil {
			return err
		}
	}
	d, err := drivers(*drv)
	if err != nil {
		return err
	}
	if *secure || *auth {
		ss, ok := d.(driver.SecuritySetter)
		if !ok {
			return fmt.Errorf("run: driver %s cannot run secured (-tls, -auth)", d.Name())
		}
		if err := ss.SetSecurity(*secure, *auth); err != nil {
			return err
		}
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
		if k.Fault != "" {
			fmt.Fprintf(w, "%s %s at %.1fs (healed after %.0f ms): first ack after %.0f ms, max ack gap %.0f ms, healthy %.0f ms after the heal\n",
				k.Fault, k.Node, k.AtS, k.HealMs, k.FirstAckMs, k.MaxGapMs, k.CatchUpMs)
			continue
		}
		fmt.Fprintf(w, "kill %s at %.1fs: first ack after %.0f ms, max ack gap %.0f ms, caught up after %.0f ms\n", k.Node, k.AtS, k.FirstAckMs, k.MaxGapMs, k.CatchUpMs)
	}
	event := "a kill"
	if res.Workload.Fault != "" {
		event = "a " + res.Workload.Fault
	}
	if s := res.FirstAck; s != nil {
		fmt.Fprintf(w, "first ack after %s: p50 %.0f ms, p99 %.0f ms, max %.0f ms (%d events)\n", event, s.P50, s.P99, s.Max, len(res.Kills))
	}
	if l := res.Leadership; l != nil {
		fmt.Fprintf(w, "leadership in the window: %d leader changes (most seen by one node), term +%d\n", l.LeaderChanges, l.TermChange)
	}
	if s := res.CatchUp; s != nil && s.Count > 0 && res.Workload.Fault != "" {
		fmt.Fprintf(w, "healthy after the heal: p50 %.0f ms, p99 %.0f ms, max %.0f ms\n", s.P50, s.P99, s.Max)
	} else if s != nil && s.Count > 0 {
		fmt.Fprintf(w, "catch-up after a restart: p50 %.0f ms, p99 %.0f ms, max %.0f ms\n", s.P50, s.P99, s.Max)
	}
	if c := res.CPU; c != nil {
		fmt.Fprintf(w, "CPU in the window: servers %.1f s (%.1f µs/msg), clients %.1f s (%.1f µs/msg)\n", c.ServerSeconds, c.ServerUsPerMsg, c.ClientSeconds, c.ClientUsPerMsg)
	}
	if f := res.Fsync; f != nil {
		fmt.Fprintf(w, "raw write(100 KiB)+fsync: %.1f MB/s, p50 %.2f ms, p99 %.2f ms; published MB/s ÷ raw = %.3f (×3 replicas on this disk: %.3f)\n",
			f.MBps, f.Latency.P50, f.Latency.P99, res.PublishOverFsync, 3*res.PublishOverFsync)
	}
	if rb := res.ReadBack; rb != nil {
		fmt.Fprintf(w, "second read-back by fresh consumers: received %d, lost %d, duplicates stored %d\n", rb.Received, rb.Lost, rb.Duplicates)
	}
	if len(res.Kills) > 0 || res.Lost > 0 || res.Duplicates > 0 {
		verdict := "OK: every acknowledged message read back, none twice"
		if res.Lost > 0 || res.Duplicates > 0 {
			verdict = "FAILED: acknowledged messages lost or duplicated"
		}
		fmt.Fprintf(w, "verification: %s\n", verdict)
	}
}
