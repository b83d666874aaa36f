package service

import (
	"context"
	"sync"
	"time"

	"github.com/ledgermq/ledgermq/replication"
)

// peerBook learns the members' API addresses and progress from their
// status reports, once a second.
type peerBook struct {
	node  *replication.Node
	mu    sync.RWMutex
	addrs map[string]string // node id -> API address
	last  []replication.PeerStats
}

func newPeerBook(selfID string, node *replication.Node) *peerBook {
	return &peerBook{node: node, addrs: map[string]string{selfID: node.Status().APIAddr}}
}

func (p *peerBook) refresh(stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
		p.learn(p.node.Stats(ctx))
		cancel()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// learn records what a status round told of the members.
func (p *peerBook) learn(st replication.Stats) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ps := range st.Peers {
		if ps.Status != nil && ps.Status.APIAddr != "" {
			p.addrs[ps.ID] = ps.Status.APIAddr
		}
	}
	p.last = st.Peers
}

// apiAddr returns a node's API address, "" if not known yet.
func (p *peerBook) apiAddr(id string) string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.addrs[id]
}

// progress returns the last known peer reports.
func (p *peerBook) progress() []replication.PeerStats {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.last
}
