package replication

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/commitlog"
)

// TestLogStoreLatchesDiskFailure: the first I/O failure latches the store,
// which refuses every later write even once the disk answers again, and
// tells its owner once; contract errors do not latch.
func TestLogStoreLatchesDiskFailure(t *testing.T) {
	fsys := &commitlog.FaultFS{}
	o := commitlog.DefaultOptions()
	o.FS = fsys
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	l, err := commitlog.Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := NewLogStore(l, o.Logger)
	var told []error
	s.onFail = func(err error) { told = append(told, err) }
	if err := s.StoreLogs(raftLogs(1, 10, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(raftLogs(12, 12, 1)); !errors.Is(err, ErrLogGap) || s.Failure() != nil {
		t.Fatalf("gap: %v, Failure %v; want ErrLogGap and no latch", err, s.Failure())
	}
	fsys.FailWrite(syscall.ENOSPC)
	err = s.StoreLogs(raftLogs(11, 20, 1))
	if !errors.Is(err, ErrDiskFailed) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("StoreLogs on a full disk = %v, want ErrDiskFailed wrapping ENOSPC", err)
	}
	fsys.FailWrite(nil)
	if err := s.StoreLogs(raftLogs(11, 20, 1)); !errors.Is(err, ErrDiskFailed) {
		t.Fatalf("StoreLogs after the failure = %v, want ErrDiskFailed", err)
	}
	if err := s.DeleteRange(5, 10); !errors.Is(err, ErrDiskFailed) {
		t.Fatalf("truncation after the failure = %v, want ErrDiskFailed", err)
	}
	if last, _ := s.LastIndex(); last != 10 {
		t.Fatalf("LastIndex = %d, want 10", last)
	}
	if len(told) != 1 || !errors.Is(told[0], syscall.ENOSPC) || !errors.Is(s.Failure(), syscall.ENOSPC) {
		t.Fatalf("owner told %v, Failure %v; want one ENOSPC", told, s.Failure())
	}
}

// diskCluster is a 3-node group over TCP whose nodes' commit logs can be
// made to fail.
func diskCluster(t *testing.T) (*cluster, map[string]*commitlog.FaultFS) {
	fss := map[string]*commitlog.FaultFS{}
	c := newCluster(t, 3, clusterOpts{tweak: func(cfg *Config) {
		f := &commitlog.FaultFS{}
		fss[cfg.ID] = f
		cfg.Log.FS = f
	}})
	return c, fss
}

// diskLoad runs proposers against whichever node leads until ctx ends.
// Outcome-unknown answers are not acknowledgements and are not retried.
type diskLoad struct {
	mu   sync.Mutex
	acks []ack
	wg   sync.WaitGroup
}

func startDiskLoad(ctx context.Context, c *cluster, proposers int) *diskLoad {
	d := &diskLoad{}
	for p := range proposers {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				data := "d" + strconv.Itoa(p) + "-" + strconv.Itoa(i)
				if a, ok := c.proposeAck(ctx, data); ok {
					d.mu.Lock()
					d.acks = append(d.acks, a)
					d.mu.Unlock()
				}
			}
		}()
	}
	return d
}

// wait stops the load (its ctx must have ended) and returns the acks.
func (d *diskLoad) wait() []ack {
	d.wg.Wait()
	return d.acks
}

func (d *diskLoad) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.acks)
}

func ackMap(acks []ack) map[string]uint64 {
	m := map[string]uint64{}
	for _, a := range acks {
		m[a.data] = a.index
	}
	return m
}

// pollUntil polls cond every 5 ms until it holds or d passes.
func pollUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// checkFailedNode checks what a node whose disk failed reports and does.
func checkFailedNode(t *testing.T, n *Node, cause error) {
	t.Helper()
	if err := n.DiskError(); !errors.Is(err, ErrDiskFailed) || !errors.Is(err, cause) {
		t.Fatalf("%s: DiskError() = %v, want ErrDiskFailed wrapping %v", n.ID(), err, cause)
	}
	// DiskError is set first; raft stops right after it (Shutdown waits for
	// raft's goroutines, which can take seconds on a loaded machine).
	start := time.Now()
	pollUntil(20*time.Second, func() bool { return n.Status().Role == "shutdown" })
	t.Logf("%s: raft stopped %v after the check began", n.ID(), time.Since(start).Round(time.Millisecond))
	st := n.Status()
	if st.DiskError == "" || st.Role != "shutdown" {
		t.Fatalf("%s: status role %q, disk error %q; want shutdown with the error", n.ID(), st.Role, st.DiskError)
	}
	if n.IsLeader() {
		t.Fatalf("%s leads with a failed disk", n.ID())
	}
	_, err := n.Propose(context.Background(), []byte("refused"))
	if !errors.Is(err, ErrNotLeader) || !errors.Is(err, ErrDiskFailed) {
		t.Fatalf("%s: Propose = %v, want ErrNotLeader and ErrDiskFailed (refused, not applied)", n.ID(), err)
	}
}

// restartHealed stops a failed node, heals its disk and starts it again: a
// restart re-verifies the log, and the node rejoins as a follower.
func restartHealed(c *cluster, fsys *commitlog.FaultFS, id string) {
	c.kill(id)
	fsys.FailSync(nil)
	fsys.FailWrite(nil)
	c.start(id)
}

// TestLeaderDiskFailureFailsOver: a leader whose fsync fails (EIO) or
// whose writes fail (ENOSPC) stops leading, another node takes over and
// writes go on there; the failed node reports why and refuses proposals;
// after a restart on a healed disk every acknowledged entry is in every
// log exactly once.
func TestLeaderDiskFailureFailsOver(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cause error
		fail  func(*commitlog.FaultFS)
	}{
		{"fsync-EIO", syscall.EIO, func(f *commitlog.FaultFS) { f.FailSync(syscall.EIO) }},
		{"write-ENOSPC", syscall.ENOSPC, func(f *commitlog.FaultFS) { f.FailWrite(syscall.ENOSPC) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, fss := diskCluster(t)
			old := c.leader(10 * time.Second)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			load := startDiskLoad(ctx, c, 6)
			if !pollUntil(10*time.Second, func() bool { return load.count() >= 50 }) {
				t.Fatal("no load acknowledged before the fault")
			}

			t0 := time.Now()
			tc.fail(fss[old.ID()])
			var next *Node
			if !pollUntil(10*time.Second, func() bool {
				for _, n := range c.running() {
					if n != old && n.IsLeader() {
						next = n
						return true
					}
				}
				return false
			}) {
				t.Fatalf("no other node leads 10 s after %s's disk failed", old.ID())
			}
			failover := time.Since(t0)
			if !pollUntil(10*time.Second, func() bool {
				load.mu.Lock()
				defer load.mu.Unlock()
				return len(load.acks) > 0 && load.acks[len(load.acks)-1].node == next.ID()
			}) {
				t.Fatalf("no write acknowledged by the new leader %s", next.ID())
			}
			time.Sleep(500 * time.Millisecond) // writes go on there
			cancel()
			acks := load.wait()

			var firstNew time.Time
			after := 0
			for _, a := range acks {
				if a.node != old.ID() {
					after++
					if firstNew.IsZero() || a.at.Before(firstNew) {
						firstNew = a.at
					}
				}
			}
			t.Logf("%s on leader %s: %s leads after %v; first write acknowledged by it after %v; %d acks, %d by the new leader",
				tc.name, old.ID(), next.ID(), failover.Round(time.Millisecond), firstNew.Sub(t0).Round(time.Millisecond), len(acks), after)
			checkFailedNode(t, old, tc.cause)
			if s, w := fss[old.ID()].Failed(); s+w == 0 {
				t.Fatal("no fault was injected")
			}

			restartHealed(c, fss[old.ID()], old.ID())
			c.checkLogs(ackMap(acks))
		})
	}
}

// TestFollowerDiskFailure: a follower whose disk fails stops raft; the
// other two go on committing. Then the leader dies: one healthy node and
// one failed one are not a majority of three, so nothing may commit and no
// node may lead (a node with a failed disk must not vote a leader in whose
// entries it cannot store). When the leader comes back the two healthy
// nodes elect a leader and writes resume, with nothing acknowledged lost.
func TestFollowerDiskFailure(t *testing.T) {
	c, fss := diskCluster(t)
	leader := c.leader(10 * time.Second)
	var failed, healthy *Node
	for _, n := range c.running() {
		if n != leader {
			if failed == nil {
				failed = n
			} else {
				healthy = n
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	load := startDiskLoad(ctx, c, 6)
	if !pollUntil(10*time.Second, func() bool { return load.count() >= 50 }) {
		t.Fatal("no load acknowledged before the fault")
	}

	fss[failed.ID()].FailSync(syscall.EIO)
	if !pollUntil(10*time.Second, func() bool { return failed.DiskError() != nil }) {
		t.Fatalf("follower %s did not notice its failing disk", failed.ID())
	}
	checkFailedNode(t, failed, syscall.EIO)
	before := load.count()
	if !pollUntil(10*time.Second, func() bool { return load.count() >= before+50 }) {
		t.Fatalf("the group stopped committing when follower %s's disk failed (%d acks)", failed.ID(), load.count()-before)
	}
	t.Logf("follower %s failed; %d more writes committed by %s and %s", failed.ID(), load.count()-before, leader.ID(), healthy.ID())

	// The leader dies: nothing can commit, and nobody may lead.
	failedTerm := failed.Status().Term
	c.kill(leader.ID())
	before = load.count()
	quiet := 3 * time.Second
	deadline := time.Now().Add(quiet)
	for time.Now().Before(deadline) {
		if healthy.IsLeader() {
			t.Fatalf("%s leads without a majority: %s has a failed disk and %s is dead", healthy.ID(), failed.ID(), leader.ID())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := load.count() - before; n != 0 {
		t.Fatalf("%d writes acknowledged with one node alive and healthy of three", n)
	}
	if got := failed.Status().Term; got != failedTerm {
		t.Fatalf("the failed node's term moved from %d to %d: it still takes part in elections", failedTerm, got)
	}
	t.Logf("leader %s killed: no leader and no write for %v (%s campaigns at term %d)", leader.ID(), quiet, healthy.ID(), healthy.Status().Term)

	// The leader returns: the two healthy nodes form a majority again.
	t1 := time.Now()
	c.start(leader.ID())
	c.leader(10 * time.Second)
	before = load.count()
	if !pollUntil(10*time.Second, func() bool { return load.count() > before }) {
		t.Fatal("writes did not resume after the leader came back")
	}
	t.Logf("writes resumed %v after %s restarted", time.Since(t1).Round(time.Millisecond), leader.ID())
	time.Sleep(300 * time.Millisecond)
	cancel()
	acks := load.wait()

	restartHealed(c, fss[failed.ID()], failed.ID())
	c.checkLogs(ackMap(acks))
}
