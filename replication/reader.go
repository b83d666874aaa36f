package replication

import (
	"context"
	"fmt"

	"github.com/hashicorp/raft"
)

// LogStats describe the node's commit log on disk.
type LogStats struct {
	Segments   int
	Bytes      int64
	FirstIndex uint64 // oldest retained entry
	LastIndex  uint64 // newest entry, committed or not
}

// Entry is one log entry as a reader sees it.
type Entry struct {
	Index uint64
	Term  uint64
	// Command is true for state-machine commands; false for Raft's own
	// entries (no-ops, barriers, configurations).
	Command bool
	Data    []byte // owned by the caller
}

// ReadEntry returns the data of the entry at index. Readers of the state
// machine use it to serve what the state machine indexed (a fetch reads
// the batch a produce command stored); index must be committed, which a
// state machine's own references always are. The bytes must not be
// modified: a recent entry's are shared with the log's entry cache (a
// consumer at the head of a queue reads what was just stored).
func (n *Node) ReadEntry(index uint64) ([]byte, error) {
	if n.store != nil {
		var l raft.Log
		if n.store.GetLog(index, &l) == nil {
			return l.Data, nil
		}
	}
	e, err := n.log.Read(index)
	if err != nil {
		return nil, fmt.Errorf("replication: read entry %d: %w", index, err)
	}
	return e.Data, nil
}

// ReadEntries returns entries from index from, as many as fit maxBytes of
// data (at least one), for tools and tests that scan the log. Entries past
// the commit index may still be replaced by a new leader.
func (n *Node) ReadEntries(from uint64, maxBytes int) ([]Entry, error) {
	es, err := n.log.ReadRange(from, maxBytes)
	if err != nil {
		return nil, fmt.Errorf("replication: read entries from %d: %w", from, err)
	}
	out := make([]Entry, len(es))
	for i, e := range es {
		out[i] = Entry{Index: e.Index, Term: e.Term, Command: raft.LogType(e.Type) == raft.LogCommand, Data: e.Data}
	}
	return out, nil
}

// FirstIndex is the oldest entry still retained: state that refers to
// older entries can no longer be read.
func (n *Node) FirstIndex() uint64 { return n.log.FirstIndex() }

// LogStats returns the commit log's size.
func (n *Node) LogStats() LogStats {
	s := n.log.Stats()
	return LogStats{Segments: s.Segments, Bytes: s.Bytes, FirstIndex: s.FirstIndex, LastIndex: s.LastIndex}
}

// ProposeAs proposes data like Node.Propose and returns the state
// machine's result for it as an R: the one place where an untyped result
// becomes typed. An error returned by the state machine is returned as the
// error; a result of another type is ErrBadResult (a programming error:
// the command and the expected result do not match).
func ProposeAs[R any](ctx context.Context, n *Node, data []byte) (R, error) {
	var zero R
	res, err := n.Propose(ctx, data)
	if err != nil {
		return zero, err
	}
	if res.Response == nil {
		return zero, nil
	}
	r, ok := res.Response.(R)
	if !ok {
		return zero, fmt.Errorf("%w: entry %d answered %T, want %T", ErrBadResult, res.Index, res.Response, zero)
	}
	return r, nil
}
