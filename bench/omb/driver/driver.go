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
	// Netns asks for every node in a network namespace of its own
	// (internal/netlab) reached by the clients at its own address, so that
	// FaultInjector can drop packets. Set by the runner for fault
	// workloads, and only for drivers that implement FaultInjector.
	Netns bool
}

// Msg is one consumed message.
type Msg struct {
	Key, Value []byte
	SentAt     time.Time // decoded from the payload's first 8 bytes (unix nanos) by the runner
}

// Driver controls one messaging system.
type Driver interface {
	Name() string
	Start(ctx context.Context, o Options) error // bring up a 3-node cluster on 127.0.0.1 (Options.Netns: in network namespaces) with fresh data dirs; return when it accepts writes
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

// Fault is a leader fault of a fault workload (workload field fault).
type Fault string

// The faults. Each lasts a hold time (workload field faultHold) and is
// then healed.
const (
	FaultKill      Fault = "kill"      // SIGKILL; heal: restart the process
	FaultStall     Fault = "stall"     // SIGSTOP; heal: SIGCONT
	FaultBlackhole Fault = "blackhole" // every packet to and from the node dropped, clients' too; heal: drop nothing
	FaultPartition Fault = "partition" // the node cut from its peers, clients still reach it; heal: drop nothing
)

// Faults lists every Fault.
var Faults = []Fault{FaultKill, FaultStall, FaultBlackhole, FaultPartition}

// FaultInjector is implemented by drivers that can inject every Fault into
// one node. The runner starts such a driver with Options.Netns (network
// faults are nftables drops in the nodes' namespaces, equal for every
// system) and, per event: Leader, Inject, hold, Heal, then WaitHealthy
// before the next event.
type FaultInjector interface {
	// Leader returns the node that leads the (first) topic's writes.
	Leader(ctx context.Context) (node string, err error)
	// Inject applies fault to node and returns once it is in effect (the
	// process stopped or gone, the drop rules installed).
	Inject(ctx context.Context, fault Fault, node string) error
	// Heal ends fault on node (restart, SIGCONT, rules removed).
	Heal(ctx context.Context, fault Fault, node string) error
	// WaitHealthy waits until node is back in the cluster and caught up.
	WaitHealthy(ctx context.Context, node string) error
}

// LeaderStats is implemented by drivers that can count leader changes;
// the runner reads it at the start and at the end of the measurement
// window and reports the differences (Result.Leadership).
type LeaderStats interface {
	// LeaderStats returns, per node, the leader changes it has observed
	// and its current term (or its equivalent).
	LeaderStats(ctx context.Context) (map[string]NodeLeaderStats, error)
}

// NodeLeaderStats is one node's LeaderStats.
type NodeLeaderStats struct {
	LeaderChanges uint64 `json:"leaderChanges"`
	Term          uint64 `json:"term"`
	Leader        string `json:"leader"`
}

// SecuritySetter is implemented by drivers that can run their cluster
// secured: TLS on the client API and mutual TLS between the nodes, and
// with auth also authentication (the benchmark's clients then authenticate
// as a superuser). The runner's caller (package cli, flags -tls and -auth)
// calls it before Start; a secured driver's Name says so (e.g.
// "ledgermq-tls"), so that results of plain and secured runs are told
// apart in reports.
type SecuritySetter interface {
	SetSecurity(tls, auth bool) error
}

// CPUReporter is implemented by drivers that can tell how much CPU time
// their server processes have used since they started (user + system,
// summed over the running nodes). The runner reads it at the start and at
// the end of the measurement window of runs without leader kills or faults
// and reports the difference per message (Result.CPU).
type CPUReporter interface {
	ServerCPU() (time.Duration, error)
}

// QueueConsumer is implemented by drivers that can read a subset of a
// topic's queues from the start (backlog drains with more than one
// consumer: each reads its share of the queues). queues is the topic's
// queue count, read the queues to read.
type QueueConsumer interface {
	NewQueueConsumer(ctx context.Context, topic string, queues int, read []int) (Consumer, error)
}

// InFlightSetter is implemented by drivers whose producers bound their
// unacknowledged messages themselves (flag -inflight of the run command);
// the runner's own bound is the workload's maxOutstandingBytes.
type InFlightSetter interface {
	SetMaxInFlight(n int) error
}

// SettingsReporter is implemented by drivers with settings of their own
// (e.g. the in-flight window) or counters worth keeping (e.g. resends);
// the runner records them at the end of the run, before Stop, in the
// result (Result.DriverSettings) so that every figure says how it was
// measured.
type SettingsReporter interface {
	Settings() map[string]string
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
