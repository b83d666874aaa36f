package replication

import (
	"io"
)

// Command is a committed entry handed to the StateMachine.
type Command struct {
	Index uint64 // position in the log
	Term  uint64
	Data  []byte // as proposed; owned by the state machine only during Apply
}

// StateMachine is the replicated state the broker keeps (topics, queue
// indexes, consumer groups). The replication layer feeds it committed
// commands in log order on every node.
//
// Threading contract (inherited from hashicorp/raft's FSM): Apply,
// Snapshot and Restore are called from one goroutine, never concurrently
// with each other; Persist of a returned Snapshot runs concurrently with
// later Apply calls.
type StateMachine interface {
	// Apply applies committed commands, in order, and returns one result
	// per command (returned to the proposer on the leader). It must be
	// deterministic: no clocks, randomness or map iteration order may
	// influence state or results, so every node reaches the same state.
	Apply(cmds []Command) []any
	// Snapshot captures the state as of the last applied command. It must
	// return quickly; the expensive work belongs in Persist.
	Snapshot() (Snapshot, error)
	// Restore discards all state and replaces it with what a Snapshot's
	// Persist wrote. When it is called, the node's log holds, contiguously,
	// every retained entry up to the snapshot's position (RestoreInfo).
	Restore(r io.Reader, info RestoreInfo) error
}

// Snapshot is a point-in-time copy of a StateMachine's state.
type Snapshot interface {
	// Persist writes the state to w.
	Persist(w io.Writer) error
	// Release frees the snapshot; it is always called.
	Release()
}

// RestoreInfo tells a StateMachine where the snapshot it restores sits in
// the log.
type RestoreInfo struct {
	Index uint64 // the last log index the snapshot covers
	Term  uint64 // that entry's term
}
