package broker

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// TestClusterOperations: status, readiness, NOT_LEADER naming the leader,
// and a leadership transfer to a chosen node, through the core of each
// node of a 3-node group.
func TestClusterOperations(t *testing.T) {
	bs := startGroup(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l := leaderOf(t, bs)
	// Every node learns every member's API address within a few refreshes.
	for _, b := range bs {
		waitFor(t, 10*time.Second, b.cfg.ID+"'s complete status", func() bool {
			st := b.Service().ClusterStatus()
			known := 0
			for _, n := range st.Nodes {
				if n.Reachable && n.APIAddr != "" {
					known++
				}
			}
			return known == 3 && st.Leader == l.cfg.ID && st.LeaderAPI == l.Addr() && st.AnsweredBy == b.cfg.ID
		})
		if err := b.Service().Ready(); err != nil {
			t.Fatalf("%s not ready: %v", b.cfg.ID, err)
		}
	}
	var target *Broker
	for _, b := range bs {
		if b != l {
			target = b
			break
		}
	}
	ae := l.Service().AsError(target.Service().RequireLeader())
	if ae.Code != wire.CodeNotLeader || ae.Leader != l.Addr() || !ae.NotApplied || !ae.Retriable {
		t.Fatalf("follower's refusal: %+v", ae)
	}
	// A follower validates what it can before redirecting: a request that
	// can never succeed gets its 4xx from any node (docs/api.md).
	fbase := "http://" + target.Addr()
	expectCode(t, call(t, "POST", fbase+"/v1/topics", "", []byte(`{"name":"a/b"}`)), 400, wire.CodeInvalidArgument)
	expectCode(t, call(t, "POST", fbase+"/v1/groups/g/offsets", "", []byte(`{"member_id":`)), 400, wire.CodeInvalidArgument)
	expectCode(t, call(t, "POST", fbase+"/v1/groups/g/reset-offsets", "", []byte(`{"topic":"nope","to":"latest"}`)), 404, wire.CodeTopicNotFound)
	expectCode(t, call(t, "POST", fbase+"/v1/topics", "", []byte(`{"name":"fine"}`)), 421, wire.CodeNotLeader)
	if r := call(t, "POST", fbase+"/readyz", "", nil); r.status != 200 {
		t.Fatalf("POST /readyz: %d %s", r.status, r.body)
	}
	got, err := l.Service().TransferLeadership(ctx, target.cfg.ID)
	if err != nil || got.ID != target.cfg.ID || got.API != target.Addr() {
		t.Fatalf("transfer: %+v, %v", got, err)
	}
	waitFor(t, 10*time.Second, "ready leader on the chosen node", func() bool { return target.Service().RequireLeader() == nil })
	if _, err := target.Service().TransferLeadership(ctx, "nobody"); target.Service().AsError(err).Code != wire.CodeInvalidArgument {
		t.Fatalf("transfer to an unknown node: %v", err)
	}
	r := call(t, "GET", "http://"+target.Addr()+"/metrics", "", nil)
	for _, name := range []string{"ledgermq_raft_role{role=\"leader\"} 1", "ledgermq_leader_changes_total", "ledgermq_log_bytes",
		"ledgermq_follower_lag_entries{follower=", "# TYPE ledgermq_requests_total counter"} {
		if r.status != 200 || !strings.Contains(string(r.body), name) {
			t.Fatalf("metrics lack %s:\n%s", name, r.body)
		}
	}
}

// TestStatusWithASilentPeer: with a member gone, every other node still
// answers status from local state, reports the member unreachable with the
// age of its last report, and names the leader through GET /v1/leader.
func TestStatusWithASilentPeer(t *testing.T) {
	bs := startGroup(t, 3, nil)
	l := leaderOf(t, bs)
	var gone *Broker
	for _, b := range bs {
		if b != l {
			gone = b
			break
		}
	}
	waitFor(t, 10*time.Second, "a report from every member", func() bool {
		for _, n := range l.Service().ClusterStatus().Nodes {
			if !n.Reachable {
				return false
			}
		}
		return true
	})
	if err := gone.Close(); err != nil {
		t.Fatal(err)
	}
	var slowest time.Duration
	waitFor(t, 10*time.Second, gone.cfg.ID+" reported unreachable", func() bool {
		start := time.Now()
		st := l.Service().ClusterStatus()
		slowest = max(slowest, time.Since(start))
		for _, n := range st.Nodes {
			if n.ID == gone.cfg.ID {
				return !n.Reachable && n.Role == "unreachable" && n.Error != "" && n.StatusAgeMs != nil && *n.StatusAgeMs > 0
			}
		}
		return false
	})
	t.Logf("slowest status answer while %s went silent: %v", gone.cfg.ID, slowest)
	for _, b := range bs {
		if b == gone {
			continue
		}
		var lv wire.LeaderView
		r := call(t, "GET", "http://"+b.Addr()+"/v1/leader", "", nil)
		if err := json.Unmarshal(r.body, &lv); err != nil || r.status != 200 || lv.Leader != l.cfg.ID || lv.LeaderAPI != l.Addr() || lv.Term == 0 || lv.AnsweredBy != b.cfg.ID {
			t.Fatalf("GET /v1/leader on %s: %d %s", b.cfg.ID, r.status, r.body)
		}
	}
}
