package broker

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ledgermq/ledgermq/consumer"
	"github.com/ledgermq/ledgermq/wire"
)

// Session timeouts a member may ask for.
const (
	defaultSessionTimeout = 10 * time.Second
	minSessionTimeout     = time.Second
	maxSessionTimeout     = 5 * time.Minute
)

// sessions are the leader's record of member heartbeats. They are not
// replicated: a new leader starts every member's session afresh.
type sessions struct {
	mu   sync.Mutex
	last map[string]time.Time // group + "\x00" + member
}

func newSessions() *sessions { return &sessions{last: map[string]time.Time{}} }

func sessionKey(group, member string) string { return group + "\x00" + member }

func (s *sessions) beat(group, member string) {
	s.mu.Lock()
	s.last[sessionKey(group, member)] = time.Now()
	s.mu.Unlock()
}

// routeGroups handles /v1/groups and everything under it.
func (b *Broker) routeGroups(ctx *fasthttp.RequestCtx, method, rest string) string {
	if rest == "" {
		if b.allow(ctx, method, "GET") {
			b.listGroups(ctx)
		}
		return "groups"
	}
	seg := strings.Split(rest, "/")
	g := seg[0]
	switch {
	case len(seg) == 1:
		if b.allow(ctx, method, "GET") {
			b.describeGroup(ctx, g)
		}
		return "group"
	case len(seg) == 2 && seg[1] == "members":
		if b.allow(ctx, method, "POST") {
			b.joinGroup(ctx, g)
		}
		return "group_join"
	case len(seg) == 3 && seg[1] == "members":
		if b.allow(ctx, method, "DELETE") {
			b.leaveGroup(ctx, g, seg[2])
		}
		return "group_leave"
	case len(seg) == 4 && seg[1] == "members" && seg[3] == "heartbeat":
		if b.allow(ctx, method, "POST") {
			b.heartbeat(ctx, g, seg[2])
		}
		return "group_heartbeat"
	case len(seg) == 2 && seg[1] == "offsets":
		if b.allow(ctx, method, "POST") {
			b.commitOffsets(ctx, g)
		}
		return "group_commit"
	case len(seg) == 2 && seg[1] == "reset-offsets":
		if b.allow(ctx, method, "POST") {
			b.resetOffsets(ctx, g)
		}
		return "group_reset"
	}
	b.writeError(ctx, newAPIError(http.StatusNotFound, wire.CodeNotFound, "no such endpoint: %s", ctx.Path()))
	return "unknown"
}

func toWireTQ(qs []consumer.TQ) []wire.TopicQueue {
	out := make([]wire.TopicQueue, 0, len(qs))
	for _, q := range qs {
		out = append(out, wire.TopicQueue{Topic: q.Topic, Queue: q.Queue})
	}
	return out
}

func (b *Broker) joinGroup(ctx *fasthttp.RequestCtx, group string) {
	if !b.node.IsLeader() {
		b.writeError(ctx, b.notLeader())
		return
	}
	var req wire.JoinGroupRequest
	if !b.decodeJSON(ctx, &req) {
		return
	}
	timeout := time.Duration(req.SessionTimeoutMs) * time.Millisecond
	if timeout == 0 {
		timeout = defaultSessionTimeout
	}
	if timeout < minSessionTimeout || timeout > maxSessionTimeout || len(req.Topics) == 0 {
		b.writeError(ctx, newAPIError(http.StatusBadRequest, wire.CodeInvalidArgument,
			"a join needs topics and a session timeout in [%v, %v]", minSessionTimeout, maxSessionTimeout))
		return
	}
	for _, t := range req.Topics {
		if _, err := b.topics.Lookup(t); err != nil {
			b.writeError(ctx, err)
			return
		}
	}
	res, err := b.propose(consumer.Encode(consumer.CmdJoin, consumer.JoinCmd{Group: group, MemberID: req.MemberID,
		Topics: req.Topics, SessionTimeoutMs: timeout.Milliseconds()}))
	if err != nil {
		b.writeError(ctx, err)
		return
	}
	m := res.(consumer.Membership)
	b.sessions.beat(group, m.MemberID)
	b.writeJSON(ctx, http.StatusOK, wire.Membership{Group: group, MemberID: m.MemberID, Generation: m.Generation,
		Assignment: toWireTQ(m.Assignment), HeartbeatIntervalMs: timeout.Milliseconds() / 3, SessionTimeoutMs: timeout.Milliseconds()})
}

func (b *Broker) heartbeat(ctx *fasthttp.RequestCtx, group, member string) {
	if !b.node.IsLeader() {
		b.writeError(ctx, b.notLeader())
		return
	}
	m, err := b.groups.Membership(group, member)
	if err != nil {
		b.writeError(ctx, err)
		return
	}
	b.sessions.beat(group, member)
	timeout := b.sessionTimeout(group, member)
	b.writeJSON(ctx, http.StatusOK, wire.Membership{Group: group, MemberID: member, Generation: m.Generation,
		Assignment: toWireTQ(m.Assignment), HeartbeatIntervalMs: timeout.Milliseconds() / 3, SessionTimeoutMs: timeout.Milliseconds()})
}

func (b *Broker) sessionTimeout(group, member string) time.Duration {
	for _, r := range b.groups.Members() {
		if r.Group == group && r.MemberID == member {
			return time.Duration(r.SessionTimeoutMs) * time.Millisecond
		}
	}
	return defaultSessionTimeout
}

func (b *Broker) leaveGroup(ctx *fasthttp.RequestCtx, group, member string) {
	if _, err := b.propose(consumer.Encode(consumer.CmdLeave, consumer.LeaveCmd{Group: group, MemberID: member, Reason: "left"})); err != nil {
		b.writeError(ctx, err)
		return
	}
	b.writeJSON(ctx, http.StatusOK, map[string]string{"left": member})
}

func (b *Broker) commitOffsets(ctx *fasthttp.RequestCtx, group string) {
	var req wire.CommitRequest
	if !b.decodeJSON(ctx, &req) {
		return
	}
	c := consumer.CommitCmd{Group: group, MemberID: req.MemberID, Generation: req.Generation}
	for _, o := range req.Offsets {
		c.Offsets = append(c.Offsets, consumer.Offset{Topic: o.Topic, Queue: o.Queue, Offset: o.Offset})
	}
	if _, err := b.propose(consumer.Encode(consumer.CmdCommit, c)); err != nil {
		b.writeError(ctx, err)
		return
	}
	b.sessions.beat(group, req.MemberID)
	b.writeJSON(ctx, http.StatusOK, map[string]int{"committed": len(req.Offsets)})
}

func (b *Broker) resetOffsets(ctx *fasthttp.RequestCtx, group string) {
	var req wire.ResetOffsetsRequest
	if !b.decodeJSON(ctx, &req) {
		return
	}
	t, err := b.topics.Lookup(req.Topic)
	if err != nil {
		b.writeError(ctx, err)
		return
	}
	var at time.Time
	if req.To == "time" {
		if at, err = time.Parse(time.RFC3339Nano, req.Timestamp); err != nil {
			b.writeError(ctx, newAPIError(http.StatusBadRequest, wire.CodeInvalidArgument, "timestamp must be RFC3339: %v", err))
			return
		}
	}
	h := b.horizon(t)
	c := consumer.ResetCmd{Group: group}
	for i := 0; i < t.Queues; i++ {
		q, _ := t.Queue(i)
		next, _ := q.Bounds()
		_, earliest := q.Find(next, h, 0)
		var off uint64
		switch req.To {
		case "earliest":
			off = min(earliest, next)
		case "latest":
			off = next
		case "time":
			off = q.FindTime(at.UnixMilli(), h)
		case "offset":
			off = min(max(req.Offset, min(earliest, next)), next)
		default:
			b.writeError(ctx, newAPIError(http.StatusBadRequest, wire.CodeInvalidArgument, "to must be earliest, latest, time or offset"))
			return
		}
		c.Offsets = append(c.Offsets, consumer.Offset{Topic: t.Name, Queue: i, Offset: off})
	}
	if _, err := b.propose(consumer.Encode(consumer.CmdReset, c)); err != nil {
		b.writeError(ctx, err)
		return
	}
	b.describeGroup(ctx, group)
}

func (b *Broker) listGroups(ctx *fasthttp.RequestCtx) {
	out := wire.GroupList{Groups: []wire.GroupInfo{}}
	for _, g := range b.groups.List() {
		out.Groups = append(out.Groups, b.groupInfo(g))
	}
	b.writeJSON(ctx, http.StatusOK, out)
}

func (b *Broker) describeGroup(ctx *fasthttp.RequestCtx, group string) {
	g, err := b.groups.Describe(group)
	if err != nil {
		b.writeError(ctx, err)
		return
	}
	b.writeJSON(ctx, http.StatusOK, b.groupInfo(g))
}

// groupInfo describes a group with the lag of every queue it knows.
func (b *Broker) groupInfo(g consumer.GroupView) wire.GroupInfo {
	info := wire.GroupInfo{Group: g.Name, Generation: g.Generation, Members: []wire.GroupMember{}, Queues: []wire.GroupQueue{}}
	owner := map[consumer.TQ]string{}
	topicSet := map[string]bool{}
	for _, m := range g.Members {
		info.Members = append(info.Members, wire.GroupMember{MemberID: m.ID, Topics: m.Topics,
			SessionTimeoutMs: m.SessionTimeoutMs, Assignment: toWireTQ(g.Assignment[m.ID])})
		for _, q := range g.Assignment[m.ID] {
			owner[q] = m.ID
		}
		for _, t := range m.Topics {
			topicSet[t] = true
		}
	}
	for q := range g.Offsets {
		topicSet[q.Topic] = true
	}
	for _, t := range b.topics.List() {
		if !topicSet[t.Name] {
			continue
		}
		for i := 0; i < t.Queues; i++ {
			q, _ := t.Queue(i)
			next, _ := q.Bounds()
			gq := wire.GroupQueue{Topic: t.Name, Queue: i, Owner: owner[consumer.TQ{Topic: t.Name, Queue: i}], Next: next, Lag: next}
			if off, ok := g.Offsets[consumer.TQ{Topic: t.Name, Queue: i}]; ok {
				c := off
				gq.Committed = &c
				gq.Lag = next - min(off, next)
			}
			info.Queues = append(info.Queues, gq)
		}
	}
	return info
}

// expireMembers runs on every node; only the leader acts. A member whose
// last heartbeat (or, for a member this leader has not heard from yet, the
// moment it took over) is older than its session timeout is removed by a
// leave command, which rebalances its queues to the others.
func (b *Broker) expireMembers() {
	defer b.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		if !b.node.IsLeader() {
			b.sessions.mu.Lock()
			clear(b.sessions.last)
			b.sessions.mu.Unlock()
			continue
		}
		now := time.Now()
		var expired []consumer.MemberRef
		members := b.groups.Members()
		current := make(map[string]bool, len(members))
		for _, r := range members {
			current[sessionKey(r.Group, r.MemberID)] = true
		}
		b.sessions.mu.Lock()
		for k := range b.sessions.last { // members that left or were never joined
			if !current[k] {
				delete(b.sessions.last, k)
			}
		}
		for _, r := range members {
			k := sessionKey(r.Group, r.MemberID)
			last, ok := b.sessions.last[k]
			if !ok {
				b.sessions.last[k] = now
				continue
			}
			if now.Sub(last) > time.Duration(r.SessionTimeoutMs)*time.Millisecond {
				expired = append(expired, r)
				delete(b.sessions.last, k)
			}
		}
		b.sessions.mu.Unlock()
		for _, r := range expired {
			b.logger.Info("group member session expired", "group", r.Group, "member", r.MemberID)
			if _, err := b.propose(consumer.Encode(consumer.CmdLeave, consumer.LeaveCmd{Group: r.Group, MemberID: r.MemberID, Reason: "session expired"})); err != nil {
				b.logger.Warn("expire group member", "group", r.Group, "member", r.MemberID, "err", err)
			}
		}
	}
}
