package service

import (
	"context"
	"sync"
	"time"

	"github.com/ledgermq/ledgermq/replication"
)

// Peer reports are collected in the background and served from this
// cache, so that nothing a client asks waits for the network: a status
// round asks every member at once and gives up on a silent one after
// peerTimeout; a report older than peerStale marks its member unreachable.
const (
	peerRefresh = 500 * time.Millisecond
	peerTimeout = 800 * time.Millisecond
	peerStale   = 2 * time.Second
)

// peerReport is the newest status report of one member.
type peerReport struct {
	status replication.PeerStatus
	at     time.Time // when it arrived; zero: never
	err    string    // why the latest round got no report, "" if it did
}

// peerBook learns the members' API addresses and progress from their
// status reports.
type peerBook struct {
	node    *replication.Node
	clock   func() time.Time
	mu      sync.RWMutex
	addrs   map[string]string // node id -> API address
	kafka   map[string]string // node id -> advertised Kafka address
	reports map[string]*peerReport
}

func newPeerBook(selfID string, node *replication.Node, clock func() time.Time) *peerBook {
	self := node.Status()
	return &peerBook{node: node, clock: clock, addrs: map[string]string{selfID: self.APIAddr},
		kafka:   map[string]string{selfID: self.KafkaAddr},
		reports: map[string]*peerReport{}}
}

func (p *peerBook) refresh(stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	t := time.NewTicker(peerRefresh)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
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
	now := p.clock()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ps := range st.Peers {
		r := p.reports[ps.ID]
		if r == nil {
			r = &peerReport{}
			p.reports[ps.ID] = r
		}
		if ps.Status == nil {
			r.err = ps.Err
			continue
		}
		r.status, r.at, r.err = *ps.Status, now, ""
		if ps.Status.APIAddr != "" {
			p.addrs[ps.ID] = ps.Status.APIAddr
		}
		if ps.Status.KafkaAddr != "" {
			p.kafka[ps.ID] = ps.Status.KafkaAddr
		}
	}
}

// apiAddr returns a node's API address, "" if not known yet.
func (p *peerBook) apiAddr(id string) string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.addrs[id]
}

// kafkaAddr returns a node's advertised Kafka address, "" if not known.
func (p *peerBook) kafkaAddr(id string) string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.kafka[id]
}

// report returns a member's newest report (ok false if none is fresh),
// its age and the latest failure.
func (p *peerBook) report(id string) (st replication.PeerStatus, ok bool, age time.Duration, heard bool, err string) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	r := p.reports[id]
	if r == nil {
		return st, false, 0, false, "no status round has reached it yet"
	}
	if r.at.IsZero() {
		return st, false, 0, false, r.err
	}
	age = p.clock().Sub(r.at)
	return r.status, age <= peerStale, age, true, r.err
}

// progress returns the members' fresh reports in the shape of
// replication.Stats (Status nil for a member with none), for metrics.
func (p *peerBook) progress(members []replication.Member) []replication.PeerStats {
	out := make([]replication.PeerStats, len(members))
	for i, m := range members {
		out[i] = replication.PeerStats{ID: m.ID, RaftAddr: m.RaftAddr, Voter: m.Voter}
		if st, ok, _, _, err := p.report(m.ID); ok {
			out[i].Status = &st
		} else {
			out[i].Err = err
		}
	}
	return out
}
