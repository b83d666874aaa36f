package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ledgermq/ledgermq/replication"
	"github.com/ledgermq/ledgermq/wire"
)

// ClusterStatus describes the group as this node sees it, from local
// state only: its own status now, and each member's newest report from the
// background rounds (every 500 ms) with its age. It never waits for a
// peer, so it answers at once even while one is silent.
func (s *Service) ClusterStatus() wire.ClusterStatus {
	self := s.node.Status()
	l := s.node.Leader()
	out := wire.ClusterStatus{Leader: l.ID, LeaderAPI: s.peers.apiAddr(l.ID), Term: self.Term,
		GroupID: s.cfg.GroupID, AnsweredBy: s.cfg.ID, Nodes: []wire.ClusterNode{}}
	for _, m := range s.node.Members() {
		n := wire.ClusterNode{ID: m.ID, RaftAddr: m.RaftAddr, APIAddr: s.peers.apiAddr(m.ID), KafkaAddr: s.peers.kafkaAddr(m.ID)}
		if m.ID == s.cfg.ID {
			age := int64(0)
			n.StatusAgeMs = &age
			fillNode(&n, self, true)
		} else {
			st, fresh, age, heard, err := s.peers.report(m.ID)
			if heard {
				ms := age.Milliseconds()
				n.StatusAgeMs = &ms
			}
			fillNode(&n, st, fresh)
			if !fresh {
				n.Error = err
				if n.Error == "" {
					n.Error = fmt.Sprintf("no status report for %v", age.Round(time.Millisecond))
				}
			}
		}
		out.Nodes = append(out.Nodes, n)
	}
	return out
}

// fillNode copies a member's report into n; a member without a fresh one
// is "unreachable", with its last known figures.
func fillNode(n *wire.ClusterNode, st replication.PeerStatus, fresh bool) {
	n.Term, n.FirstIndex, n.LastIndex, n.CommitIndex, n.AppliedIndex = st.Term, st.FirstIndex, st.LastIndex, st.CommitIndex, st.AppliedIndex
	if st.APIAddr != "" {
		n.APIAddr = st.APIAddr
	}
	n.Reachable = fresh
	n.DiskError = st.DiskError
	n.Role = st.Role
	if !fresh {
		n.Role = "unreachable"
	}
}

// LeaderView is this node's view of the leader, from local state: cheap
// enough for clients' hot paths (GET /v1/leader).
func (s *Service) LeaderView() wire.LeaderView {
	l := s.node.Leader()
	return wire.LeaderView{Leader: l.ID, LeaderAPI: s.peers.apiAddr(l.ID), Term: s.node.Status().Term, AnsweredBy: s.cfg.ID,
		SilentMs: s.node.LeaderSilence().Milliseconds()}
}

// Leader names the group's leader: its id and API address, empty when no
// leader is known or the transfer's outcome is not known yet.
type Leader struct {
	ID, API string
}

// TransferLeadership hands leadership to node to (any other member when
// empty) and returns the new leader once this node has heard from it.
func (s *Service) TransferLeadership(ctx context.Context, to string) (_ Leader, err error) {
	if err := s.Authorize(ctx, wire.OpAdmin, wire.ResourceCluster, ""); err != nil {
		return Leader{}, err
	}
	defer func() { s.audited(ctx, "transfer_leadership", clusterRes, "to "+to, err) }()
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
	// Followers is, on the leader, each follower's match index and last
	// contact from the leader's own AppendEntries exchanges; nil elsewhere.
	Followers []replication.FollowerProgress
	// LeaderContact is when a follower last heard from its leader (zero on
	// the leader).
	LeaderContact time.Time
}

// Status returns this node's state without asking its peers.
func (s *Service) Status() NodeStatus {
	return NodeStatus{PeerStatus: s.node.Status(), Log: s.node.LogStats(), Peers: s.peers.progress(s.node.Members()),
		Followers: s.node.Followers(), LeaderContact: s.node.LeaderLastContact()}
}
