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
	"runtime/pprof"
	"time"

	"github.com/ledgermq/ledgermq/bench/omb/driver"
	"github.com/ledgermq/ledgermq/bench/omb/runner"
	"github.com/ledgermq/ledgermq/bench/omb/workload"
)

// Drivers makes a driver by name.
type Drivers func(name string) (driver.Driver, error)

// runFlags are the flags of `run` (and of the commands built on it, e.g.
// `curve`): the workload, its overrides and the driver's settings.
type runFlags struct {
	wl, drv, out, fault, durability string
	dur, warmup, hold               time.Duration
	secure, auth, baseline          bool
	producers, inflight, rate       int
	maxOutstanding                  int
	linger, backlogGB               float64
}

func (f *runFlags) register(fs *flag.FlagSet, defaultDriver string) {
	fs.StringVar(&f.wl, "workload", "", "workload YAML file")
	fs.StringVar(&f.drv, "driver", defaultDriver, "driver")
	fs.StringVar(&f.out, "out", "results", "directory for the JSON result")
	fs.DurationVar(&f.dur, "duration", 0, "override the workload's test duration")
	fs.DurationVar(&f.warmup, "warmup", 0, "override the workload's warm-up")
	fs.StringVar(&f.fault, "fault", "", "override the workload's leader fault: kill, stall, blackhole or partition (needs root: network namespaces)")
	fs.DurationVar(&f.hold, "fault-hold", 0, "override how long each fault lasts before it is healed (default: the workload's, else kill 1s, stall 3s, blackhole 5s, partition 5s)")
	fs.BoolVar(&f.secure, "tls", false, "secured cluster: TLS on the client API and mutual TLS between the nodes (drivers with driver.SecuritySetter); the result is named after the secured driver, e.g. ledgermq-tls")
	fs.BoolVar(&f.auth, "auth", false, "with -tls: authentication and ACLs on, the clients authenticate as a superuser (implies -tls)")
	fs.BoolVar(&f.baseline, "fsync-baseline", false, "time raw write+fsync in the cluster's directory after the run (the workload's fsyncBaseline)")
	fs.IntVar(&f.producers, "producers", 0, "override the workload's producersPerTopic")
	fs.IntVar(&f.rate, "rate", -1, "override the workload's producerRate (msgs/s over all producers; 0 = max)")
	fs.IntVar(&f.maxOutstanding, "max-outstanding", 0, "override the workload's maxOutstandingBytes (each producer's unacknowledged payload in the runner; default 8 MiB)")
	fs.Float64Var(&f.linger, "linger-ms", -1, "override the workload's lingerMs")
	fs.StringVar(&f.durability, "durability", "", "override the workload's durability: fsync or default")
	fs.Float64Var(&f.backlogGB, "backlog-gb", 0, "override the workload's consumerBacklogSizeGB (backlog-drain workloads)")
	fs.IntVar(&f.inflight, "inflight", 0, "the driver's in-flight window per producer (drivers with driver.InFlightSetter, e.g. nats)")
}

// load reads the workload and the driver the flags name and applies the
// overrides.
func (f *runFlags) load(drivers Drivers) (*workload.Workload, driver.Driver, error) {
	if f.wl == "" {
		return nil, nil, errors.New("-workload is required")
	}
	w, err := workload.Load(f.wl)
	if err != nil {
		return nil, nil, err
	}
	if f.dur > 0 {
		w.Test.Duration = f.dur
	}
	if f.warmup > 0 {
		w.Warmup.Duration = f.warmup
	}
	if f.baseline {
		w.FsyncBaseline = true
	}
	if f.producers > 0 {
		w.ProducersPerTopic = f.producers
	}
	if f.rate >= 0 {
		w.ProducerRate = f.rate
	}
	if f.maxOutstanding > 0 {
		w.MaxOutstandingBytes = f.maxOutstanding
	}
	if f.linger >= 0 {
		w.LingerMs = f.linger
	}
	if f.durability != "" {
		w.Durability = f.durability
	}
	if f.backlogGB > 0 {
		if w.ConsumerBacklogSizeGB == 0 {
			return nil, nil, errors.New("-backlog-gb needs a backlog-drain workload (consumerBacklogSizeGB)")
		}
		w.ConsumerBacklogSizeGB = f.backlogGB
	}
	if f.fault != "" || f.hold != 0 {
		fl, h := f.fault, f.hold
		if fl == "" {
			fl = w.Fault
		}
		if h == 0 && fl == w.Fault { // another fault gets its own default hold
			h = w.FaultHold.Duration
		}
		if err := w.SetFault(fl, h); err != nil {
			return nil, nil, err
		}
	}
	d, err := f.driver(drivers)
	if err != nil {
		return nil, nil, err
	}
	return w, d, nil
}

// driver makes the driver the flags name, with their settings.
func (f *runFlags) driver(drivers Drivers) (driver.Driver, error) {
	d, err := drivers(f.drv)
	if err != nil {
		return nil, err
	}
	if f.secure || f.auth {
		ss, ok := d.(driver.SecuritySetter)
		if !ok {
			return nil, fmt.Errorf("driver %s cannot run secured (-tls, -auth)", d.Name())
		}
		if err := ss.SetSecurity(f.secure, f.auth); err != nil {
			return nil, err
		}
	}
	if f.inflight > 0 {
		is, ok := d.(driver.InFlightSetter)
		if !ok {
			return nil, fmt.Errorf("driver %s has no in-flight window of its own (-inflight); use -max-outstanding", d.Name())
		}
		if err := is.SetMaxInFlight(f.inflight); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// runOnce runs w with d in a fresh temporary directory.
func runOnce(ctx context.Context, d driver.Driver, w *workload.Workload, stderr io.Writer) (*runner.Result, error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	base, err := os.MkdirTemp("", "omb-"+d.Name()+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(base)
	return runner.Run(ctx, d, w, runner.Options{BaseDir: base, Log: log, Progress: stderr})
}

// RunWorkload is the `run` subcommand: -workload FILE [-driver NAME] [-out
// DIR] [overrides, see runFlags]. It runs the workload in a fresh
// temporary directory, writes the JSON result to DIR and prints a summary.
func RunWorkload(ctx context.Context, args []string, stdout, stderr io.Writer, drivers Drivers, defaultDriver string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f runFlags
	f.register(fs, defaultDriver)
	cpuProfile := fs.String("cpuprofile", "", "write the load generator's own CPU profile (the clients, not the brokers: see bench/profile) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	w, d, err := f.load(drivers)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if *cpuProfile != "" {
		pf, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("run: %w", err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fmt.Errorf("run: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	res, err := runOnce(ctx, d, w, stderr)
	if err != nil {
		return err
	}
	path, err := runner.WriteResult(f.out, res)
	if err != nil {
		return err
	}
	PrintSummary(stdout, res)
	fmt.Fprintf(stdout, "result: %s\n", path)
	return nil
}

// maxCurveLingerMs is the longest linger of a curve's runs (OMB's latency
// settings: at most 1 ms).
const maxCurveLingerMs = 1

// Curve is the `curve` subcommand: the run flags plus -percents and
// -max-rate. It measures the workload's maximum publish rate (producerRate
// 0; skipped with -max-rate), then runs it at fixed rates of
// runner.CurvePercents of that maximum, each with a fresh cluster, with a
// linger of at most 1 ms; it writes every run's result and the curve
// (runner.Curve) to the output directory. `omb report` charts curves.
func Curve(ctx context.Context, args []string, stdout, stderr io.Writer, drivers Drivers, defaultDriver string) error {
	fs := flag.NewFlagSet("curve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f runFlags
	f.register(fs, defaultDriver)
	maxRate := fs.Float64("max-rate", 0, "skip the max-rate run and use this maximum (msgs/s)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	w, d, err := f.load(drivers)
	if err != nil {
		return fmt.Errorf("curve: %w", err)
	}
	if w.LingerMs > maxCurveLingerMs {
		w.LingerMs = maxCurveLingerMs
	}
	c := &runner.Curve{Kind: runner.CurveKind, System: d.Name(), Workload: w.Name, StartedAt: time.Now(), LingerMs: w.LingerMs, MaxRate: *maxRate}
	fmt.Fprintf(stdout, "curve %s [%s]: linger %.1f ms, %d producers/topic, durability %s\n", w.Name, d.Name(), w.LingerMs, w.ProducersPerTopic, w.Durability)
	point := func(pct float64, rate int) (runner.CurvePoint, error) {
		wr := *w
		wr.ProducerRate = rate
		// A fresh driver per run: drivers keep per-cluster state.
		dr, err := f.driver(drivers)
		if err != nil {
			return runner.CurvePoint{}, err
		}
		res, err := runOnce(ctx, dr, &wr, stderr)
		if err != nil {
			return runner.CurvePoint{}, err
		}
		path, err := runner.WriteResult(f.out, res)
		if err != nil {
			return runner.CurvePoint{}, err
		}
		c.System = res.System // named once started (e.g. nats-nofsync)
		p := runner.PointOf(pct, res, path)
		cpu := ""
		if p.CPU != nil {
			cpu = fmt.Sprintf(", server CPU %.1f µs/msg", p.CPU.ServerUsPerMsg)
		}
		label := fmt.Sprintf("%5.0f%% (target %7d)", pct, rate)
		if rate == 0 {
			label = fmt.Sprintf("%-22s", "max rate run")
		}
		fmt.Fprintf(stdout, "  %s: %8.0f msgs/s, publish p50/p99/p99.9 %.2f/%.2f/%.2f ms, e2e p50/p99/p99.9 %.2f/%.2f/%.2f ms%s\n",
			label, p.PublishRate, p.PublishLatency.P50, p.PublishLatency.P99, p.PublishLatency.P999,
			p.E2ELatency.P50, p.E2ELatency.P99, p.E2ELatency.P999, cpu)
		return p, nil
	}
	if c.MaxRate <= 0 {
		if c.Max, err = point(0, 0); err != nil {
			return err
		}
		c.MaxRate = c.Max.PublishRate
	}
	for _, pct := range runner.CurvePercents {
		p, err := point(pct, max(1, int(c.MaxRate*pct/100)))
		if err != nil {
			return err
		}
		c.Points = append(c.Points, p)
	}
	path, err := runner.WriteCurve(f.out, c)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "curve: %s\n", path)
	return nil
}

// PrintSummary prints a result's headline figures.
func PrintSummary(w io.Writer, res *runner.Result) {
	api := res.Workload.ProduceAPI
	if api != "" {
		api = ", " + api + " produce"
	}
	if len(res.DriverSettings) > 0 {
		api += fmt.Sprintf(", %v", res.DriverSettings)
	}
	fmt.Fprintf(w, "%s [%s%s, %d producers/topic, %s]: %.0f msg/s published (%.1f MB/s), %.0f consumed, publish p50 %.2f p99 %.2f ms, e2e p99 %.2f ms, acked %d, lost %d, duplicates %d, publish errors %d\n",
		res.Workload.Name, res.System, api, res.Workload.ProducersPerTopic, res.Workload.Durability, res.PublishRate, res.PublishMBps, res.ConsumeRate, res.PublishLatency.P50, res.PublishLatency.P99,
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
	if b := res.Backlog; b != nil {
		cpu := ""
		if b.CPU != nil {
			cpu = fmt.Sprintf(", servers %.1f µs/msg", b.CPU.ServerUsPerMsg)
		}
		fmt.Fprintf(w, "backlog: %d messages (%.2f GB) produced in %.1f s (%.0f msgs/s%s)\n", b.Messages, float64(b.Bytes)/1e9, b.ProduceSeconds, b.ProduceRate, cpu)
		for _, d := range b.Drains {
			if d.Skipped != "" {
				fmt.Fprintf(w, "  drain with %d consumers: skipped (%s)\n", d.Consumers, d.Skipped)
				continue
			}
			cpu := ""
			if d.CPU != nil {
				cpu = fmt.Sprintf(", servers %.1f µs/msg, clients %.1f µs/msg", d.CPU.ServerUsPerMsg, d.CPU.ClientUsPerMsg)
			}
			fmt.Fprintf(w, "  drain with %d consumers: %d received in %.1f s: %.0f msgs/s, %.1f MB/s, lost %d, duplicates %d%s\n",
				d.Consumers, d.Received, d.Seconds, d.MsgsPerSec, d.MBps, d.Lost, d.Duplicates, cpu)
		}
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
