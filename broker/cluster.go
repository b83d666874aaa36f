package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ledgermq/ledgermq/replication"
	"github.com/ledgermq/ledgermq/wire"
)

func (b *Broker) clusterStatus(ctx *fasthttp.RequestCtx) {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st := b.node.Stats(c)
	out := wire.ClusterStatus{Leader: st.LeaderID, LeaderAPI: b.apiAddrOf(st.LeaderID), Term: st.Term,
		GroupID: b.cfg.GroupID, AnsweredBy: b.cfg.ID, Nodes: []wire.ClusterNode{}}
	for _, p := range st.Peers {
		n := wire.ClusterNode{ID: p.ID, RaftAddr: p.RaftAddr, APIAddr: b.apiAddrOf(p.ID), Error: p.Err}
		if s := p.Status; s != nil {
			n.Reachable = true
			n.Role, n.Term = s.Role, s.Term
			n.FirstIndex, n.LastIndex, n.CommitIndex, n.AppliedIndex = s.FirstIndex, s.LastIndex, s.CommitIndex, s.AppliedIndex
			if s.APIAddr != "" {
				n.APIAddr = s.APIAddr
			}
		} else {
			n.Role = "unreachable"
		}
		out.Nodes = append(out.Nodes, n)
	}
	b.writeJSON(ctx, http.StatusOK, out)
}

func (b *Broker) transferLeadership(ctx *fasthttp.RequestCtx) {
	var req wire.TransferRequest
	if len(ctx.PostBody()) > 0 && !b.decodeJSON(ctx, &req) {
		return
	}
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	old := b.node.Leader().ID
	if err := b.node.TransferLeadership(c, req.To); err != nil {
		switch {
		case errors.Is(err, replication.ErrNotLeader), errors.Is(err, replication.ErrClosed):
			b.writeError(ctx, err)
		case errors.Is(err, replication.ErrTimeout):
			e := unavailable("the transfer did not complete in time; leadership may or may not have moved")
			e.body.NotApplied = false
			b.writeError(ctx, e)
		default: // unknown target, a group of one, the leader itself
			b.writeError(ctx, newAPIError(http.StatusBadRequest, wire.CodeInvalidArgument, "cannot transfer leadership: %v", err))
		}
		return
	}
	// Report the new leader once this node has heard from it.
	ch, stop := b.node.WatchLeader()
	defer stop()
	var l replication.LeaderInfo
	for l.ID == "" || l.ID == old {
		select {
		case l = <-ch:
		case <-c.Done():
			b.writeJSON(ctx, http.StatusOK, map[string]string{"leader": "", "leader_api": ""})
			return
		}
	}
	b.writeJSON(ctx, http.StatusOK, map[string]string{"leader": l.ID, "leader_api": b.apiAddrOf(l.ID)})
}

// readyz: a member of a group with a known leader, whose state machine has
// caught up with what it knows to be committed.
func (b *Broker) readyz(ctx *fasthttp.RequestCtx) {
	l := b.node.Leader()
	st := b.node.Status()
	switch {
	case b.draining.Load():
		b.writeError(ctx, unavailable("shutting down"))
	case l.ID == "":
		b.writeError(ctx, unavailable("no known leader"))
	case st.AppliedIndex+64 < st.CommitIndex:
		b.writeError(ctx, unavailable(fmt.Sprintf("catching up: applied %d of %d", st.AppliedIndex, st.CommitIndex)))
	default:
		ctx.SetStatusCode(http.StatusOK)
		ctx.SetBodyString("ready\n")
	}
}
