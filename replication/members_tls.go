package replication

import (
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// latestServers is the newest configuration: raft's latest, committed or
// not, else (before raft runs or has any) the newest this node stored or
// its Peers.
func (n *Node) latestServers() []raft.Server {
	if r := n.raft.Load(); r != nil {
		if f := r.GetConfiguration(); f.Error() == nil && len(f.Configuration().Servers) > 0 {
			return f.Configuration().Servers
		}
	}
	return n.serversCopy()
}

// isMember reports whether node id may use the Raft port: it is in the
// newest configuration. A node with no configuration at all (started
// without peers, waiting to be added) admits any node of the cluster CA,
// as raft itself takes the first leader that contacts it.
func (n *Node) isMember(id string) bool {
	servers := n.latestServers()
	if len(servers) == 0 {
		return true
	}
	return slices.ContainsFunc(servers, func(s raft.Server) bool { return string(s.ID) == id })
}

// memberAddr is member id's Raft address in the newest configuration.
func (n *Node) memberAddr(id string) (string, bool) {
	for _, s := range n.latestServers() {
		if string(s.ID) == id {
			return string(s.Address), true
		}
	}
	return "", false
}

// memberAt is the member whose Raft (or peer-protocol) address is addr.
func (n *Node) memberAt(addr string) (string, bool) {
	servers := n.latestServers()
	for _, s := range servers {
		if string(s.Address) == addr {
			return string(s.ID), true
		}
	}
	for _, s := range servers {
		if n.cfg.PeerAddr(s.ID, s.Address) == addr {
			return string(s.ID), true
		}
	}
	for _, p := range n.cfg.Peers {
		if p.RaftAddr == addr {
			return p.ID, true
		}
	}
	return "", false
}

// watchMembers closes the Raft-port connections of nodes that leave the
// configuration, within a tenth of a second of this node seeing the
// change.
func (n *Node) watchMembers() {
	defer n.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	last := ""
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		var ids []string
		for _, s := range n.latestServers() {
			ids = append(ids, string(s.ID))
		}
		slices.Sort(ids)
		if sig := strings.Join(ids, ","); sig != last {
			last = sig
			n.mux.auth.revoke()
			if n.authTr != nil {
				n.authTr.revoke()
			}
		}
	}
}
