package replication

import (
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// FollowerProgress is what the leader knows of a follower's replication
// from its own AppendEntries exchanges with it (hashicorp/raft keeps its
// match index and last contact private): the highest index the follower
// acknowledged as stored this term, and when it last answered.
type FollowerProgress struct {
	ID          string
	MatchIndex  uint64
	LastContact time.Time // zero: it has not answered this term
}

// progressTransport is the node's Raft transport with every AppendEntries
// answer recorded per follower. It keeps the optional interfaces raft
// looks for (pre-vote, close): the transports it wraps have both.
type progressTransport struct {
	fullTransport

	mu    sync.Mutex
	term  uint64 // the leader term of the entries below
	peers map[raft.ServerID]*FollowerProgress
}

// fullTransport is a raft transport with pre-vote and close, as
// hashicorp/raft's NetworkTransport and authTransport are.
type fullTransport interface {
	raft.Transport
	raft.WithPreVote
	raft.WithClose
}

func newProgressTransport(t fullTransport) *progressTransport {
	return &progressTransport{fullTransport: t, peers: map[raft.ServerID]*FollowerProgress{}}
}

// AppendEntries sends the RPC and records the follower's answer. A
// successful append of entries (or a consistency check of PrevLogEntry)
// means the follower's log matches up to PrevLogEntry+len(Entries); a
// heartbeat (no PrevLogEntry, no entries) only proves contact.
func (t *progressTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress,
	args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	err := t.fullTransport.AppendEntries(id, target, args, resp)
	if err != nil {
		return err
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if args.Term != t.term { // a new leadership: what was known is void
		if args.Term < t.term {
			return nil
		}
		t.term = args.Term
		clear(t.peers)
	}
	if resp.Term > args.Term {
		return nil // the follower knows a newer term: no contact as leader
	}
	p := t.peers[id]
	if p == nil {
		p = &FollowerProgress{ID: string(id)}
		t.peers[id] = p
	}
	p.LastContact = now
	if resp.Success && (args.PrevLogEntry > 0 || len(args.Entries) > 0) {
		p.MatchIndex = args.PrevLogEntry + uint64(len(args.Entries))
	}
	return nil
}

// progress returns what is known of the followers in leader term term, by
// id; nothing if nothing was recorded in that term.
func (t *progressTransport) progress(term uint64) map[string]FollowerProgress {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]FollowerProgress{}
	if term != t.term {
		return out
	}
	for _, p := range t.peers {
		out[p.ID] = *p
	}
	return out
}
