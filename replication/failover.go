package replication

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Fast failover. Raft's own follower timer fires at a random point between
// one and two heartbeat timeouts, and a candidate's (pre-)vote is refused
// by every follower that still knows a leader, so after a leader dies the
// election usually waits for the second follower's timer too: 1.5-2
// heartbeat timeouts. The failover watch shortens this without weakening
// the guard against a node that alone lost the leader (a one-way
// partition, a bad link):
//
//  1. a follower that has heard nothing from its leader for FailoverAfter
//     asks the other voters, except the leader, how long ago they heard
//     from it (peer protocol, op suspect);
//  2. only when a majority of voters, itself included, have not heard from
//     the leader for at least half of FailoverAfter does it act: the
//     freshest of them (highest last log term, then index, then lowest
//     id) at once, the others after another half FailoverAfter if the
//     leader is still silent and nobody has won;
//  3. it acts by sending raft the TimeoutNow RPC a leadership transfer
//     uses: raft becomes a candidate and asks for votes that followers
//     grant although they still know the old leader. Votes still go only
//     to a candidate whose log is at least as up to date, so the safety of
//     the election is raft's own.
//
// Raft's own timer keeps running underneath: when the watch cannot reach
// a majority (or is disabled), elections happen as they did before.

// SuspectView is what a node answers when a peer suspects the leader.
type SuspectView struct {
	ID       string `json:"id"`
	Role     string `json:"role"`
	Term     uint64 `json:"term"`
	LeaderID string `json:"leader_id,omitempty"`
	// SilentMs is how long ago this node last heard from a leader, in
	// milliseconds; -1 on the leader itself.
	SilentMs  int64  `json:"silent_ms"`
	LastTerm  uint64 `json:"last_term"`
	LastIndex uint64 `json:"last_index"`
}

// fresher reports whether a's log is more up to date than b's, ties going
// to the lower id: the order in which suspects act.
func fresher(a, b SuspectView) bool {
	if c := cmp.Compare(a.LastTerm, b.LastTerm); c != 0 {
		return c > 0
	}
	if c := cmp.Compare(a.LastIndex, b.LastIndex); c != 0 {
		return c > 0
	}
	return a.ID < b.ID
}

// suspectView is this node's answer to op suspect.
func (n *Node) suspectView() SuspectView {
	v := SuspectView{ID: n.cfg.ID, Role: "starting", SilentMs: -1}
	r := n.raft.Load()
	if r == nil {
		return v
	}
	v.Role, v.Term = roleName(r.State()), r.CurrentTerm()
	_, id := r.LeaderWithID()
	v.LeaderID = string(id)
	if r.State() != raft.Leader {
		v.SilentMs = time.Since(r.LastContact()).Milliseconds()
	}
	if last := n.log.LastIndex(); last >= n.log.FirstIndex() && last > 0 {
		if e, err := n.log.Read(last); err == nil {
			v.LastTerm, v.LastIndex = e.Term, e.Index
		}
	}
	return v
}

// failoverWatch runs the fast failover described above until the node
// stops.
func (n *Node) failoverWatch() {
	defer n.wg.Done()
	after := n.cfg.FailoverAfter
	t := time.NewTicker(after / 10)
	defer t.Stop()
	var actedTerm uint64
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		r := n.raft.Load()
		term, leader, ok := n.leaderSilent(r, after)
		if !ok || term == actedTerm {
			continue
		}
		acted, err := n.suspect(r, term, leader, after)
		if err != nil {
			n.logger.Debug("failover watch", "err", err)
		}
		if acted {
			actedTerm = term
		}
	}
}

// leaderSilent reports whether this node is a voting follower whose known
// leader has been silent for at least after.
func (n *Node) leaderSilent(r *raft.Raft, after time.Duration) (term uint64, leader raft.ServerID, ok bool) {
	if r == nil || r.State() != raft.Follower || n.DiskError() != nil {
		return 0, "", false
	}
	_, leader = r.LeaderWithID()
	if leader == "" || time.Since(r.LastContact()) < after {
		return 0, "", false
	}
	for _, s := range n.serversCopy() {
		if string(s.ID) == n.cfg.ID && s.Suffrage == raft.Voter {
			return r.CurrentTerm(), leader, true
		}
	}
	return 0, "", false
}

// suspect asks the other voters and starts an election when a majority
// agrees the leader is silent. It reports whether it started one.
func (n *Node) suspect(r *raft.Raft, term uint64, leader raft.ServerID, after time.Duration) (bool, error) {
	self := n.suspectView()
	views, voters := n.askVoters(leader, after/3)
	agree, freshest := 1, true
	for _, v := range views {
		if v.Term > term || (v.LeaderID != "" && v.LeaderID != string(leader)) {
			return false, nil // a newer term or leader exists: raft will hear of it
		}
		if v.Role == "leader" || v.SilentMs < after.Milliseconds()/2 {
			continue
		}
		agree++
		if fresher(v, self) {
			freshest = false
		}
	}
	if agree < voters/2+1 {
		return false, nil
	}
	if !freshest {
		select {
		case <-n.stop:
			return false, nil
		case <-time.After(after / 2):
		}
		if t, l, ok := n.leaderSilent(r, after+after/2); !ok || t != term || l != leader {
			return false, nil
		}
	}
	silent := time.Since(r.LastContact()).Round(time.Millisecond)
	var resp raft.TimeoutNowResponse
	req := &raft.TimeoutNowRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax,
		ID: []byte(n.cfg.ID), Addr: []byte(n.trans.LocalAddr())}}
	if err := n.trans.TimeoutNow(raft.ServerID(n.cfg.ID), n.trans.LocalAddr(), req, &resp); err != nil {
		return false, fmt.Errorf("start election: %w", err)
	}
	n.failovers.Add(1)
	n.logger.Info("leader silent and a majority agrees: started an election", "leader", leader, "term", term,
		"silent", silent, "agree", agree, "voters", voters)
	return true, nil
}

// LeaderSilence is how long ago this follower last heard from a leader; 0
// on the leader and before raft runs.
func (n *Node) LeaderSilence() time.Duration {
	r := n.raft.Load()
	if r == nil || r.State() == raft.Leader {
		return 0
	}
	return time.Since(r.LastContact())
}

// FailoverElections counts the elections this node's failover watch has
// started.
func (n *Node) FailoverElections() uint64 { return n.failovers.Load() }

// askVoters asks every voter but this node and the leader for its view,
// concurrently, within timeout. It returns the answers and the number of
// voters.
func (n *Node) askVoters(leader raft.ServerID, timeout time.Duration) ([]SuspectView, int) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	servers := n.serversCopy()
	voters := 0
	ch := make(chan SuspectView, len(servers))
	asked := 0
	for _, s := range servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		if string(s.ID) == n.cfg.ID || s.ID == leader {
			continue
		}
		asked++
		go func(addr string) {
			v, err := n.askSuspect(ctx, addr)
			if err != nil {
				v = SuspectView{SilentMs: -1, Role: "unreachable"}
			}
			ch <- v
		}(n.cfg.PeerAddr(s.ID, s.Address))
	}
	views := make([]SuspectView, 0, asked)
	for range asked {
		views = append(views, <-ch)
	}
	return views, voters
}

// askSuspect asks one peer for its SuspectView.
func (n *Node) askSuspect(ctx context.Context, addr string) (SuspectView, error) {
	pc, err := dialPeerConn(ctx, n.mux, addr, n.cfg.Log.MaxEntrySize)
	if err != nil {
		return SuspectView{}, err
	}
	defer pc.Close()
	defer context.AfterFunc(ctx, func() { pc.Close() })()
	var v SuspectView
	return v, pc.ask(opSuspect, &v)
}
