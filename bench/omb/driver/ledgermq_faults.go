package driver

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

var (
	_ FaultInjector = (*LedgerMQ)(nil)
	_ LeaderStats   = (*LedgerMQ)(nil)
)

// Leader implements FaultInjector: the leader a majority confirms in the
// newest term (cluster.Group.WaitNewestLeader).
func (d *LedgerMQ) Leader(ctx context.Context) (string, error) {
	return d.g.WaitNewestLeader(ctx, "", time.Second, leaderTimeout)
}

// Inject implements FaultInjector with internal/cluster's faults: SIGKILL,
// SIGSTOP, or nftables drops in the namespace lab (Options.Netns).
func (d *LedgerMQ) Inject(ctx context.Context, f Fault, node string) error {
	switch f {
	case FaultKill:
		d.g.Kill(node)
		return nil
	case FaultStall:
		return d.g.Pause(node)
	case FaultBlackhole:
		return d.g.Blackhole(node)
	case FaultPartition:
		return d.g.Partition(node)
	}
	return fmt.Errorf("ledgermq: unknown fault %q", f)
}

// Heal implements FaultInjector.
func (d *LedgerMQ) Heal(ctx context.Context, f Fault, node string) error {
	switch f {
	case FaultKill:
		return d.g.StartNode(node)
	case FaultStall:
		return d.g.Resume(node)
	case FaultBlackhole, FaultPartition:
		return d.g.Heal()
	}
	return fmt.Errorf("ledgermq: unknown fault %q", f)
}

// WaitHealthy implements FaultInjector: node is back in the group, seen
// from its own state and the leader's, within 100 entries of the leader
// (cluster.Group.WaitRejoined).
func (d *LedgerMQ) WaitHealthy(ctx context.Context, node string) error {
	return d.g.WaitRejoined(ctx, node, catchUpSlack, leaderTimeout)
}

// LeaderStats implements LeaderStats from every running node's GET
// /metrics: ledgermq_leader_changes_total and ledgermq_raft_term.
func (d *LedgerMQ) LeaderStats(ctx context.Context) (map[string]NodeLeaderStats, error) {
	hc := d.g.HTTPClient(5 * time.Second)
	out := map[string]NodeLeaderStats{}
	for _, id := range d.g.Running() {
		req, err := http.NewRequestWithContext(ctx, "GET", d.g.URL(id)+"/metrics", nil)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("ledgermq: metrics of %s: %w", id, err)
		}
		var st NodeLeaderStats
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 2 {
				continue
			}
			v, _ := strconv.ParseUint(f[1], 10, 64)
			switch f[0] {
			case "ledgermq_leader_changes_total":
				st.LeaderChanges = v
			case "ledgermq_raft_term":
				st.Term = v
			}
		}
		resp.Body.Close()
		if lv, err := d.g.LeaderView(ctx, id); err == nil {
			st.Leader = lv.Leader
		}
		out[id] = st
	}
	return out, nil
}
