package replication

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ledgermq/ledgermq/commitlog"
	"github.com/ledgermq/ledgermq/internal/testnet"
)

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("LEDGERMQ_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// cluster runs a group of Nodes in this process over real TCP (or raft's
// in-memory transport) with real files.
type cluster struct {
	t      testing.TB
	mu     sync.Mutex
	cfgs   map[string]Config
	nodes  map[string]*Node
	sms    map[string]*testSM
	ids    []string
	net    *partitionNet
	inmem  map[string]*raft.InmemTransport
	tweak  func(*Config)
	closed bool
}

type clusterOpts struct {
	inmem bool
	tweak func(*Config)
}

func newCluster(t testing.TB, n int, o clusterOpts) *cluster {
	t.Helper()
	addrs := testnet.FreeAddrs(t, n)
	c := &cluster{t: t, cfgs: map[string]Config{}, nodes: map[string]*Node{}, sms: map[string]*testSM{},
		net: newPartitionNet(), tweak: o.tweak}
	var peers []Peer
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("n%d", i+1)
		c.ids = append(c.ids, id)
		peers = append(peers, Peer{ID: id, RaftAddr: addrs[i]})
	}
	var peerAddr func(raft.ServerID, raft.ServerAddress) string
	if o.inmem {
		c.inmem = map[string]*raft.InmemTransport{}
		// Raft uses in-memory addresses equal to the ids; the peer protocol
		// listens on the reserved TCP ports.
		byID := map[raft.ServerID]string{}
		for i, id := range c.ids {
			byID[raft.ServerID(id)] = addrs[i]
			peers[i].RaftAddr = id
		}
		peerAddr = func(id raft.ServerID, _ raft.ServerAddress) string { return byID[id] }
	}
	for i, id := range c.ids {
		cfg := DefaultConfig()
		cfg.ID = id
		cfg.Dir = t.TempDir()
		cfg.RaftAddr = addrs[i]
		cfg.Peers = peers
		cfg.Logger = testLogger(t).With("test_node", id)
		cfg.Log.SegmentSize = 64 << 10
		cfg.RetentionInterval = 0
		cfg.RestoreTimeout = 20 * time.Second
		cfg.PeerAddr = peerAddr
		cfg.Dialer = c.net.dialer(id)
		if o.tweak != nil {
			o.tweak(&cfg)
		}
		c.cfgs[id] = cfg
		c.sms[id] = &testSM{}
	}
	c.registerAddrs()
	for _, id := range c.ids {
		c.start(id)
	}
	t.Cleanup(c.close)
	return c
}

func (c *cluster) start(id string) *Node {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg := c.cfgs[id]
	if c.inmem != nil {
		_, tr := raft.NewInmemTransport(raft.ServerAddress(id))
		for oid, other := range c.inmem {
			tr.Connect(raft.ServerAddress(oid), other)
			other.Connect(raft.ServerAddress(id), tr)
		}
		c.inmem[id] = tr
		cfg.Transport = tr
	}
	sm := &testSM{}
	c.sms[id] = sm
	n, err := Open(cfg, sm)
	if err != nil {
		c.t.Fatalf("start %s: %v", id, err)
	}
	c.nodes[id] = n
	return n
}

// kill stops a node without a leadership hand-over, as a crash would.
func (c *cluster) kill(id string) {
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	if c.inmem != nil {
		if tr := c.inmem[id]; tr != nil {
			for _, other := range c.inmem {
				other.Disconnect(raft.ServerAddress(id))
			}
			tr.DisconnectAll()
			delete(c.inmem, id)
		}
	}
	c.mu.Unlock()
	if n != nil {
		n.Stop()
	}
}

func (c *cluster) node(id string) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

func (c *cluster) running() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Node
	for _, id := range c.ids {
		if n := c.nodes[id]; n != nil {
			out = append(out, n)
		}
	}
	return out
}

func (c *cluster) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	nodes := c.nodes
	c.nodes = map[string]*Node{}
	c.mu.Unlock()
	for _, n := range nodes {
		n.Stop()
	}
}

// leader waits for a ready leader among the running nodes.
func (c *cluster) leader(timeout time.Duration) *Node {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, n := range c.running() {
			if n.IsLeader() {
				return n
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatalf("no leader within %v", timeout)
	return nil
}

// propose sends data to whichever node is leader, retrying through
// elections, and reports whether it was acknowledged.
func (c *cluster) propose(ctx context.Context, data string) (uint64, bool) {
	a, ok := c.proposeAck(ctx, data)
	return a.index, ok
}

// ack is one acknowledged proposal: where, when and by whom.
type ack struct {
	data  string
	index uint64
	node  string
	at    time.Time
}

// proposeAck is propose, saying which node acknowledged it and when.
func (c *cluster) proposeAck(ctx context.Context, data string) (ack, bool) {
	for ctx.Err() == nil {
		for _, n := range c.running() {
			if !n.IsLeader() {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			res, err := n.Propose(pctx, []byte(data))
			cancel()
			if err == nil {
				return ack{data: data, index: res.Index, node: n.ID(), at: time.Now()}, true
			}
			if errors.Is(err, ErrLeadershipLost) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrClosed) {
				// Outcome unknown: not acknowledged, so not retried (a retry
				// could duplicate); the checks allow it to be present.
				return ack{}, false
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return ack{}, false
}

// commands returns the command payloads in a node's log, by index.
func commands(t testing.TB, l *commitlog.Log) map[uint64]commitlog.Entry {
	t.Helper()
	out := map[uint64]commitlog.Entry{}
	for i := l.FirstIndex(); i <= l.LastIndex(); {
		ents, err := l.ReadRange(i, 1<<20)
		if err != nil {
			t.Fatalf("read log at %d: %v", i, err)
		}
		for _, e := range ents {
			out[e.Index] = e
		}
		i += uint64(len(ents))
	}
	return out
}

// waitConverged waits until every running node has applied the leader's
// commit index.
func (c *cluster) waitConverged(timeout time.Duration) *Node {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		l := c.leader(time.Until(deadline) + time.Second)
		commit := l.raft.Load().CommitIndex()
		ok := true
		for _, n := range c.running() {
			if applied := n.AppliedIndex(); n.log.LastIndex() < commit || (applied < commit && !n.onlyInternalBetween(applied, commit)) {
				ok = false
			}
		}
		if ok {
			return l
		}
		if time.Now().After(deadline) {
			for _, n := range c.running() {
				c.t.Logf("%s: applied %d last %d (leader commit %d)", n.ID(), n.AppliedIndex(), n.log.LastIndex(), commit)
			}
			c.t.Fatalf("nodes did not converge within %v", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkLogs verifies that every index present on two running nodes holds
// the same term, type and payload, and that every acknowledged payload is
// in the leader's log exactly once, at its acknowledged index.
func (c *cluster) checkLogs(acked map[string]uint64) {
	c.t.Helper()
	leader := c.waitConverged(30 * time.Second)
	ref := commands(c.t, leader.log)
	for _, n := range c.running() {
		if n == leader {
			continue
		}
		got := commands(c.t, n.log)
		commit := leader.raft.Load().CommitIndex()
		for idx, e := range got {
			r, ok := ref[idx]
			if !ok {
				continue
			}
			if r.Term != e.Term || r.Type != e.Type || string(r.Data) != string(e.Data) {
				c.t.Fatalf("index %d differs: %s has term %d %q, leader %s has term %d %q", idx, n.ID(), e.Term, e.Data, leader.ID(), r.Term, r.Data)
			}
		}
		// A follower holds everything committed that the leader retains.
		for idx := max(leader.log.FirstIndex(), n.log.FirstIndex()); idx <= commit; idx++ {
			if _, ok := got[idx]; !ok {
				c.t.Fatalf("%s lacks committed index %d (its log is [%d, %d])", n.ID(), idx, n.log.FirstIndex(), n.log.LastIndex())
			}
		}
	}
	count := map[string]int{}
	for _, e := range ref {
		if raft.LogType(e.Type) == raft.LogCommand {
			count[string(e.Data)]++
		}
	}
	for data, idx := range acked {
		if idx < leader.log.FirstIndex() {
			continue // deleted by retention
		}
		e, ok := ref[idx]
		if !ok || string(e.Data) != data {
			c.t.Fatalf("acknowledged %q at index %d is not there (found %q)", data, idx, e.Data)
		}
		if count[data] != 1 {
			c.t.Fatalf("acknowledged %q appears %d times", data, count[data])
		}
	}
	// State machines agree with the log: same commands in the same order.
	// An entry the leader committed after waitConverged looked (a proposal
	// still in flight when the load stopped) may reach the followers'
	// state machines a moment later: wait for the counts to meet.
	want, _ := c.sms[leader.ID()].state()
	for _, n := range c.running() {
		got, _ := c.sms[n.ID()].state()
		for deadline := time.Now().Add(10 * time.Second); len(got) != len(want) && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
			want, _ = c.sms[leader.ID()].state()
			got, _ = c.sms[n.ID()].state()
		}
		if len(got) != len(want) {
			c.t.Fatalf("%s applied %d commands, leader %d", n.ID(), len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				c.t.Fatalf("%s applied index %d as command %d, leader %d", n.ID(), got[i], i, want[i])
			}
		}
	}
}

// partitionNet is a fault-injecting Dialer: it refuses connections between
// partitioned nodes and cuts the ones already open.
type partitionNet struct {
	mu      sync.Mutex
	blocked map[[2]string]bool // {from node id, to address}
	conns   map[net.Conn][2]string
	addrs   map[string]string // address -> node id
}

func newPartitionNet() *partitionNet {
	return &partitionNet{blocked: map[[2]string]bool{}, conns: map[net.Conn][2]string{}, addrs: map[string]string{}}
}

func (p *partitionNet) dialer(from string) Dialer {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		p.mu.Lock()
		to := p.addrs[addr]
		if p.blocked[[2]string{from, to}] {
			p.mu.Unlock()
			return nil, fmt.Errorf("partitioned: %s -> %s", from, to)
		}
		p.mu.Unlock()
		c, err := DefaultDialer(ctx, addr)
		if err != nil {
			return nil, err
		}
		p.mu.Lock()
		p.conns[c] = [2]string{from, to}
		p.mu.Unlock()
		return &trackedConn{Conn: c, p: p}, nil
	}
}

type trackedConn struct {
	net.Conn
	p *partitionNet
}

func (c *trackedConn) Close() error {
	c.p.mu.Lock()
	delete(c.p.conns, c.Conn)
	c.p.mu.Unlock()
	return c.Conn.Close()
}

// isolate cuts id off from every other node; heal restores everything.
func (p *partitionNet) isolate(id string, others []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, o := range others {
		if o == id {
			continue
		}
		p.blocked[[2]string{id, o}] = true
		p.blocked[[2]string{o, id}] = true
	}
	for c, k := range p.conns {
		if k[0] == id || k[1] == id {
			c.Close()
			delete(p.conns, c)
		}
	}
}

// cut cuts the link between a and b in both directions, leaving their
// links to others alone.
func (p *partitionNet) cut(a, b string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked[[2]string{a, b}] = true
	p.blocked[[2]string{b, a}] = true
	for c, k := range p.conns {
		if k == [2]string{a, b} || k == [2]string{b, a} {
			c.Close()
			delete(p.conns, c)
		}
	}
}

func (p *partitionNet) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = map[[2]string]bool{}
}

func (c *cluster) registerAddrs() {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	for id, cfg := range c.cfgs {
		c.net.addrs[cfg.RaftAddr] = id
	}
}
