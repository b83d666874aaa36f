package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgermq/ledgermq/bench/nats/natsdriver"
	"github.com/ledgermq/ledgermq/bench/omb/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// asyncBench is the cross-check of the driver against `nats bench`-style
// JetStream publishing: P publishers, each on its own connection, call
// PublishAsync as fast as the library lets them (it blocks at -pending
// unacknowledged), with no message id, no callback per message and no
// latency bookkeeping; acknowledgements are counted by the library's ack
// handler. Same cluster, stream (R3, file, 16 subjects) and payload as the
// OMB workloads. It prints acknowledged msgs/s in the window after the
// warm-up and the servers' CPU per message.
func asyncBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("asyncbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dur := fs.String("durability", "fsync", "fsync (sync_interval: always) or default (no fsync before ack)")
	producers := fs.Int("producers", 4, "publishers, each with its own connection")
	pending := fs.Int("pending", 4096, "PublishAsyncMaxPending per publisher")
	size := fs.Int("size", 1024, "message size")
	queues := fs.Int("queues", 16, "subjects of the stream")
	warmup := fs.Duration("warmup", 5*time.Second, "warm-up (not counted)")
	test := fs.Duration("duration", 20*time.Second, "measurement window")
	if err := fs.Parse(args); err != nil {
		return err
	}
	base, err := os.MkdirTemp("", "ombnats-async-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(base)
	d := natsdriver.New()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := d.Start(ctx, driver.Options{Durability: *dur, BaseDir: base, Log: log}); err != nil {
		return err
	}
	defer d.Stop()
	if err := d.CreateTopic(ctx, "asyncbench", *queues); err != nil {
		return err
	}
	var acks, errs atomic.Int64
	var conns []*nats.Conn
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	var pubs []jetstream.JetStream
	for range *producers {
		nc, err := nats.Connect(d.URLs())
		if err != nil {
			return err
		}
		conns = append(conns, nc)
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(*pending),
			jetstream.WithPublishAsyncAckHandler(func(jetstream.JetStream, *nats.Msg, *jetstream.PubAck) { acks.Add(1) }),
			jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { errs.Add(1) }))
		if err != nil {
			return err
		}
		pubs = append(pubs, js)
	}
	start := time.Now()
	end := start.Add(*warmup + *test)
	var wg sync.WaitGroup
	for i, js := range pubs {
		wg.Go(func() {
			data := make([]byte, *size)
			for n := i; time.Now().Before(end) && ctx.Err() == nil; n++ {
				_, err := js.PublishAsync("asyncbench."+strconv.Itoa(n%*queues), data)
				if err != nil && !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
					errs.Add(1)
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(time.Until(start.Add(*warmup)))
	a0 := acks.Load()
	c0, err0 := d.ServerCPU()
	time.Sleep(time.Until(end))
	a1 := acks.Load()
	c1, err1 := d.ServerCPU()
	wg.Wait()
	if err := errors.Join(err0, err1); err != nil {
		return fmt.Errorf("asyncbench: %w", err)
	}
	n := a1 - a0
	fmt.Fprintf(stdout, "asyncbench [nats, sync %s, %d publishers, pending %d, %d B]: %.0f msgs/s acknowledged, server CPU %.1f µs/msg, errors %d\n",
		d.Settings()["sync_interval"], *producers, *pending, *size, float64(n)/test.Seconds(),
		float64(c1-c0)/float64(time.Microsecond)/float64(max(n, 1)), errs.Load())
	return nil
}
