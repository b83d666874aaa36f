package replication

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestSingleNodeGroup(t *testing.T) {
	c := newCluster(t, 1, clusterOpts{})
	l := c.leader(10 * time.Second)
	ctx := context.Background()
	for i := 1; i <= 20; i++ {
		res, err := l.Propose(ctx, []byte(fmt.Sprintf("m%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if res.Response.(int) != i {
			t.Fatalf("proposal %d: state machine result %v", i, res.Response)
		}
	}
	if err := l.ReadBarrier(ctx); err != nil {
		t.Fatal(err)
	}
	// Restart: state comes back from the log (and a snapshot).
	if err := l.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Propose(ctx, []byte("after-snapshot")); err != nil {
		t.Fatal(err)
	}
	c.kill("n1")
	c.start("n1")
	l = c.leader(10 * time.Second)
	if err := l.ReadBarrier(ctx); err != nil {
		t.Fatal(err)
	}
	_, data := c.sms["n1"].state()
	if len(data) != 21 || data[0] != "m1" || data[20] != "after-snapshot" {
		t.Fatalf("state after restart: %d commands %v", len(data), data)
	}
}

// TestProposeRefusesOversizeEntry: data over MaxEntryBytes is refused
// before it reaches raft (it could not be sent to a follower within the
// AppendEntries byte bound), and the node goes on.
func TestProposeRefusesOversizeEntry(t *testing.T) {
	c := newCluster(t, 1, clusterOpts{})
	l := c.leader(10 * time.Second)
	ctx := context.Background()
	if _, err := l.Propose(ctx, make([]byte, l.cfg.MaxEntryBytes+1)); !errors.Is(err, ErrEntryTooLarge) {
		t.Fatalf("oversize proposal: %v, want ErrEntryTooLarge", err)
	}
	if _, err := l.Propose(ctx, make([]byte, l.cfg.MaxEntryBytes)); err != nil {
		t.Fatalf("a proposal of exactly MaxEntryBytes: %v", err)
	}
}

func TestFollowerRejectsProposals(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{inmem: true})
	l := c.leader(10 * time.Second)
	for _, n := range c.running() {
		if n == l {
			continue
		}
		// A follower learns the leader from its first AppendEntries, which
		// may come a moment after the leader is ready.
		deadline := time.Now().Add(5 * time.Second)
		for n.Leader().ID == "" && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		_, err := n.Propose(context.Background(), []byte("x"))
		var nle *NotLeaderError
		if !errors.As(err, &nle) || !errors.Is(err, ErrNotLeader) {
			t.Fatalf("follower propose: %v", err)
		}
		if nle.LeaderID != l.ID() {
			t.Fatalf("follower names leader %q, want %q", nle.LeaderID, l.ID())
		}
		if err := n.ReadBarrier(context.Background()); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("follower read barrier: %v", err)
		}
	}
}

// TestInmemReplicationAndFailover is the fast unit test of the glue over
// raft's in-memory transport.
func TestInmemReplicationAndFailover(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{inmem: true})
	acked := map[string]uint64{}
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		if idx, ok := c.propose(ctx, fmt.Sprintf("a%d", i)); ok {
			acked[fmt.Sprintf("a%d", i)] = idx
		}
	}
	old := c.leader(5 * time.Second)
	c.kill(old.ID())
	for i := 0; i < 50; i++ {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if idx, ok := c.propose(pctx, fmt.Sprintf("b%d", i)); ok {
			acked[fmt.Sprintf("b%d", i)] = idx
		}
		cancel()
	}
	c.start(old.ID())
	c.checkLogs(acked)
	if len(acked) < 90 {
		t.Fatalf("only %d of 100 proposals acknowledged", len(acked))
	}
}

func TestLeaderWatchAndTransfer(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{})
	l := c.leader(10 * time.Second)
	var other *Node
	for _, n := range c.running() {
		if n != l {
			other = n
			break
		}
	}
	ch, stop := other.WatchLeader()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var target *Node
	for _, n := range c.running() {
		if n != l && n != other {
			target = n
		}
	}
	if err := l.TransferLeadership(ctx, target.ID()); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case info := <-ch:
			if info.ID == target.ID() {
				if got := c.leader(5 * time.Second); got != target {
					t.Fatalf("leader is %s after transfer to %s", got.ID(), target.ID())
				}
				if err := target.TransferLeadership(ctx, "nobody"); !errors.Is(err, ErrUnknownPeer) {
					t.Fatalf("transfer to unknown node: %v", err)
				}
				return
			}
		case <-ctx.Done():
			t.Fatal("no leader notification for the transfer target")
		}
	}
}

func TestStats(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{})
	l := c.leader(10 * time.Second)
	for i := 0; i < 10; i++ {
		if _, err := l.Propose(context.Background(), []byte("s")); err != nil {
			t.Fatal(err)
		}
	}
	c.waitConverged(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st := l.Stats(ctx)
	if st.Role != "leader" || st.LeaderID != l.ID() || st.Term == 0 || st.CommitIndex < 10 || len(st.Peers) != 3 {
		t.Fatalf("stats: %+v", st)
	}
	for _, p := range st.Peers {
		if p.Status == nil {
			t.Fatalf("peer %s did not report: %s", p.ID, p.Err)
		}
		if p.Status.LastIndex < st.CommitIndex {
			t.Fatalf("peer %s last index %d below commit %d", p.ID, p.Status.LastIndex, st.CommitIndex)
		}
	}
}

// TestKillLeaderUnderLoad kills the leader while proposers run, restarts
// it, and checks every acknowledged proposal is present once, in the same
// order on every node, and the old leader's uncommitted tail is gone.
func TestKillLeaderUnderLoad(t *testing.T) {
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprintf("nodes=%d", size), func(t *testing.T) {
			c := newCluster(t, size, clusterOpts{})
			c.leader(10 * time.Second)
			acked := runLoad(t, c, 8, 3*time.Second, func(round int) {
				if round == 1 || round == 2 {
					old := c.leader(10 * time.Second)
					c.kill(old.ID())
					c.leader(10 * time.Second)
					c.start(old.ID())
				}
			})
			c.checkLogs(acked)
			t.Logf("%d proposals acknowledged across 2 leader kills", len(acked))
		})
	}
}

// runLoad runs proposers for rounds of d, calling between(round) after
// each of 3 rounds, and returns the acknowledged proposals.
func runLoad(t *testing.T, c *cluster, proposers int, d time.Duration, between func(round int)) map[string]uint64 {
	var mu sync.Mutex
	acked := map[string]uint64{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for p := 0; p < proposers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				data := fmt.Sprintf("p%d-%d", p, i)
				if idx, ok := c.propose(ctx, data); ok {
					mu.Lock()
					acked[data] = idx
					mu.Unlock()
				}
			}
		}()
	}
	for round := 1; round <= 3; round++ {
		time.Sleep(d / 3)
		between(round)
	}
	cancel()
	wg.Wait()
	return acked
}
