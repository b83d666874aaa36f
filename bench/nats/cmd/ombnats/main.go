// Command ombnats runs bench/omb workloads against NATS JetStream (and
// LedgerMQ, for comparison) from the separate bench/nats module, so the
// broker's go.mod never depends on NATS.
//
//	cd bench/nats
//	go run ./cmd/ombnats run -workload ../omb/workloads/1-topic-16-queues-1kb.yaml -driver nats -out ../../results/
//	go run ./cmd/ombnats run -workload ../omb/workloads/1-topic-16-queues-1kb.yaml -driver nats -inflight 4096 -producers 4 -durability default -out ../../results/
//	go run ./cmd/ombnats asyncbench -durability fsync -producers 4 -pending 4096   # nats-bench-style cross-check
//	go run ./cmd/ombnats smoke [-n 10000]
//
// nats-server is found via $NATS_SERVER, PATH or /tmp/natsbin/nats-server.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/ledgermq/ledgermq/bench/nats/natsdriver"
	"github.com/ledgermq/ledgermq/bench/omb/cli"
	"github.com/ledgermq/ledgermq/bench/omb/driver"
	"github.com/ledgermq/ledgermq/internal/command"
)

func main() { command.Main("ombnats", run) }

// tuning reads the NATS client settings from the environment
// (OMB_NATS_ACK_TIMEOUT, OMB_NATS_PING_INTERVAL, OMB_NATS_MAX_PINGS,
// OMB_NATS_CONNECT_TIMEOUT, OMB_NATS_RECONNECT_WAIT, OMB_NATS_RETRY_WAIT),
// for finding the lowest settings that work.
func tuning() error {
	durs := map[string]*time.Duration{
		"OMB_NATS_ACK_TIMEOUT":     &natsdriver.AckTimeout,
		"OMB_NATS_PING_INTERVAL":   &natsdriver.PingInterval,
		"OMB_NATS_CONNECT_TIMEOUT": &natsdriver.ConnectTimeout,
		"OMB_NATS_RECONNECT_WAIT":  &natsdriver.ReconnectWait,
		"OMB_NATS_RETRY_WAIT":      &natsdriver.RetryWait,
	}
	for k, p := range durs {
		if v := os.Getenv(k); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			*p = d
		}
	}
	if v := os.Getenv("OMB_NATS_MAX_PINGS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("OMB_NATS_MAX_PINGS: %w", err)
		}
		natsdriver.MaxPingsOut = n
	}
	return nil
}

const usage = "usage: ombnats run|curve -workload FILE -driver nats|ledgermq -out DIR [-duration D] | ombnats asyncbench [-durability fsync|default] [-producers P] [-pending N] | ombnats smoke [-n N]"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	if err := tuning(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "nats client: ack timeout %s, ping interval %s x %d, connect timeout %s, reconnect wait %s, retry wait %s\n",
		natsdriver.AckTimeout, natsdriver.PingInterval, natsdriver.MaxPingsOut, natsdriver.ConnectTimeout, natsdriver.ReconnectWait, natsdriver.RetryWait)
	switch args[0] {
	case "run":
		return cli.RunWorkload(ctx, args[1:], stdout, stderr, newDriver, "nats")
	case "curve":
		return cli.Curve(ctx, args[1:], stdout, stderr, newDriver, "nats")
	case "asyncbench":
		return asyncBench(ctx, args[1:], stdout, stderr)
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
