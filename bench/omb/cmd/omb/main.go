// Command omb runs OpenMessaging-Benchmark-shaped workloads against a
// messaging system and renders comparison reports.
//
//	go run ./bench/omb/cmd/omb run -workload bench/omb/workloads/1-topic-16-queues-1kb.yaml -driver ledgermq -out results/
//	go run ./bench/omb/cmd/omb curve -workload bench/omb/workloads/1-topic-16-queues-1kb.yaml -out results/
//	go run ./bench/omb/cmd/omb report -out report/ results/*.json
//
// run writes results/<workload>-<driver>-<time>.json; report writes
// report/README.md (tables side by side) and PNG charts. Only the ledgermq
// driver is built into this module; other drivers (bench/nats) live in
// their own modules and use package runner the same way.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ledgermq/ledgermq/bench/omb/cli"
	"github.com/ledgermq/ledgermq/bench/omb/driver"
	"github.com/ledgermq/ledgermq/bench/omb/report"
	"github.com/ledgermq/ledgermq/bench/omb/runner"
	"github.com/ledgermq/ledgermq/internal/command"
)

func main() { command.Main("omb", run) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: omb run -workload FILE -driver ledgermq -out DIR | omb curve -workload FILE -out DIR | omb report -out DIR FILE.json...")
	}
	switch args[0] {
	case "run":
		return cli.RunWorkload(ctx, args[1:], stdout, stderr, newDriver, "ledgermq")
	case "curve":
		return cli.Curve(ctx, args[1:], stdout, stderr, newDriver, "ledgermq")
	case "report":
		return reportCmd(args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown subcommand %q", args[0])
}

func newDriver(name string) (driver.Driver, error) {
	switch name {
	case "ledgermq":
		return driver.NewLedgerMQ(), nil
	}
	return nil, fmt.Errorf("unknown driver %q (built in: ledgermq)", name)
}

func reportCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "report", "output directory")
	if err := fs.Parse(reorder(args)); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("report: no result files")
	}
	var rs []*runner.Result
	var cs []*runner.Curve
	for _, p := range fs.Args() {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var kind struct{ Kind string }
		if err := json.Unmarshal(data, &kind); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if kind.Kind == runner.CurveKind {
			var c runner.Curve
			if err := json.Unmarshal(data, &c); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			cs = append(cs, &c)
			continue
		}
		var r runner.Result
		if err := json.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		rs = append(rs, &r)
	}
	var files []string
	if len(rs) > 0 {
		written, err := report.Write(*out, rs)
		if err != nil {
			return err
		}
		files = append(files, written...)
	}
	if len(cs) > 0 {
		written, err := report.WriteCurves(*out, cs)
		if err != nil {
			return err
		}
		files = append(files, written...)
	}
	for _, f := range files {
		fmt.Fprintln(stdout, filepath.Join(*out, f))
	}
	return nil
}

// reorder moves flags before positional arguments, so that
// `report results/*.json -out report/` works with package flag.
func reorder(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		if len(args[i]) > 1 && args[i][0] == '-' {
			flags = append(flags, args[i])
			if i+1 < len(args) && !strings.Contains(args[i], "=") {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, args[i])
	}
	return append(flags, pos...)
}
