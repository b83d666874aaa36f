// Command ombnats runs bench/omb workloads against NATS JetStream (and
// LedgerMQ, for comparison) from the separate bench/nats module, so the
// broker's go.mod never depends on NATS.
//
//	cd bench/nats
//	go run ./cmd/ombnats run -workload ../omb/workloads/1-topic-16-queues-1kb.yaml -driver nats -out ../../results/
//	go run ./cmd/ombnats smoke [-n 10000]
//
// nats-server is found via $NATS_SERVER, PATH or /tmp/natsbin/nats-server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ledgermq/ledgermq/bench/nats/natsdriver"
	"github.com/ledgermq/ledgermq/bench/omb/driver"
	"github.com/ledgermq/ledgermq/bench/omb/runner"
	"github.com/ledgermq/ledgermq/bench/omb/workload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "ombnats:", err)
		os.Exit(1)
	}
}

const usage = "usage: ombnats run -workload FILE -driver nats|ledgermq -out DIR [-duration D] | ombnats smoke [-n N]"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "run":
		return runCmd(ctx, args[1:], stdout, stderr)
	case "smoke":
		return smoke(args[1:])
	}
	return fmt.Errorf("unknown subcommand %q; %s", args[0], usage)
}

func newDriver(name string) (driver.Driver, error) {
	switch name {
	case "nats":
		return natsdriver.New(), nil
	case "ledgermq":
		return driver.NewLedgerMQ(), nil
	}
	return nil, fmt.Errorf("unknown driver %q (nats, ledgermq)", name)
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	wl := fs.String("workload", "", "workload YAML file")
	drv := fs.String("driver", "nats", "driver: nats or ledgermq")
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
	d, err := newDriver(*drv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	base, err := os.MkdirTemp("", "omb-"+d.Name()+"-")
	if err != nil {
		return err
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
	fmt.Fprintf(stdout, "%s [%s]: %.0f msg/s published, %.0f consumed, publish p99 %.2f ms, e2e p99 %.2f ms, lost %d, duplicates %d\nresult: %s\n",
		res.Workload.Name, res.System, res.PublishRate, res.ConsumeRate, res.PublishLatency.P99, res.E2ELatency.P99, res.Lost, res.Duplicates, path)
	for _, k := range res.Kills {
		fmt.Fprintf(stdout, "kill %s at %.1fs: first ack after %.0f ms, max ack gap %.0f ms\n", k.Node, k.AtS, k.FirstAckMs, k.MaxGapMs)
	}
	return nil
}
