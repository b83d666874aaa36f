package service

import (
	"context"
	"fmt"
	"time"

	"github.com/ledgermq/ledgermq/consumer"
	"github.com/ledgermq/ledgermq/fsm"
	"github.com/ledgermq/ledgermq/topics"
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

// JoinRequest is a join: memberID "" asks for a new member; instanceID
// makes the member static (a join with a current member's instance id
// replaces that member and takes over its queues); SessionTimeout 0 takes
// the default.
type JoinRequest struct {
	MemberID, InstanceID string
	Topics               []string
	SessionTimeout       time.Duration
}

// JoinGroup adds a member to group and rebalances. Everything that can
// refuse the join is checked before it is proposed (a refused join is never
// logged): the topics, the member id, the group's name when the join
// creates it, and the group and member quotas.
func (s *Service) JoinGroup(ctx context.Context, group string, req JoinRequest) (Membership, error) {
	if err := s.Authorize(ctx, wire.OpConsume, wire.ResourceGroup, group); err != nil {
		return Membership{}, err
	}
	for _, t := range req.Topics {
		if err := s.Authorize(ctx, wire.OpConsume, wire.ResourceTopic, t); err != nil {
			return Membership{}, err
		}
	}
	memberID, sessionTimeout := req.MemberID, req.SessionTimeout
	if err := s.RequireLeader(); err != nil {
		return Membership{}, err
	}
	if s.claims.held(group) {
		return Membership{}, Errorf(wire.CodeGroupActive, "group %s has members of the Kafka protocol; a group is joined through one protocol at a time", group)
	}
	if sessionTimeout == 0 {
		sessionTimeout = DefaultSessionTimeout
	}
	if sessionTimeout < MinSessionTimeout || sessionTimeout > MaxSessionTimeout || len(req.Topics) == 0 {
		return Membership{}, Errorf(wire.CodeInvalidArgument, "a join needs topics and a session timeout in [%v, %v]", MinSessionTimeout, MaxSessionTimeout)
	}
	var topicNames []string // without repeats: a member subscribes to a topic once
	seen := map[string]bool{}
	for _, t := range req.Topics {
		if seen[t] {
			continue
		}
		seen[t] = true
		if _, err := s.topics.Lookup(t); err != nil {
			return Membership{}, err
		}
		topicNames = append(topicNames, t)
	}
	if len(req.InstanceID) > 255 {
		return Membership{}, Errorf(wire.CodeInvalidArgument, "an instance id has at most 255 bytes")
	}
	q := s.quotas()
	_, exists := s.groups.Exists(group)
	if memberID != "" { // a rejoin of a member this group does not have: refused here, never logged
		if _, err := s.groups.Membership(group, memberID); err != nil {
			return Membership{}, Errorf(wire.CodeUnknownMember, "%s in group %s (join without an id to get a new one)", memberID, group)
		}
	} else {
		if !exists {
			if err := topics.CheckNewName("group", group); err != nil {
				return Membership{}, err
			}
			release, err := s.reserveGroup(q)
			if err != nil {
				return Membership{}, err
			}
			defer release()
		}
		if !s.replacesMember(group, req.InstanceID) {
			release, ok := s.admit.reserve("members/"+group, func() int { n, _ := s.groups.Exists(group); return n }, q.MaxMembersPerGroup)
			if !ok {
				return Membership{}, Errorf(wire.CodeTooManyMembers, "group %s has the maximum of %d members (max members per group); join refused",
					group, q.MaxMembersPerGroup)
			}
			defer release()
		}
	}
	cmd := consumer.JoinCmd{Group: group, MemberID: memberID, InstanceID: req.InstanceID,
		Topics: topicNames, SessionTimeoutMs: sessionTimeout.Milliseconds()}
	if err := checkSize(s, fsm.JoinGroup, cmd); err != nil {
		return Membership{}, err
	}
	m, err := propose(s, ctx, fsm.JoinGroup, cmd)
	if err != nil {
		return Membership{}, err
	}
	s.sess.beat(group, m.MemberID, s.cfg.Clock())
	return Membership{Membership: m, SessionTimeout: sessionTimeout}, nil
}

// replacesMember reports whether a join with instanceID replaces a
// current member of group (a static member's restart: the group does not
// grow).
func (s *Service) replacesMember(group, instanceID string) bool {
	if instanceID == "" {
		return false
	}
	g, err := s.groups.Describe(group)
	if err != nil {
		return false
	}
	for _, m := range g.Members {
		if m.InstanceID == instanceID {
			return true
		}
	}
	return false
}

// reserveGroup admits the creation of one group under the group quota.
func (s *Service) reserveGroup(q Quotas) (func(), error) {
	release, ok := s.admit.reserve("groups", s.groups.Count, q.MaxGroups)
	if !ok {
		return nil, Errorf(wire.CodeTooManyGroups, "the broker has the maximum of %d consumer groups (max groups); delete unused groups first", q.MaxGroups)
	}
	return release, nil
}

// Heartbeat keeps a member's session alive and returns its current view.
// With wait > 0 it is a long poll: while the group is still at generation
// known it waits for a change, at most wait (capped at a third of the
// member's session timeout), and answers the view of then.
func (s *Service) Heartbeat(ctx context.Context, group, member string, known uint64, wait time.Duration) (Membership, error) {
	if err := s.Authorize(ctx, wire.OpConsume, wire.ResourceGroup, group); err != nil {
		return Membership{}, err
	}
	for {
		if err := s.requireLeaderRole(); err != nil { // a draining leader still keeps sessions until it hands over
			return Membership{}, err
		}
		changed := s.groups.Changed() // before the read: a change after it closes this
		m, err := s.groups.Membership(group, member)
		if err != nil {
			return Membership{}, err
		}
		s.sess.beat(group, member, s.cfg.Clock())
		timeout := memberSession(m)
		wait = min(wait, timeout/3)
		if wait <= 0 || m.Generation != known {
			return Membership{Membership: m, SessionTimeout: timeout}, nil
		}
		start := time.Now()
		t := time.NewTimer(wait)
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
		case <-s.stop:
		}
		t.Stop()
		wait -= time.Since(start)
		if ctx.Err() != nil || s.isStopped() {
			wait = 0 // answer what there is
		}
	}
}

// memberSession is m's session timeout (the default for a member joined
// without one, as old logs hold).
func memberSession(m consumer.Membership) time.Duration {
	if m.SessionTimeoutMs <= 0 {
		return DefaultSessionTimeout
	}
	return time.Duration(m.SessionTimeoutMs) * time.Millisecond
}

// ReleaseQueues gives up queues a member owns and must release, with the
// offsets it commits for them, and returns its view. Queues and offsets
// of queues it does not own are skipped (a resent release changes
// nothing): they are dropped before proposing, as are repeats (the last
// offset for a queue wins), so the command is bounded by the member's
// queues.
func (s *Service) ReleaseQueues(ctx context.Context, c consumer.ReleaseCmd) (Membership, error) {
	if err := s.Authorize(ctx, wire.OpConsume, wire.ResourceGroup, c.Group); err != nil {
		return Membership{}, err
	}
	if err := s.RequireLeader(); err != nil {
		return Membership{}, err
	}
	cur, err := s.groups.Membership(c.Group, c.MemberID)
	if err != nil {
		return Membership{}, err
	}
	owned := ownedQueues(cur)
	var queues []consumer.TQ
	seen := map[consumer.TQ]bool{}
	for _, q := range c.Queues {
		if owned[q] && !seen[q] {
			seen[q] = true
			queues = append(queues, q)
		}
	}
	c.Queues = queues
	var offsets []consumer.Offset
	for _, o := range c.Offsets {
		if owned[consumer.TQ{Topic: o.Topic, Queue: o.Queue}] {
			offsets = append(offsets, o)
		}
	}
	c.Offsets = lastOffsets(offsets)
	if err := checkSize(s, fsm.ReleaseQueues, c); err != nil {
		return Membership{}, err
	}
	m, err := propose(s, ctx, fsm.ReleaseQueues, c)
	if err != nil {
		return Membership{}, err
	}
	s.sess.beat(c.Group, c.MemberID, s.cfg.Clock())
	s.sess.released(c.Group, c.MemberID)
	return Membership{Membership: m, SessionTimeout: memberSession(m)}, nil
}

// ownedQueues is the set of queues a member owns: delivering or revoking.
func ownedQueues(m consumer.Membership) map[consumer.TQ]bool {
	owned := map[consumer.TQ]bool{}
	for _, q := range append(append([]consumer.TQ(nil), m.Assignment...), m.Revoking...) {
		owned[q] = true
	}
	return owned
}

// lastOffsets keeps one offset per queue, the last one given (a later
// entry for a queue overrides an earlier one), in the order of each
// queue's first entry.
func lastOffsets(offs []consumer.Offset) []consumer.Offset {
	at := map[consumer.TQ]int{}
	var out []consumer.Offset
	for _, o := range offs {
		q := consumer.TQ{Topic: o.Topic, Queue: o.Queue}
		if i, ok := at[q]; ok {
			out[i] = o
			continue
		}
		at[q] = len(out)
		out = append(out, o)
	}
	return out
}

// LeaveGroup removes a member and rebalances its queues to the others.
func (s *Service) LeaveGroup(ctx context.Context, group, member string) error {
	if err := s.Authorize(ctx, wire.OpConsume, wire.ResourceGroup, group); err != nil {
		return err
	}
	if err := s.RequireLeader(); err != nil {
		return err
	}
	if _, err := s.groups.Membership(group, member); err != nil {
		return err
	}
	_, err := propose(s, ctx, fsm.LeaveGroup, consumer.LeaveCmd{Group: group, MemberID: member, Reason: "left"})
	return err
}

// CommitOffsets records a member's committed offsets, fenced by its
// generation and ownership of each queue. The fences are checked before
// proposing too, so a commit that would be refused is never logged, and
// repeats of a queue are collapsed (the last wins): the command is
// bounded by the queues the member owns.
func (s *Service) CommitOffsets(ctx context.Context, c consumer.CommitCmd) error {
	if err := s.Authorize(ctx, wire.OpConsume, wire.ResourceGroup, c.Group); err != nil {
		return err
	}
	if err := s.RequireLeader(); err != nil {
		return err
	}
	cur, err := s.groups.Membership(c.Group, c.MemberID)
	if err != nil {
		return err
	}
	if c.Generation == 0 || c.Generation > cur.Generation {
		return fmt.Errorf("%w: commit for generation %d, the group is at %d", consumer.ErrIllegalGeneration, c.Generation, cur.Generation)
	}
	owned := ownedQueues(cur)
	for _, o := range c.Offsets {
		if !owned[consumer.TQ{Topic: o.Topic, Queue: o.Queue}] {
			return fmt.Errorf("%w: %s/%d", consumer.ErrNotAssigned, o.Topic, o.Queue)
		}
	}
	c.Offsets = lastOffsets(c.Offsets)
	if err := checkSize(s, fsm.CommitOffsets, c); err != nil {
		return err
	}
	if _, err := propose(s, ctx, fsm.CommitOffsets, c); err != nil {
		return err
	}
	s.sess.beat(c.Group, c.MemberID, s.cfg.Clock())
	return nil
}

// DeleteGroup deletes a group without members, with its committed
// offsets.
func (s *Service) DeleteGroup(ctx context.Context, group string) (err error) {
	if err := s.Authorize(ctx, wire.OpDelete, wire.ResourceGroup, group); err != nil {
		return err
	}
	defer func() { s.audited(ctx, "group_delete", perm{rtype: wire.ResourceGroup, name: group}, "", err) }()
	if err := s.RequireLeader(); err != nil {
		return err
	}
	n, ok := s.groups.Exists(group)
	if !ok {
		return fmt.Errorf("%w: %s", consumer.ErrGroupNotFound, group)
	}
	if n > 0 {
		return fmt.Errorf("%w: %s has %d members; stop them first", consumer.ErrGroupActive, group, n)
	}
	_, err = propose(s, ctx, fsm.DeleteGroup, consumer.DeleteGroupCmd{Group: group})
	return err
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
func (s *Service) ResetOffsets(ctx context.Context, group, topic string, to ResetTo) (_ wire.GroupInfo, err error) {
	if err := s.Authorize(ctx, wire.OpAlter, wire.ResourceGroup, group); err != nil {
		return wire.GroupInfo{}, err
	}
	// and describe on the topic: else a group's alter would tell whether
	// any topic exists, its offsets and its messages' timestamps.
	if err := s.Authorize(ctx, wire.OpDescribe, wire.ResourceTopic, topic); err != nil {
		return wire.GroupInfo{}, err
	}
	defer func() {
		s.audited(ctx, "group_reset", perm{rtype: wire.ResourceGroup, name: group}, "topic "+topic+" to "+to.To, err)
	}()
	t, err := s.topics.Lookup(topic)
	if err != nil {
		return wire.GroupInfo{}, err
	}
	if to.To != "earliest" && to.To != "latest" && to.To != "time" && to.To != "offset" {
		return wire.GroupInfo{}, Errorf(wire.CodeInvalidArgument, "to must be earliest, latest, time or offset")
	}
	// A refused reset changes nothing: it is checked here, before it is
	// proposed, and a group it would create counts against the quota.
	n, exists := s.groups.Exists(group)
	if !exists {
		if err := topics.CheckNewName("group", group); err != nil {
			return wire.GroupInfo{}, err
		}
	} else if n > 0 {
		return wire.GroupInfo{}, fmt.Errorf("%w: %s has %d members; stop them first", consumer.ErrGroupActive, group, n)
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
	if err := s.RequireLeader(); err != nil {
		return wire.GroupInfo{}, err
	}
	if !exists {
		release, err := s.reserveGroup(s.quotas())
		if err != nil {
			return wire.GroupInfo{}, err
		}
		defer release()
	}
	if err := checkSize(s, fsm.ResetOffsets, c); err != nil {
		return wire.GroupInfo{}, err
	}
	if _, err := propose(s, ctx, fsm.ResetOffsets, c); err != nil {
		return wire.GroupInfo{}, err
	}
	return s.describeGroup(ctx, group)
}

// ListGroups returns every group the request may describe by name.
func (s *Service) ListGroups(ctx context.Context) []wire.GroupInfo {
	out := []wire.GroupInfo{}
	for _, g := range s.groups.List() {
		if !s.mayDescribe(ctx, wire.ResourceGroup, g.Name) {
			continue
		}
		out = append(out, s.groupInfo(ctx, g))
	}
	return out
}

// DescribeGroup returns a group with the lag of every queue it knows.
func (s *Service) DescribeGroup(ctx context.Context, group string) (wire.GroupInfo, error) {
	if err := s.Authorize(ctx, wire.OpDescribe, wire.ResourceGroup, group); err != nil {
		return wire.GroupInfo{}, err
	}
	return s.describeGroup(ctx, group)
}

func (s *Service) describeGroup(ctx context.Context, group string) (wire.GroupInfo, error) {
	if err := s.readableAt(context.Background(), 0, 0); err != nil {
		return wire.GroupInfo{}, err
	}
	g, err := s.groups.Describe(group)
	if err != nil {
		return wire.GroupInfo{}, err
	}
	return s.groupInfo(ctx, g), nil
}

// groupInfo describes g to the request in ctx: the queues (offsets, lag)
// of topics it may not describe are left out.
func (s *Service) groupInfo(ctx context.Context, g consumer.GroupView) wire.GroupInfo {
	info := wire.GroupInfo{Group: g.Name, Generation: g.Generation, Members: []wire.GroupMember{}, Queues: []wire.GroupQueue{}}
	owner := map[consumer.TQ]string{}
	topicSet := map[string]bool{}
	for _, m := range g.Members {
		info.Members = append(info.Members, wire.GroupMember{MemberID: m.ID, InstanceID: m.InstanceID, Topics: m.Topics,
			SessionTimeoutMs: m.SessionTimeoutMs, Assignment: WireQueues(g.Assignment[m.ID]), Revoking: nilIfEmpty(WireQueues(g.Revoking[m.ID]))})
		for _, q := range append(g.Assignment[m.ID], g.Revoking[m.ID]...) {
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
		if !topicSet[t.Name] || !s.mayDescribe(ctx, wire.ResourceTopic, t.Name) {
			continue
		}
		for i := 0; i < t.Queues; i++ {
			q, _ := t.Queue(i)
			next, _ := q.Bounds()
			tq := consumer.TQ{Topic: t.Name, Queue: i}
			gq := wire.GroupQueue{Topic: t.Name, Queue: i, Owner: owner[tq], Next: next, Lag: next}
			if target := g.Targets[tq]; target != gq.Owner {
				gq.Target = target
			}
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

// removeMember proposes a member's leave, which hands its queues on.
func (s *Service) removeMember(r consumer.MemberRef, reason string) {
	s.logger.Info("removing group member", "group", r.Group, "member", r.MemberID, "reason", reason)
	_, err := propose(s, context.Background(), fsm.LeaveGroup, consumer.LeaveCmd{Group: r.Group, MemberID: r.MemberID, Reason: reason})
	if err != nil {
		s.logger.Warn("remove group member", "group", r.Group, "member", r.MemberID, "err", err)
	}
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
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
		members, now := s.groups.Members(), s.cfg.Clock()
		for _, r := range s.sess.expired(members, now) {
			s.removeMember(r, "session expired")
		}
		for _, r := range s.sess.stuck(members, now) {
			s.removeMember(r, "did not release its revoked queues within its session timeout")
		}
	}
}
