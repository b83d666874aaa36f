package cluster

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// Leader asks the running nodes in id order for the cluster status and
// returns the leader named by the first answer that also gives that node
// the role "leader", if it is a running node of the group; "" if none.
func (g *Group) Leader(ctx context.Context) string {
	up := g.Running()
	for _, id := range up {
		cs, err := g.Status(ctx, id)
		if err != nil || cs.Leader == "" {
			continue
		}
		for _, n := range cs.Nodes {
			if n.ID == cs.Leader && n.Role == "leader" && slices.Contains(up, cs.Leader) {
				return cs.Leader
			}
		}
	}
	return ""
}

// WaitLeader waits up to timeout for a leader other than exclude ("" for
// any). It fails early when a node has exited on its own.
func (g *Group) WaitLeader(ctx context.Context, exclude string, timeout time.Duration) (string, error) {
	return poll(ctx, timeout, "a leader", func() (string, bool, error) {
		if err := g.Check(); err != nil {
			return "", false, err
		}
		l := g.Leader(ctx)
		return l, l != "" && l != exclude, nil
	})
}

// KillLeader waits up to timeout for a leader, SIGKILLs it and returns its
// id once the process is gone.
func (g *Group) KillLeader(ctx context.Context, timeout time.Duration) (string, error) {
	l, err := g.WaitLeader(ctx, "", timeout)
	if err != nil {
		return "", err
	}
	g.Kill(l)
	return l, nil
}

// WaitReachable waits until every node runs and the leader reports every
// node reachable, so that a node that crashed while starting is noticed.
func (g *Group) WaitReachable(ctx context.Context, timeout time.Duration) error {
	_, err := poll(ctx, timeout, "every node reachable", func() (struct{}, bool, error) {
		if err := g.Check(); err != nil {
			return struct{}{}, false, err
		}
		if up := g.Running(); len(up) < len(g.nodes) {
			return struct{}{}, false, fmt.Errorf("cluster: %d of %d brokers running", len(up), len(g.nodes))
		}
		l := g.Leader(ctx)
		if l == "" {
			return struct{}{}, false, nil
		}
		cs, err := g.Status(ctx, l)
		ok := err == nil && len(cs.Nodes) == len(g.nodes)
		for _, n := range cs.Nodes {
			ok = ok && n.Reachable
		}
		return struct{}{}, ok, nil
	})
	return err
}

// CaughtUp reports whether the leader (other than id) shows node id
// reachable, and whether it also shows id's last index within slack
// entries of its own.
func (g *Group) CaughtUp(ctx context.Context, id string, slack uint64) (reachable, ok bool) {
	l := g.Leader(ctx)
	if l == "" || l == id {
		return false, false
	}
	cs, err := g.Status(ctx, l)
	if err != nil {
		return false, false
	}
	var ln, nn *wire.ClusterNode
	for i := range cs.Nodes {
		switch cs.Nodes[i].ID {
		case l:
			ln = &cs.Nodes[i]
		case id:
			nn = &cs.Nodes[i]
		}
	}
	if ln == nil || nn == nil || !nn.Reachable {
		return false, false
	}
	return true, nn.LastIndex+slack >= ln.LastIndex
}

// WaitCaughtUp waits up to timeout until CaughtUp reports node id within
// slack entries of the leader.
func (g *Group) WaitCaughtUp(ctx context.Context, id string, slack uint64, timeout time.Duration) error {
	_, err := poll(ctx, timeout, id+" to catch up", func() (struct{}, bool, error) {
		_, ok := g.CaughtUp(ctx, id, slack)
		return struct{}{}, ok, g.Check()
	})
	return err
}

// poll calls f every pollEvery until it reports done or an error, ctx ends
// or timeout passes.
func poll[T any](ctx context.Context, timeout time.Duration, what string, f func() (T, bool, error)) (T, error) {
	deadline := time.Now().Add(timeout)
	for {
		v, done, err := f()
		if err != nil || done {
			return v, err
		}
		if time.Now().After(deadline) {
			return v, fmt.Errorf("cluster: timed out after %s waiting for %s", timeout, what)
		}
		t := time.NewTimer(pollEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, fmt.Errorf("cluster: waiting for %s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
}
