package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"

	"github.com/ledgermq/ledgermq/commitlog"
	"github.com/ledgermq/ledgermq/replication"
)

// storeStats counts a LogStore's calls.
type storeStats struct {
	Writes     int64 `json:"store_logs_calls"` // StoreLogs calls (one durable write each)
	Entries    int64 `json:"entries_written"`  // entries they stored
	WriteNanos int64 `json:"store_logs_nanos"` // time spent in StoreLogs
	Reads      int64 `json:"get_log_calls"`    // GetLog calls
	ReadNanos  int64 `json:"get_log_nanos"`    // time spent in GetLog
	Bytes      int64 `json:"payload_bytes"`    // payload bytes stored
}

func (s storeStats) sub(o storeStats) storeStats {
	return storeStats{Writes: s.Writes - o.Writes, Entries: s.Entries - o.Entries, WriteNanos: s.WriteNanos - o.WriteNanos,
		Reads: s.Reads - o.Reads, ReadNanos: s.ReadNanos - o.ReadNanos, Bytes: s.Bytes - o.Bytes}
}

func (s storeStats) plus(o storeStats) storeStats {
	return storeStats{Writes: s.Writes + o.Writes, Entries: s.Entries + o.Entries, WriteNanos: s.WriteNanos + o.WriteNanos,
		Reads: s.Reads + o.Reads, ReadNanos: s.ReadNanos + o.ReadNanos, Bytes: s.Bytes + o.Bytes}
}

// countingStore wraps a raft.LogStore and counts its calls. The counters
// cost a few atomic adds and two clock reads per call.
type countingStore struct {
	raft.LogStore
	writes, entries, writeNanos, reads, readNanos, bytes atomic.Int64
}

func (s *countingStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

func (s *countingStore) StoreLogs(logs []*raft.Log) error {
	t0 := time.Now()
	err := s.LogStore.StoreLogs(logs)
	s.writeNanos.Add(int64(time.Since(t0)))
	s.writes.Add(1)
	s.entries.Add(int64(len(logs)))
	var n int
	for _, l := range logs {
		n += len(l.Data)
	}
	s.bytes.Add(int64(n))
	return err
}

func (s *countingStore) GetLog(index uint64, l *raft.Log) error {
	t0 := time.Now()
	err := s.LogStore.GetLog(index, l)
	s.readNanos.Add(int64(time.Since(t0)))
	s.reads.Add(1)
	return err
}

// IsMonotonic forwards raft.MonotonicLogStore (raft-wal implements it), so
// the wrapper does not change raft's behaviour.
func (s *countingStore) IsMonotonic() bool {
	m, ok := s.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

func (s *countingStore) stats() storeStats {
	return storeStats{Writes: s.writes.Load(), Entries: s.entries.Load(), WriteNanos: s.writeNanos.Load(),
		Reads: s.reads.Load(), ReadNanos: s.readNanos.Load(), Bytes: s.bytes.Load()}
}

// openLogStore opens the named LogStore in dir with its default, durable
// settings, and returns it with the function that closes it after raft has
// shut down.
func openLogStore(name, dir string, logger *slog.Logger) (raft.LogStore, func() error, error) {
	switch name {
	case "ours":
		opts := commitlog.DefaultOptions() // SyncEveryAppend
		opts.Logger = logger
		l, err := commitlog.Open(filepath.Join(dir, "log"), opts)
		if err != nil {
			return nil, nil, err
		}
		return replication.NewLogStore(l, logger), l.Close, nil
	case "wal":
		walDir := filepath.Join(dir, "wal")
		if err := os.MkdirAll(walDir, 0o755); err != nil {
			return nil, nil, err
		}
		w, err := wal.Open(walDir, wal.WithLogger(hclog.NewNullLogger()))
		if err != nil {
			return nil, nil, err
		}
		return w, w.Close, nil
	case "bolt":
		s, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "logs.db")}) // NoSync=false
		if err != nil {
			return nil, nil, err
		}
		return s, s.Close, nil
	}
	return nil, nil, fmt.Errorf("unknown store %q", name)
}

// raftConfig is replication.DefaultConfig()'s raft configuration, with
// snapshots pushed out of the way.
func raftConfig(id string, logger hclog.Logger) *raft.Config {
	d := replication.DefaultConfig()
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(id)
	rc.HeartbeatTimeout = d.HeartbeatTimeout
	rc.ElectionTimeout = d.ElectionTimeout
	rc.LeaderLeaseTimeout = d.LeaderLeaseTimeout
	rc.CommitTimeout = d.CommitTimeout
	rc.MaxAppendEntries = d.MaxAppendEntries
	rc.BatchApplyCh = true
	rc.TrailingLogs = ^uint64(0)
	rc.SnapshotThreshold = 1 << 62
	rc.SnapshotInterval = 24 * time.Hour
	rc.NoLegacyTelemetry = true
	rc.Logger = logger
	return rc
}

// countingFSM is the trivial state machine: it counts applied commands and
// their bytes.
type countingFSM struct {
	commands, bytes atomic.Uint64
}

var _ raft.BatchingFSM = (*countingFSM)(nil)

func (f *countingFSM) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

func (f *countingFSM) ApplyBatch(logs []*raft.Log) []any {
	for _, l := range logs {
		if l.Type == raft.LogCommand {
			f.commands.Add(1)
			f.bytes.Add(uint64(len(l.Data)))
		}
	}
	return make([]any, len(logs))
}

func (f *countingFSM) Snapshot() (raft.FSMSnapshot, error) {
	return fsmSnapshot{f.commands.Load(), f.bytes.Load()}, nil
}

func (f *countingFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var b [16]byte
	if _, err := io.ReadFull(rc, b[:]); err != nil {
		return err
	}
	f.commands.Store(binary.LittleEndian.Uint64(b[:]))
	f.bytes.Store(binary.LittleEndian.Uint64(b[8:]))
	return nil
}

type fsmSnapshot struct{ commands, bytes uint64 }

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:], s.commands)
	binary.LittleEndian.PutUint64(b[8:], s.bytes)
	if _, err := sink.Write(b[:]); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (fsmSnapshot) Release() {}

// node is one raft member and what it owns.
type node struct {
	id      string
	raft    *raft.Raft
	fsm     *countingFSM
	logs    *countingStore
	closers []func() error // in closing order, after raft's shutdown
}

type cluster struct {
	nodes  []*node
	logger *slog.Logger
}

// startCluster starts three nodes under dir with the named LogStore and
// bootstraps the group from the first.
func startCluster(dir, store string, logCache int, logger *slog.Logger, raftLog hclog.Logger) (c *cluster, err error) {
	c = &cluster{logger: logger}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.shutdown())
		}
	}()
	const size = 3
	muxes := make([]*replication.Mux, size)
	var servers []raft.Server
	for i := range size {
		m, err := replication.NewMux("127.0.0.1:0", nil, logger)
		if err != nil {
			return c, err
		}
		muxes[i] = m
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(fmt.Sprintf("n%d", i+1)), Address: raft.ServerAddress(m.Addr().String())})
	}
	for i := range size {
		n := &node{id: string(servers[i].ID), fsm: &countingFSM{}}
		c.nodes = append(c.nodes, n)
		// Until raft owns the transport (and closes it on shutdown), the
		// node closes the mux itself.
		n.closers = append(n.closers, muxes[i].Close)
		ndir := filepath.Join(dir, n.id)
		if err := os.MkdirAll(ndir, 0o755); err != nil {
			return c, err
		}
		ls, closeLogs, err := openLogStore(store, ndir, logger)
		if err != nil {
			return c, err
		}
		n.closers = append(n.closers, closeLogs)
		n.logs = &countingStore{LogStore: ls}
		var logs raft.LogStore = n.logs
		if logCache > 0 { // the counters below the cache see only its misses
			if logs, err = raft.NewLogCache(logCache, n.logs); err != nil {
				return c, err
			}
		}
		stable, err := raftboltdb.NewBoltStore(filepath.Join(ndir, "raft.db"))
		if err != nil {
			return c, err
		}
		n.closers = append(n.closers, stable.Close)
		snaps, err := raft.NewFileSnapshotStoreWithLogger(ndir, 1, raftLog)
		if err != nil {
			return c, err
		}
		trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream:  muxes[i],
			MaxPool: 4, // as replication.Open
			Timeout: 10 * time.Second,
			Logger:  raftLog,
		})
		n.closers = append(n.closers, trans.Close)
		r, err := raft.NewRaft(raftConfig(n.id, raftLog), n.fsm, logs, stable, snaps, trans)
		if err != nil {
			return c, err
		}
		n.raft = r
	}
	if err := c.nodes[0].raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		return c, fmt.Errorf("bootstrap: %w", err)
	}
	return c, nil
}

// leaderNode returns the node that is leader now, or nil.
func (c *cluster) leaderNode() *node {
	for _, n := range c.nodes {
		if n.raft != nil && n.raft.State() == raft.Leader {
			return n
		}
	}
	return nil
}

// waitLeader waits for a leader that has committed an entry of its term.
func (c *cluster) waitLeader(ctx context.Context, timeout time.Duration) (*node, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if n := c.leaderNode(); n != nil && n.raft.Barrier(timeout).Error() == nil {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("no leader within %s", timeout)
}

// storeStats returns the leader's store counters and the followers', in
// node order.
func (c *cluster) storeStats(leader *node) (ldr storeStats, fol []storeStats) {
	for _, n := range c.nodes {
		if n == leader {
			ldr = n.logs.stats()
		} else {
			fol = append(fol, n.logs.stats())
		}
	}
	return ldr, fol
}

// verifyReplicas checks that every follower applies what the leader did.
func (c *cluster) verifyReplicas(timeout time.Duration) error {
	leader, err := c.waitLeader(context.Background(), timeout)
	if err != nil {
		return err
	}
	want := leader.fsm.bytes.Load()
	deadline := time.Now().Add(timeout)
	for _, n := range c.nodes {
		for n.fsm.bytes.Load() != want {
			if time.Now().After(deadline) {
				return fmt.Errorf("follower %s applied %d bytes, the leader %d", n.id, n.fsm.bytes.Load(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}

// shutdown stops every node's raft and closes its stores.
func (c *cluster) shutdown() error {
	var errs []error
	for _, n := range c.nodes {
		if n.raft != nil {
			errs = append(errs, n.raft.Shutdown().Error())
		}
	}
	for _, n := range c.nodes {
		for _, cl := range n.closers {
			errs = append(errs, cl())
		}
	}
	return errors.Join(errs...)
}
