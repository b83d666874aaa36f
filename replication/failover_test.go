package replication

import (
	"fmt"
	"testing"
	"time"
)

// slowRaftTimer makes raft's own follower timer too slow to win the race
// with the failover watch (it fires after 1-2 s; heartbeats go every 100-200 ms): an election sooner than it can only come from
// the watch.
func slowRaftTimer(after time.Duration) func(*Config) {
	return func(c *Config) {
		c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = time.Second, time.Second, time.Second
		c.FailoverAfter = after
	}
}

// TestFailoverWatchElectsAfterLeaderDies: with raft's timer slowed to 3 s,
// the watch elects a new leader once the old one is gone, and says so in
// its counter.
func TestFailoverWatchElectsAfterLeaderDies(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{tweak: slowRaftTimer(400 * time.Millisecond)})
	old := c.leader(10 * time.Second)
	if _, ok := c.propose(t.Context(), "before"); !ok {
		t.Fatal("propose before the kill failed")
	}
	start := time.Now()
	c.kill(old.ID())
	var next *Node
	for next == nil || next.ID() == old.ID() {
		next = c.leader(10 * time.Second)
	}
	took := time.Since(start)
	if got := next.FailoverElections(); got != 1 {
		t.Fatalf("new leader %s started %d failover elections, want 1 (elected after %v)", next.ID(), got, took)
	}
	t.Logf("leader %s killed; %s elected by the failover watch after %v (raft's own timer: 1-2 s)", old.ID(), next.ID(), took.Round(time.Millisecond))
	if _, ok := c.propose(t.Context(), "after"); !ok {
		t.Fatal("propose after the failover failed")
	}
}

// TestFailoverWatchNeedsMajority: a follower cut off from the leader alone
// (the other follower still hears it) must not depose it: its peer says
// the leader is alive.
func TestFailoverWatchNeedsMajority(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{tweak: slowRaftTimer(400 * time.Millisecond)})
	l := c.leader(10 * time.Second)
	var lonely *Node
	for _, n := range c.running() {
		if n != l {
			lonely = n
			break
		}
	}
	term := l.Leader().Term
	c.net.cut(l.ID(), lonely.ID())
	time.Sleep(1500 * time.Millisecond) // almost four times the watch's bound, less than raft's timer
	if !l.IsLeader() || l.Leader().Term != term {
		t.Fatalf("leader %s lost its leadership (term %d -> %d) though only %s was cut off", l.ID(), term, l.Leader().Term, lonely.ID())
	}
	if got := lonely.FailoverElections(); got != 0 {
		t.Fatalf("%s started %d failover elections without a majority", lonely.ID(), got)
	}
	if _, ok := c.propose(t.Context(), "still"); !ok {
		t.Fatal("propose while one follower is cut off failed")
	}
}

// TestCaughtUpAfterRestart: a restarted follower is not caught up until it
// has heard from the leader and applied what the leader had committed;
// then it is, for good.
func TestCaughtUpAfterRestart(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{})
	l := c.leader(10 * time.Second)
	var last uint64
	for i := range 20 {
		idx, ok := c.propose(t.Context(), fmt.Sprint("m", i))
		if !ok {
			t.Fatal("propose failed")
		}
		last = idx
	}
	waitFor(t, 5*time.Second, l.CaughtUp)
	var f string
	for _, n := range c.running() {
		if n != l {
			f = n.ID()
		}
	}
	c.kill(f)
	c.net.isolate(f, c.ids)
	n := c.start(f)
	time.Sleep(time.Second) // several heartbeat timeouts without a leader
	if n.CaughtUp() {
		t.Fatalf("%s is caught up while cut off since its restart (applied %d of %d)", f, n.AppliedIndex(), last)
	}
	c.net.heal()
	waitFor(t, 20*time.Second, n.CaughtUp)
	if n.AppliedIndex() < last {
		t.Fatalf("%s caught up with applied %d < %d committed before its restart", f, n.AppliedIndex(), last)
	}
	c.net.isolate(f, c.ids)
	time.Sleep(time.Second)
	if !n.CaughtUp() {
		t.Fatal("caught up did not stay true once cut off again")
	}
	c.net.heal()
}
