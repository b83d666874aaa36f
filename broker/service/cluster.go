package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/ledgermq/ledgermq/replication"
	"github.com/ledgermq/ledgermq/wire"
)

// ClusterStatus describes the group as this node sees it, asking every
// member for its own status within ctx.
func (s *Service) ClusterStatus(ctx context.Context) wire.ClusterStatus {
	st := s.node.Stats(ctx)
	s.peers.learn(st)
	out := wire.ClusterStatus{Leader: st.LeaderID, LeaderAPI: s.peers.apiAddr(st.LeaderID), Term: st.Term,
		GroupID: s.cfg.GroupID, AnsweredBy: s.cfg.ID, Nodes: []wire.ClusterNode{}}
	for _, p := range st.Peers {
		n := wire.ClusterNode{ID: p.ID, RaftAddr: p.RaftAddr, APIAddr: s.peers.apiAddr(p.ID), Error: p.Err}
		if ps := p.Status; ps != nil {
			n.Reachable = true
			n.Role, n.Term = ps.Role, ps.Term
			n.FirstIndex, n.LastIndex, n.CommitIndex, n.AppliedIndex = ps.FirstIndex, ps.LastIndex, ps.CommitIndex, ps.AppliedIndex
			if ps.APIAddr != "" {
				n.APIAddr = ps.APIAddr
			}
		} else {
			n.Role = "unreachable"
		}
		out.Nodes = append(out.Nodes, n)
	}
	return out
}

// Leader names the group's leader: its id and API address, empty when no
// leader is known or the transfer's outcome is not known yet.
type Leader struct {
	ID, API string
}

// TransferLeadership hands leadership to node to (any other member when
// empty) and returns the new leader once this node has heard from it.
func (s *Service) TransferLeadership(ctx context.Context, to string) (Leader, error) {
	old := s.node.Leader().ID
	if err := s.node.TransferLeadership(ctx, to); err != nil {
		switch {
		case errors.Is(err, replication.ErrNotLeader), errors.Is(err, replication.ErrClosed):
			return Leader{}, err
		case errors.Is(err, replication.ErrTimeout):
			return Leader{}, outcomeUnknown("the transfer did not complete in time; leadership may or may not have moved")
		default: // unknown target, a group of one, the leader itself
			return Leader{}, Errorf(wire.CodeInvalidArgument, "cannot transfer leadership: %v", err)
		}
	}
	ch, stop := s.node.WatchLeader()
	defer stop()
	var l replication.LeaderInfo
	for l.ID == "" || l.ID == old {
		select {
		case l = <-ch:
		case <-ctx.Done():
			return Leader{}, nil
		}
	}
	api := s.peers.apiAddr(l.ID)
	if api == "" { // not learned yet (a node that just started): ask the members
		s.peers.learn(s.node.Stats(ctx))
		api = s.peers.apiAddr(l.ID)
	}
	return Leader{ID: l.ID, API: api}, nil
}

// Ready is nil when this node is a member of a group with a known leader
// and its state machine has caught up with what it knows to be committed.
func (s *Service) Ready() error {
	l := s.node.Leader()
	st := s.node.Status()
	switch {
	case s.draining.Load():
		return unavailable("shutting down")
	case st.DiskError != "":
		return unavailable("commit log failed; raft is stopped on this node until it is restarted: " + st.DiskError)
	case l.ID == "":
		return unavailable("no known leader")
	case st.AppliedIndex+64 < st.CommitIndex:
		return unavailable(fmt.Sprintf("catching up: applied %d of %d", st.AppliedIndex, st.CommitIndex))
	}
	return nil
}

// NodeStatus is this node's own Raft and log state, for metrics.
type NodeStatus struct {
	replication.PeerStatus
	Log   replication.LogStats
	Peers []replication.PeerStats // as last reported (refreshed every second)
}

// Status returns this node's state without asking its peers.
func (s *Service) Status() NodeStatus {
	return NodeStatus{PeerStatus: s.node.Status(), Log: s.node.LogStats(), Peers: s.peers.progress()}
}
