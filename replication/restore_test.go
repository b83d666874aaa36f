package replication

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/commitlog"
)

// TestLaggingFollowerGetsNoHoles: a follower is down while the leader
// writes, snapshots and deletes old segments by retention. When it returns
// it must get a snapshot and end with a contiguous log identical to the
// leader's retained range, not a log with a hole before the snapshot.
func TestLaggingFollowerGetsNoHoles(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{tweak: func(cfg *Config) {
		cfg.Log.Retention = commitlog.Retention{MaxBytes: 256 << 10}
	}})
	l := c.leader(10 * time.Second)
	ctx := context.Background()
	payload := strings.Repeat("x", 300)
	acked := map[string]uint64{}
	// propose gets n proposals acknowledged by whichever node leads; one
	// whose outcome is unknown (a leadership change under a loaded machine)
	// is not retried with the same payload, so acknowledged payloads stay
	// unique.
	attempt := 0
	propose := func(prefix string, n int) {
		pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		for done := 0; done < n; attempt++ {
			data := fmt.Sprintf("%s%d-%s", prefix, attempt, payload)
			idx, ok := c.propose(pctx, data)
			if pctx.Err() != nil {
				t.Fatalf("only %d of %d proposals acknowledged", done, n)
			}
			if ok {
				acked[data] = idx
				done++
			}
		}
	}
	propose("a", 200)
	c.waitConverged(10 * time.Second)
	var lagger string
	for _, n := range c.running() {
		if n != l {
			lagger = n.ID()
			break
		}
	}
	c.kill(lagger)
	propose("b", 3000)
	for _, n := range c.running() {
		if err := n.Snapshot(ctx); err != nil {
			t.Fatalf("snapshot on %s: %v", n.ID(), err)
		}
		if _, err := n.ApplyRetention(time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	l = c.leader(10 * time.Second)
	if l.log.FirstIndex() < 300 {
		t.Fatalf("retention did not delete enough for the test: leader first index %d", l.log.FirstIndex())
	}
	propose("c", 100)
	l = c.leader(10 * time.Second)
	leaderFirst := l.log.FirstIndex()

	n := c.start(lagger)
	c.checkLogs(acked)
	sm := c.sms[lagger]
	if sm.restore.Index == 0 {
		t.Fatalf("%s caught up without installing a snapshot; the test did not exercise restore", lagger)
	}
	if n.log.FirstIndex() > leaderFirst {
		t.Fatalf("%s's log starts at %d, after the leader's first retained index %d", lagger, n.log.FirstIndex(), leaderFirst)
	}
	// Contiguous and identical over the leader's retained range.
	ref := commands(t, l.log)
	got := commands(t, n.log)
	for idx := l.log.FirstIndex(); idx <= l.log.LastIndex(); idx++ {
		if e, ok := got[idx]; !ok || string(e.Data) != string(ref[idx].Data) || e.Term != ref[idx].Term {
			t.Fatalf("%s index %d missing or different (log [%d, %d])", lagger, idx, n.log.FirstIndex(), n.log.LastIndex())
		}
	}
	t.Logf("restored snapshot at %d; %s log [%d, %d], leader [%d, %d]", sm.restore.Index, lagger,
		n.log.FirstIndex(), n.log.LastIndex(), l.log.FirstIndex(), l.log.LastIndex())
}

// TestRetentionKeepsSnapshotEntry: retention may delete up to the newest
// snapshot but never its own entry, so a restart finds it and restores
// without asking peers (a group of one has none to ask).
func TestRetentionKeepsSnapshotEntry(t *testing.T) {
	c := newCluster(t, 1, clusterOpts{tweak: func(cfg *Config) {
		cfg.Log.Retention = commitlog.Retention{MaxBytes: 1}
		cfg.RestoreTimeout = 2 * time.Second
	}})
	l := c.leader(10 * time.Second)
	ctx := context.Background()
	payload := strings.Repeat("y", 20<<10) // about three entries per 64 KiB segment
	for i := 0; i < 30; i++ {
		if _, err := l.Propose(ctx, []byte(payload)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	snap := l.LastSnapshotIndex()
	for i := 0; i < 30; i++ {
		if _, err := l.Propose(ctx, []byte(payload)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.ApplyRetention(time.Now()); err != nil {
		t.Fatal(err)
	}
	// Retention wanted more than the snapshot covered: it took a new one
	// rather than keep 30 entries it was asked to delete, and kept that
	// snapshot's entry.
	if now := l.LastSnapshotIndex(); now <= snap+25 {
		t.Fatalf("retention did not snapshot ahead: snapshot %d, was %d", now, snap)
	}
	snap = l.LastSnapshotIndex()
	if first := l.log.FirstIndex(); first > snap || first < snap-5 {
		t.Fatalf("retention left first index %d; snapshot at %d", first, snap)
	}
	c.kill("n1")
	c.start("n1") // fails (restore timeout) if the snapshot's entry is gone
	c.leader(10 * time.Second)
	if got := c.sms["n1"].restore.Index; got != snap {
		t.Fatalf("restored snapshot %d, want %d", got, snap)
	}
}
