package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// LeaderView asks node id, through its API proxy when the group has
// proxies, for GET /v1/leader: its own view of the leader and term, from
// local state (the node asks no peer).
func (g *Group) LeaderView(ctx context.Context, id string) (wire.LeaderView, error) {
	var lv wire.LeaderView
	if _, ok := g.node(id); !ok {
		return lv, fmt.Errorf("cluster: unknown node %q", id)
	}
	return lv, g.getJSON(ctx, id, "/v1/leader", "cluster: leader view", &lv)
}

// NewestLeader asks every running node at once for its leader view, each
// for at most wait, and returns the leader named in the highest term, with
// that term, if the leader itself answered and names itself in that term:
// a node cut off from its peers that still believes it leads (an older
// term) does not count, and neither does a leader the others name but
// which cannot be reached. It returns "" when no leader is confirmed.
func (g *Group) NewestLeader(ctx context.Context, wait time.Duration) (string, uint64) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	up := g.Running()
	views := make([]*wire.LeaderView, len(up))
	var wg sync.WaitGroup
	for i, id := range up {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if lv, err := g.LeaderView(ctx, id); err == nil {
				views[i] = &lv
			}
		}()
	}
	wg.Wait()
	var best wire.LeaderView
	self := map[string]uint64{} // node id -> term in which it names itself
	for _, lv := range views {
		if lv == nil || lv.Leader == "" {
			continue
		}
		if lv.Term > best.Term {
			best = *lv
		}
		if lv.Leader == lv.AnsweredBy {
			self[lv.AnsweredBy] = lv.Term
		}
	}
	if best.Leader == "" || self[best.Leader] != best.Term {
		return "", 0
	}
	return best.Leader, best.Term
}

// WaitNewestLeader polls NewestLeader (each round bounded by wait) for up
// to timeout until it confirms a leader other than exclude ("" for any).
// It fails early when a node has exited on its own.
func (g *Group) WaitNewestLeader(ctx context.Context, exclude string, wait, timeout time.Duration) (string, error) {
	return poll(ctx, timeout, "a confirmed leader", func() (string, bool, error) {
		if err := g.Check(); err != nil {
			return "", false, err
		}
		l, _ := g.NewestLeader(ctx, wait)
		return l, l != "" && l != exclude, nil
	})
}

// Rejoined reports whether node id is back in the group as seen from its
// own state and the leader's, not from the leader's cached reports about
// it (which stay fresh for a while after a node went silent): a leader is
// confirmed (NewestLeader), id names it in the same term, and id's last
// index, from its own status, is within slack entries of the leader's.
func (g *Group) Rejoined(ctx context.Context, id string, slack uint64, wait time.Duration) bool {
	l, term := g.NewestLeader(ctx, wait)
	if l == "" {
		return false
	}
	if l == id {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if lv, err := g.LeaderView(ctx, id); err != nil || lv.Leader != l || lv.Term != term {
		return false
	}
	last := func(n string) (uint64, bool) {
		cs, err := g.Status(ctx, n)
		if err != nil {
			return 0, false
		}
		for _, m := range cs.Nodes {
			if m.ID == n {
				return m.LastIndex, true
			}
		}
		return 0, false
	}
	// The leader first: id's figure, read second, can only be newer.
	li, ok := last(l)
	if !ok {
		return false
	}
	ni, ok := last(id)
	return ok && ni+slack >= li
}

// WaitRejoined waits up to timeout until Rejoined(id) holds and the
// leader reports every node reachable.
func (g *Group) WaitRejoined(ctx context.Context, id string, slack uint64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	_, err := poll(ctx, timeout, id+" to rejoin", func() (struct{}, bool, error) {
		return struct{}{}, g.Rejoined(ctx, id, slack, 500*time.Millisecond), g.Check()
	})
	if err != nil {
		return err
	}
	return g.WaitReachable(ctx, max(time.Until(deadline), time.Second))
}
