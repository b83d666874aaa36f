// Package replication turns a set of broker nodes, each with its own
// commit log, into one replicated log: a broker group. It is the only
// package that imports hashicorp/raft.
//
// In the style of RocketMQ's DLedger, the Raft log is the commit log:
// LogStore implements raft.LogStore over commitlog, so every message batch
// is one Raft entry written to disk once per node. raft-boltdb holds only
// Raft's stable state (term and vote).
//
// # Pieces
//
//   - LogStore: raft.LogStore over commitlog. Compaction requests are
//     ignored; retention deletes messages (Node.ApplyRetention), never
//     beyond the newest snapshot.
//   - fsm: raft.BatchingFSM over the broker's StateMachine; adds a header
//     with the snapshot's log position to every snapshot.
//   - restore.go: before a snapshot is restored, the local log is made to
//     hold, contiguously, every retained entry up to the snapshot's index,
//     copied from a peer and verified by CRC. Without it, a follower that
//     fell behind the leader's retention would get a silent hole.
//   - Mux: the Raft stream layer. One TCP listener carries hashicorp/raft's
//     RPCs and LedgerMQ's peer protocol (log fetch, status), told apart by
//     the first byte. Its Dialer is the seam for TLS and fault injection.
//   - Node: the API the broker uses: Propose, Leader/WatchLeader,
//     TransferLeadership, AddVoter/RemoveServer, ReadBarrier, Stats.
//
// # Invariants
//
//   - Every node's log is contiguous: no operation of this package leaves
//     a gap (StoreLogs refuses one with ErrLogGap).
//   - A leader accepts proposals and linearizable reads only after a
//     Barrier in its term has been applied, so its state machine reflects
//     everything committed before its term.
//   - Log entries above the newest snapshot are never deleted.
//   - A node whose commit log failed (Node.DiskError) runs no raft: it
//     does not lead, vote or take entries until it is restarted.
//
// # Concurrency
//
// Node's methods are safe for concurrent use. The StateMachine is driven
// from one goroutine (see its documentation). Node owns its goroutines (the
// leadership watcher, the leader barrier, the retention loop) and Close or
// Stop waits for them.
package replication
