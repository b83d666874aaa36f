package replication

import "github.com/hashicorp/raft"

// Member is one server of the group's configuration.
type Member struct {
	ID       string
	RaftAddr string
	Voter    bool
}

// Members returns the newest configuration this node has seen, from local
// state: it never waits for the network (Stats asks the peers).
func (n *Node) Members() []Member {
	servers := n.serversCopy()
	out := make([]Member, len(servers))
	for i, s := range servers {
		out[i] = Member{ID: string(s.ID), RaftAddr: string(s.Address), Voter: s.Suffrage == raft.Voter}
	}
	return out
}
