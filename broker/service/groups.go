package service

import (
	"context"
	"time"

	"github.com/ledgermq/ledgermq/consumer"
	"github.com/ledgermq/ledgermq/fsm"
	"github.com/ledgermq/ledgermq/wire"
)

// Session timeouts a member may ask for.
const (
	DefaultSessionTimeout = 10 * time.Second
	MinSessionTimeout     = time.Second
	MaxSessionTimeout     = 5 * time.Minute
)

// Membership is a member's view of its group.
type Membership struct {
	consumer.Membership
	SessionTimeout time.Duration
}

// JoinGroup adds a member to group (a new one when memberID is empty) and
// rebalances; sessionTimeout 0 takes the default.
func (s *Service) JoinGroup(ctx context.Context, group, memberID string, topicNames []string, sessionTimeout time.Duration) (Membership, error) {
	if err := s.RequireLeader(); err != nil {
		return Membership{}, err
	}
	if sessionTimeout == 0 {
		sessionTimeout = DefaultSessionTimeout
	}
	if sessionTimeout < MinSessionTimeout || sessionTimeout > MaxSessionTimeout || len(topicNames) == 0 {
		return Membership{}, Errorf(wire.CodeInvalidArgument, "a join needs topics and a session timeout in [%v, %v]", MinSessionTimeout, MaxSessionTimeout)
	}
	for _, t := range topicNames {
		if _, err := s.topics.Lookup(t); err != nil {
			return Membership{}, err
		}
	}
	if memberID != "" { // a rejoin of a member this group does not have: refused here, never logged
		if _, err := s.groups.Membership(group, memberID); err != nil {
			return Membership{}, Errorf(wire.CodeUnknownMember, "%s in group %s (join without an id to get a new one)", memberID, group)
		}
	}
	m, err := propose(s, ctx, fsm.JoinGroup, consumer.JoinCmd{Group: group, MemberID: memberID, Topics: topicNames,
		SessionTimeoutMs: sessionTimeout.Milliseconds()})
	if err != nil {
		return Membership{}, err
	}
	s.sess.beat(group, m.MemberID, s.cfg.Clock())
	return Membership{Membership: m, SessionTimeout: sessionTimeout}, nil
}

// Heartbeat keeps a member's session alive and returns its current
// generation and queues.
func (s *Service) Heartbeat(group, member string) (Membership, error) {
	if err := s.requireLeaderRole(); err != nil { // a draining leader still keeps sessions until it hands over
		return Membership{}, err
	}
	m, err := s.groups.Membership(group, member)
	if err != nil {
		return Membership{}, err
	}
	s.sess.beat(group, member, s.cfg.Clock())
	timeout := DefaultSessionTimeout
	for _, r := range s.groups.Members() {
		if r.Group == group && r.MemberID == member {
			timeout = time.Duration(r.SessionTimeoutMs) * time.Millisecond
		}
	}
	return Membership{Membership: m, SessionTimeout: timeout}, nil
}

// LeaveGroup removes a member and rebalances its queues to the others.
func (s *Service) LeaveGroup(ctx context.Context, group, member string) error {
	_, err := propose(s, ctx, fsm.LeaveGroup, consumer.LeaveCmd{Group: group, MemberID: member, Reason: "left"})
	return err
}

// CommitOffsets records a member's committed offsets, fenced by its
// generation and ownership of each queue.
func (s *Service) CommitOffsets(ctx context.Context, c consumer.CommitCmd) error {
	if _, err := propose(s, ctx, fsm.CommitOffsets, c); err != nil {
		return err
	}
	s.sess.beat(c.Group, c.MemberID, s.cfg.Clock())
	return nil
}

// ResetTo says where ResetOffsets moves a group's offsets in a topic.
type ResetTo struct {
	To     string    // earliest, latest, time or offset
	Time   time.Time // for time
	Offset uint64    // for offset (clamped to the readable range)
}

// ResetOffsets sets an empty group's committed offsets for every queue of
// topic and returns the group. The request is validated on any node; only
// the leader proposes it.
func (s *Service) ResetOffsets(ctx context.Context, group, topic string, to ResetTo) (wire.GroupInfo, error) {
	t, err := s.topics.Lookup(topic)
	if err != nil {
		return wire.GroupInfo{}, err
	}
	c := consumer.ResetCmd{Group: group}
	for i := 0; i < t.Queues; i++ {
		q, _ := t.Queue(i)
		r := s.reader.Range(t, q)
		var off uint64
		switch to.To {
		case "earliest":
			off = r.Earliest
		case "latest":
			off = r.Next
		case "time":
			off = s.reader.OffsetForTime(t, q, to.Time.UnixMilli())
		case "offset":
			off = min(max(to.Offset, r.Earliest), r.Next)
		default:
			return wire.GroupInfo{}, Errorf(wire.CodeInvalidArgument, "to must be earliest, latest, time or offset")
		}
		c.Offsets = append(c.Offsets, consumer.Offset{Topic: t.Name, Queue: i, Offset: off})
	}
	if _, err := propose(s, ctx, fsm.ResetOffsets, c); err != nil {
		return wire.GroupInfo{}, err
	}
	return s.DescribeGroup(group)
}

// ListGroups returns every group by name.
func (s *Service) ListGroups() []wire.GroupInfo {
	out := []wire.GroupInfo{}
	for _, g := range s.groups.List() {
		out = append(out, s.groupInfo(g))
	}
	return out
}

// DescribeGroup returns a group with the lag of every queue it knows.
func (s *Service) DescribeGroup(group string) (wire.GroupInfo, error) {
	if err := s.readableAt(context.Background(), 0, 0); err != nil {
		return wire.GroupInfo{}, err
	}
	g, err := s.groups.Describe(group)
	if err != nil {
		return wire.GroupInfo{}, err
	}
	return s.groupInfo(g), nil
}

func (s *Service) groupInfo(g consumer.GroupView) wire.GroupInfo {
	info := wire.GroupInfo{Group: g.Name, Generation: g.Generation, Members: []wire.GroupMember{}, Queues: []wire.GroupQueue{}}
	owner := map[consumer.TQ]string{}
	topicSet := map[string]bool{}
	for _, m := range g.Members {
		info.Members = append(info.Members, wire.GroupMember{MemberID: m.ID, Topics: m.Topics,
			SessionTimeoutMs: m.SessionTimeoutMs, Assignment: WireQueues(g.Assignment[m.ID])})
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
	for _, t := range s.topics.List() {
		if !topicSet[t.Name] {
			continue
		}
		for i := 0; i < t.Queues; i++ {
			q, _ := t.Queue(i)
			next, _ := q.Bounds()
			tq := consumer.TQ{Topic: t.Name, Queue: i}
			gq := wire.GroupQueue{Topic: t.Name, Queue: i, Owner: owner[tq], Next: next, Lag: next}
			if off, ok := g.Offsets[tq]; ok {
				c := off
				gq.Committed = &c
				gq.Lag = next - min(off, next)
			}
			info.Queues = append(info.Queues, gq)
		}
	}
	return info
}

// WireQueues converts queue names to their wire form.
func WireQueues(qs []consumer.TQ) []wire.TopicQueue {
	out := make([]wire.TopicQueue, 0, len(qs))
	for _, q := range qs {
		out = append(out, wire.TopicQueue{Topic: q.Topic, Queue: q.Queue})
	}
	return out
}

// expireMembers runs on every node; only the leader acts. A member whose
// session expired is removed by a leave command, which rebalances its
// queues to the others.
func (s *Service) expireMembers() {
	defer s.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if !s.node.IsLeader() {
			s.sess.clear()
			continue
		}
		for _, r := range s.sess.expired(s.groups.Members(), s.cfg.Clock()) {
			s.logger.Info("group member session expired", "group", r.Group, "member", r.MemberID)
			_, err := propose(s, context.Background(), fsm.LeaveGroup, consumer.LeaveCmd{Group: r.Group, MemberID: r.MemberID, Reason: "session expired"})
			if err != nil {
				s.logger.Warn("expire group member", "group", r.Group, "member", r.MemberID, "err", err)
			}
		}
	}
}
