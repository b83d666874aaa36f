package replication

import (
	"context"
	"sync"

	"github.com/hashicorp/raft"
)

// Stats describe a node and, as far as it can reach them, its peers.
type Stats struct {
	ID                string
	Role              string // leader, follower, candidate, shutdown
	Term              uint64
	LeaderID          string
	LeaderAddr        string
	FirstIndex        uint64
	LastIndex         uint64
	CommitIndex       uint64
	AppliedIndex      uint64
	LastSnapshotIndex uint64
	DiskError         string // set when this node's commit log failed (Node.DiskError)
	Peers             []PeerStats
}

// PeerStats is one member of the group as its own status report says.
// Status is nil when the member did not answer; Err says why.
type PeerStats struct {
	ID       string
	RaftAddr string
	Voter    bool
	Status   *PeerStatus
	Err      string
}

func roleName(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "leader"
	case raft.Follower:
		return "follower"
	case raft.Candidate:
		return "candidate"
	}
	return "shutdown"
}

// peerStatus is what this node reports to peers.
func (n *Node) peerStatus() PeerStatus {
	st := PeerStatus{ID: n.cfg.ID, Role: "starting", APIAddr: n.cfg.APIAddr, KafkaAddr: n.cfg.KafkaAddr,
		FirstIndex: n.log.FirstIndex(), LastIndex: n.log.LastIndex(), AppliedIndex: n.fsm.applied.Load()}
	if r := n.raft.Load(); r != nil {
		st.Role = roleName(r.State())
		st.Term = r.CurrentTerm()
		st.CommitIndex = r.CommitIndex()
	}
	if err := n.DiskError(); err != nil {
		st.DiskError = err.Error()
	}
	return st
}

// Stats returns this node's state and asks every other member for its
// own, within ctx. The leader's view of a follower's progress is the
// follower's reported LastIndex; lag is the leader's LastIndex minus it.
func (n *Node) Stats(ctx context.Context) Stats {
	self := n.peerStatus()
	l := n.currentLeader()
	st := Stats{ID: n.cfg.ID, Role: self.Role, Term: self.Term, LeaderID: l.ID, LeaderAddr: l.Addr,
		FirstIndex: self.FirstIndex, LastIndex: self.LastIndex, CommitIndex: self.CommitIndex,
		AppliedIndex: self.AppliedIndex, LastSnapshotIndex: n.snaps.last.Load(), DiskError: self.DiskError}
	servers := n.serversCopy()
	st.Peers = make([]PeerStats, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		st.Peers[i] = PeerStats{ID: string(s.ID), RaftAddr: string(s.Address), Voter: s.Suffrage == raft.Voter}
		if string(s.ID) == n.cfg.ID {
			cp := self
			st.Peers[i].Status = &cp
			continue
		}
		wg.Add(1)
		go func(p *PeerStats, addr string) {
			defer wg.Done()
			pc, err := dialPeerConn(ctx, n.mux, addr, n.cfg.Log.MaxEntrySize)
			if err != nil {
				p.Err = err.Error()
				return
			}
			defer pc.Close()
			// The status exchange ends with ctx too: a silent peer (one
			// whose packets vanish) must not hold the round for the peer
			// protocol's long IO timeout.
			defer context.AfterFunc(ctx, func() { pc.Close() })()
			ps, err := pc.status()
			if err != nil {
				p.Err = err.Error()
				return
			}
			p.Status = &ps
		}(&st.Peers[i], n.cfg.PeerAddr(s.ID, s.Address))
	}
	wg.Wait()
	return st
}

// Status returns this node's own status without asking its peers.
func (n *Node) Status() PeerStatus { return n.peerStatus() }
