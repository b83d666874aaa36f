package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgermq/ledgermq/bench/nats/natsdriver"
	"github.com/ledgermq/ledgermq/bench/omb/driver"
	"github.com/ledgermq/ledgermq/internal/stats"
)

// smoke starts a NATS cluster per durability, publishes n messages with
// natsdriver.MaxInFlight in flight, prints msgs/s and p99 ack latency,
// then kills the stream leader once and reports the time to the first ack
// of a message sent after the kill.
func smoke(args []string) error {
	fs := flag.NewFlagSet("smoke", flag.ExitOnError)
	n := fs.Int("n", 10000, "messages per durability")
	size := fs.Int("size", 1024, "message size in bytes")
	queues := fs.Int("queues", 16, "subjects in the stream")
	dir := fs.String("dir", "", "base dir (default: a fresh temp dir)")
	fs.Parse(args)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	base := *dir
	if base == "" {
		var err error
		if base, err = os.MkdirTemp("", "ombnats-smoke-"); err != nil {
			return err
		}
		defer os.RemoveAll(base)
	}
	for _, dur := range []string{"fsync", "default"} {
		if err := smokeOne(log, filepath.Join(base, dur), dur, *n, *size, *queues); err != nil {
			return fmt.Errorf("%s: %w", dur, err)
		}
	}
	return nil
}

func smokeOne(log *slog.Logger, base, dur string, n, size, queues int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	d := natsdriver.New()
	t0 := time.Now()
	if err := d.Start(ctx, driver.Options{Durability: dur, BaseDir: base, Log: log}); err != nil {
		return err
	}
	defer d.Stop()
	fmt.Printf("[%s] cluster up in %s\n", dur, time.Since(t0).Round(time.Millisecond))
	if err := d.CreateTopic(ctx, "smoke", queues); err != nil {
		return err
	}
	p, err := d.NewProducer(ctx, "smoke", 1<<20, 5*time.Millisecond)
	if err != nil {
		return err
	}
	defer p.Close()
	value := make([]byte, size)
	if err := smokeThroughput(ctx, p, dur+", inflight "+d.Settings()["inflight"], n, value); err != nil {
		return err
	}
	node, sendErrs, err := smokeFailover(ctx, d, p, dur, value)
	if err != nil {
		return err
	}
	if err := d.Restart(ctx, node); err != nil {
		return err
	}
	got, err := readBack(ctx, d, queues)
	if err != nil {
		return err
	}
	fmt.Printf("[%s] restarted %s; consumer read %d messages back (publish errors during failover: %d)\n", dur, node, got, sendErrs)
	return nil
}

// smokeThroughput publishes n messages and prints the rate and the ack
// latency percentiles.
func smokeThroughput(ctx context.Context, p driver.Producer, dur string, n int, value []byte) error {
	var (
		mu   sync.Mutex
		lat  = stats.New()
		errs atomic.Int64
	)
	start := time.Now()
	for i := range n {
		sent := time.Now()
		p.Send(fmt.Appendf(nil, "k%d", i), value, func(err error) {
			if err != nil {
				errs.Add(1)
				return
			}
			mu.Lock()
			lat.Record(time.Since(sent))
			mu.Unlock()
		})
	}
	if err := p.Flush(ctx); err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Printf("[%s] %d x %d B: %.0f msgs/s, ack p50 %s p99 %s max %s, errors %d\n",
		dur, n, len(value), float64(lat.Count())/el.Seconds(),
		lat.Percentile(50), lat.Percentile(99), lat.Max(), errs.Load())
	return nil
}

// smokeFailover keeps sending in the background, kills the stream leader
// and prints the time to the first ack of a message sent after the kill.
func smokeFailover(ctx context.Context, d *natsdriver.Driver, p driver.Producer, dur string, value []byte) (string, int64, error) {
	var killedAt atomic.Int64 // unix nanos; 0 = not yet
	firstAck := make(chan time.Time, 1)
	stop := make(chan struct{})
	var sendErrs atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			sentAfterKill := killedAt.Load() != 0
			p.Send(fmt.Appendf(nil, "f%d", i), value, func(err error) {
				if err != nil {
					sendErrs.Add(1)
				} else if sentAfterKill {
					select {
					case firstAck <- time.Now():
					default:
					}
				}
			})
		}
	}()
	time.Sleep(500 * time.Millisecond) // let the load settle before the kill
	node, err := d.KillLeader(ctx)     // returns once the process has exited
	if err == nil {
		kt := time.Now()
		killedAt.Store(kt.UnixNano())
		select {
		case at := <-firstAck:
			fmt.Printf("[%s] killed stream leader %s; first ack of a post-kill message after %s\n", dur, node, at.Sub(kt).Round(time.Millisecond))
		case <-time.After(60 * time.Second):
			fmt.Printf("[%s] killed stream leader %s; NO ack within 60s\n", dur, node)
		}
	}
	close(stop)
	wg.Wait()
	if err != nil {
		return "", 0, err
	}
	return node, sendErrs.Load(), p.Flush(ctx)
}

// readBack reads every message back (for at most 3 s of quiet).
func readBack(ctx context.Context, d *natsdriver.Driver, queues int) (int, error) {
	c, err := d.NewConsumer(ctx, "smoke", queues)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	got := 0
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	for {
		ms, err := c.Receive(rctx)
		got += len(ms)
		if err != nil {
			return got, nil
		}
	}
}
