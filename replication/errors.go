package replication

import "errors"

// Sentinel errors of the replication layer. Errors returned by Node wrap
// one of these where the caller must tell them apart.
var (
	// ErrNotLeader: the node is not the leader (or has not finished taking
	// over). NotLeaderError says who is, if known. Retry on the leader.
	ErrNotLeader = errors.New("replication: not the leader")
	// ErrLeadershipLost: leadership was lost while a proposal was in
	// flight. The proposal may or may not have been committed.
	ErrLeadershipLost = errors.New("replication: leadership lost; outcome unknown")
	// ErrTimeout: the context ended before the operation completed. A
	// proposal may still be committed later.
	ErrTimeout = errors.New("replication: timed out")
	// ErrClosed: the node is shut down.
	ErrClosed = errors.New("replication: node is closed")
	// ErrLogGap: a store or restore would have left a hole in the log.
	ErrLogGap = errors.New("replication: log would have a gap")
	// ErrNoSource: no peer could supply the log range a restore needs.
	ErrNoSource = errors.New("replication: no peer can supply the needed log range")
	// ErrBadSnapshot: a snapshot does not decode.
	ErrBadSnapshot = errors.New("replication: malformed snapshot")
	// ErrUnknownPeer: a named node is not a member of the group.
	ErrUnknownPeer = errors.New("replication: unknown peer")
	// ErrDiskFailed: this node's commit log failed (an fsync or write
	// error). The node stopped raft: it no longer leads, votes or takes
	// entries until it is restarted (Node.DiskError). Proposals it refuses
	// for it also match ErrNotLeader: retry on another node.
	ErrDiskFailed = errors.New("replication: the commit log failed; restart the node once the disk is fixed")
	// ErrEntryTooLarge: a proposal is over MaxEntryBytes; nothing was
	// proposed.
	ErrEntryTooLarge = errors.New("replication: entry over the maximum entry size")
	// ErrBadResult: the state machine answered a proposal with a result
	// of another type than the proposer expected (a programming error).
	ErrBadResult = errors.New("replication: unexpected result type")
)

// NotLeaderError is returned (wrapping ErrNotLeader) when a request reached
// a follower. LeaderID and LeaderAddr are empty when no leader is known.
type NotLeaderError struct {
	LeaderID   string
	LeaderAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "replication: not the leader; no leader known"
	}
	return "replication: not the leader; leader is " + e.LeaderID + " at " + e.LeaderAddr
}

// Is makes errors.Is(err, ErrNotLeader) hold.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }
