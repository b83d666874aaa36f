package replication

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The leader's view of its followers' match index and last contact: all
// caught up after a burst of writes, the killed one's contact ageing and
// its match index frozen, and nothing on a follower.
func TestFollowerProgress(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{})
	l := c.leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var last uint64
	for i := range 50 {
		idx, ok := c.propose(ctx, fmt.Sprintf("m%d", i))
		if !ok {
			t.Fatalf("proposal %d not acknowledged", i)
		}
		last = idx
	}
	caughtUp := func() ([]FollowerProgress, bool) {
		fs := l.Followers()
		if len(fs) != 2 {
			return fs, false
		}
		for _, f := range fs {
			if f.MatchIndex < last || time.Since(f.LastContact) > 2*time.Second {
				return fs, false
			}
		}
		return fs, true
	}
	waitFor(t, 5*time.Second, func() bool { _, ok := caughtUp(); return ok })
	fs, _ := caughtUp()
	for _, f := range fs {
		if f.ID == l.ID() || f.MatchIndex > l.Status().LastIndex {
			t.Fatalf("follower progress %+v with leader %s at last index %d", f, l.ID(), l.Status().LastIndex)
		}
	}
	for _, n := range c.running() {
		if n != l && n.Followers() != nil {
			t.Fatalf("follower %s reports follower progress %+v", n.ID(), n.Followers())
		}
		if n != l && n.LeaderLastContact().IsZero() {
			t.Fatalf("follower %s has no leader contact", n.ID())
		}
	}
	if !l.LeaderLastContact().IsZero() {
		t.Fatal("the leader reports a leader contact")
	}

	// Kill one follower: its match index stays, its last contact ages.
	victim := fs[0].ID
	c.kill(victim)
	for i := range 10 {
		if _, ok := c.propose(ctx, fmt.Sprintf("after%d", i)); !ok {
			t.Fatalf("proposal after kill %d not acknowledged", i)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	for _, f := range l.Followers() {
		age := time.Since(f.LastContact)
		switch {
		case f.ID == victim && (f.MatchIndex != fs[0].MatchIndex || age < time.Second):
			t.Fatalf("killed follower %+v (age %v), was %+v", f, age, fs[0])
		case f.ID != victim && (f.MatchIndex <= fs[0].MatchIndex || age > time.Second):
			t.Fatalf("live follower %+v (age %v) did not advance past %d", f, age, fs[0].MatchIndex)
		}
	}

	// A new leader that has never heard from the dead follower still lists
	// it: match index 0, no contact.
	var other string
	for _, n := range c.running() {
		if n != l {
			other = n.ID()
		}
	}
	tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer tcancel()
	if err := l.TransferLeadership(tctx, other); err != nil {
		t.Fatalf("transfer to %s: %v", other, err)
	}
	nl := c.node(other)
	waitFor(t, 5*time.Second, func() bool { return nl.IsLeader() && len(nl.Followers()) == 2 })
	for _, f := range nl.Followers() {
		switch f.ID {
		case victim:
			if f.MatchIndex != 0 || !f.LastContact.IsZero() {
				t.Fatalf("the dead follower under the new leader: %+v", f)
			}
		case l.ID():
		default:
			t.Fatalf("unexpected follower %+v (leader %s)", f, other)
		}
	}
}
