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
	"fmt"
	"io"

	"github.com/ledgermq/ledgermq/bench/nats/natsdriver"
	"github.com/ledgermq/ledgermq/bench/omb/cli"
	"github.com/ledgermq/ledgermq/bench/omb/driver"
	"github.com/ledgermq/ledgermq/internal/command"
)

func main() { command.Main("ombnats", run) }

const usage = "usage: ombnats run -workload FILE -driver nats|ledgermq -out DIR [-duration D] | ombnats smoke [-n N]"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "run":
		return cli.RunWorkload(ctx, args[1:], stdout, stderr, newDriver, "nats")
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
