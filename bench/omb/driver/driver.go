// Package driver defines the system-under-test abstraction used by the
// OMB-style benchmark runner (bench/omb). Each messaging system (LedgerMQ,
// NATS JetStream, ...) implements Driver.
//
// This interface is shared with drivers living in other modules; do not
// change it without coordinating.
package driver

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Options configures a cluster started by Driver.Start.
type Options struct {
	Durability string // "fsync" (fsync every batch before ack) or "default"
	BaseDir    string // fresh dir for the cluster's data
	Log        *slog.Logger
}

// Msg is one consumed message.
type Msg struct {
	Key, Value []byte
	SentAt     time.Time // decoded from the payload's first 8 bytes (unix nanos) by the runner
}

// Driver controls one messaging system.
type Driver interface {
	Name() string
	Start(ctx context.Context, o Options) error // bring up a 3-node cluster on 127.0.0.1 with fresh data dirs; return when it accepts writes
	Stop() error
	CreateTopic(ctx context.Context, name string, queues int) error
	NewProducer(ctx context.Context, topic string, batchBytes int, linger time.Duration) (Producer, error)
	NewConsumer(ctx context.Context, topic string, queues int) (Consumer, error) // reads every queue from the start
	KillLeader(ctx context.Context) (node string, err error)                     // SIGKILL the leader process
	Restart(ctx context.Context, node string) error
}

// Producer publishes messages asynchronously.
type Producer interface {
	Send(key, value []byte, done func(err error)) // async; done is called once
	Flush(ctx context.Context) error
	Close() error
}

// Consumer receives messages.
type Consumer interface {
	Receive(ctx context.Context) ([]Msg, error)
	Close() error
}

// ProduceAPISetter is implemented by drivers that can publish through more
// than one client API. The runner calls it before NewProducer when a
// workload names one (workload field produceAPI).
type ProduceAPISetter interface {
	SetProduceAPI(api string) error
}

// CatchUpWaiter is implemented by drivers that can tell when a restarted
// node has caught up with the leader; the runner then reports, per kill,
// the time from the restart until WaitCaughtUp returned.
type CatchUpWaiter interface {
	WaitCaughtUp(ctx context.Context, node string) error
}

// Wait waits for wg or the end of ctx, for a Producer's Flush.
func Wait(ctx context.Context, wg *sync.WaitGroup) error {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
