// Package brokertest starts broker groups inside a test process: real
// Raft over loopback TCP, real files in the test's temporary directories,
// every node's HTTP API on its own port. For tests of the SDK, mqctl and
// the service core; tests of crashes use real processes (internal/cluster).
package brokertest

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/broker"
	"github.com/ledgermq/ledgermq/internal/testnet"
	"github.com/ledgermq/ledgermq/replication"
)

// Group starts n brokers (1, 3 or 5) as one group and returns once one of
// them is a leader that accepts writes. tweak, if not nil, adjusts each
// node's config. The brokers close when the test ends.
func Group(t testing.TB, n int, tweak func(*broker.Config)) []*broker.Broker {
	t.Helper()
	addrs := testnet.FreeAddrs(t, 2*n)
	var peers []replication.Peer
	for i := 0; i < n; i++ {
		peers = append(peers, replication.Peer{ID: fmt.Sprintf("n%d", i+1), RaftAddr: addrs[n+i]})
	}
	out := make([]*broker.Broker, 0, n)
	for i, p := range peers {
		cfg := broker.DefaultConfig()
		cfg.ID, cfg.Peers, cfg.RaftListen, cfg.Listen = p.ID, peers, p.RaftAddr, addrs[i]
		cfg.DataDir = t.TempDir()
		cfg.Logger = slog.New(slog.DiscardHandler)
		if tweak != nil {
			tweak(&cfg)
		}
		b, err := broker.Open(cfg)
		if err != nil {
			t.Fatalf("start %s: %v", p.ID, err)
		}
		out = append(out, b)
		t.Cleanup(func() { b.Close() })
	}
	Leader(t, out)
	return out
}

// Leader waits (up to 10 s) for a node of bs that accepts writes.
func Leader(t testing.TB, bs []*broker.Broker) *broker.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, b := range bs {
			if b.Service().RequireLeader() == nil {
				return b
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("no leader within 10s")
			return nil
		case <-tick.C:
		}
	}
}

// Addrs returns the brokers' API addresses.
func Addrs(bs []*broker.Broker) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Addr()
	}
	return out
}
