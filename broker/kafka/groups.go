package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/consumer"
	"github.com/ledgermq/ledgermq/wire"
)

// The classic consumer group protocol (JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup) with client-side assignment. As in Kafka, membership lives
// in the coordinator's memory on the group's leader (here: the Raft
// leader) and committed offsets are replicated (here: through Raft, in
// the same consumer state the LedgerMQ protocol and mqctl use). After a
// failover the members find the new coordinator and join again; their
// offsets are where they committed them. A group is joined through one
// protocol at a time (service.ClaimGroup).

const (
	minSessionTimeout = time.Second
	maxSessionTimeout = 30 * time.Minute
	coordinatorTick   = 100 * time.Millisecond
)

type groupState int

const (
	stateEmpty groupState = iota
	statePreparing
	stateCompleting
	stateStable
)

func (g groupState) String() string {
	return [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable"}[g]
}

type member struct {
	id, instanceID, clientID, host string
	session, rebalance             time.Duration
	protocols                      []kmsg.JoinGroupRequestProtocol
	lastSeen                       time.Time
	joined                         bool                         // joined the rebalance under way
	joinWait                       chan *kmsg.JoinGroupResponse // its pending JoinGroup answer
	assignment                     []byte
}

func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

type group struct {
	name         string
	state        groupState
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*member
	pending      map[string]time.Time // member ids handed out by MEMBER_ID_REQUIRED, not joined yet
	deadline     time.Time            // of the join phase
	synced       chan struct{}        // closed when the leader's assignments arrive (or the round ends)
	release      func()               // the service claim
}

type coordinator struct {
	svc    *service.Service
	logger *slog.Logger
	stop   <-chan struct{}
	mu     sync.Mutex
	groups map[string]*group
}

func newCoordinator(svc *service.Service, logger *slog.Logger, stop <-chan struct{}) *coordinator {
	return &coordinator{svc: svc, logger: logger, stop: stop, groups: map[string]*group{}}
}

// run expires members and ends join phases on time; on losing leadership
// it forgets every group (members find the new coordinator).
func (c *coordinator) run() {
	t := time.NewTicker(coordinatorTick)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			c.dropAll()
			return
		case <-t.C:
		}
		if !c.svc.Node().IsLeader() {
			c.dropAll()
			continue
		}
		c.mu.Lock()
		now := time.Now()
		for _, g := range c.groups {
			for id, m := range g.members {
				alive := now.Sub(m.lastSeen) <= m.session
				if g.state == statePreparing && m.joinWait != nil {
					alive = true // waiting in JoinGroup: bounded by the join phase
				}
				if !alive {
					c.logger.Info("kafka group member expired", "group", g.name, "member", id)
					c.removeLocked(g, id)
				}
			}
			for id, at := range g.pending {
				if now.Sub(at) > max(minSessionTimeout, 2*time.Minute) {
					delete(g.pending, id)
				}
			}
			if len(g.members) == 0 {
				if len(g.pending) == 0 {
					c.emptyLocked(g) // ids handed out, never used
				}
				continue
			}
			if g.state == statePreparing && (now.After(g.deadline) || c.allJoined(g)) {
				c.completeJoinLocked(g)
			}
		}
		c.mu.Unlock()
	}
}

func (c *coordinator) dropAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, g := range c.groups {
		for _, m := range g.members {
			if m.joinWait != nil {
				r := kmsg.NewPtrJoinGroupResponse()
				r.ErrorCode = errNotCoordinator
				m.joinWait <- r
				m.joinWait = nil
			}
		}
		if g.synced != nil {
			close(g.synced)
			g.synced = nil
		}
		if g.release != nil {
			g.release()
		}
		delete(c.groups, name)
	}
}

func newMemberID(clientID string) string {
	var b [12]byte
	rand.Read(b[:])
	if clientID == "" {
		clientID = "member"
	}
	return clientID + "-" + hex.EncodeToString(b[:])
}

func (c *coordinator) allJoined(g *group) bool {
	for _, m := range g.members {
		if !m.joined {
			return false
		}
	}
	return len(g.members) > 0
}

// removeLocked removes a member; the others rebalance.
func (c *coordinator) removeLocked(g *group, id string) {
	m := g.members[id]
	if m == nil {
		return
	}
	if m.joinWait != nil {
		r := kmsg.NewPtrJoinGroupResponse()
		r.ErrorCode = errUnknownMemberID
		m.joinWait <- r
	}
	delete(g.members, id)
	if len(g.members) == 0 {
		c.emptyLocked(g)
		return
	}
	c.prepareLocked(g)
	if c.allJoined(g) {
		c.completeJoinLocked(g)
	}
}

// emptyLocked ends a group with no members: its claim is released and its
// offsets stay in the service's state.
func (c *coordinator) emptyLocked(g *group) {
	if g.synced != nil {
		close(g.synced)
		g.synced = nil
	}
	if g.release != nil {
		g.release()
		g.release = nil
	}
	delete(c.groups, g.name)
}

// prepareLocked starts a rebalance: every member must join again within
// the longest rebalance timeout.
func (c *coordinator) prepareLocked(g *group) {
	if g.state == statePreparing {
		return
	}
	if g.synced != nil {
		close(g.synced) // a SyncGroup waiting for the old round ends with REBALANCE_IN_PROGRESS
		g.synced = nil
	}
	g.state = statePreparing
	longest := time.Duration(0)
	for _, m := range g.members {
		m.joined = false
		longest = max(longest, m.rebalance)
	}
	g.deadline = time.Now().Add(max(longest, time.Second))
}

// completeJoinLocked ends the join phase: members that did not join are
// removed, a protocol all support is chosen, and every waiting JoinGroup
// is answered.
func (c *coordinator) completeJoinLocked(g *group) {
	for id, m := range g.members {
		if !m.joined {
			delete(g.members, id)
		}
	}
	if len(g.members) == 0 {
		c.emptyLocked(g)
		return
	}
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if g.members[g.leader] == nil {
		g.leader = ids[0]
	}
	g.protocol = c.chooseProtocol(g, ids)
	g.generation++
	g.state = stateCompleting
	g.synced = make(chan struct{})
	for _, id := range ids {
		m := g.members[id]
		m.assignment = nil
		m.lastSeen = time.Now()
		r := kmsg.NewPtrJoinGroupResponse()
		r.Generation, r.Protocol, r.ProtocolType = g.generation, strp(g.protocol), strp(g.protocolType)
		r.LeaderID, r.MemberID = g.leader, id
		if id == g.leader {
			for _, oid := range ids {
				om := g.members[oid]
				jm := kmsg.NewJoinGroupResponseMember()
				jm.MemberID, jm.ProtocolMetadata = oid, om.metadataFor(g.protocol)
				if om.instanceID != "" {
					jm.InstanceID = strp(om.instanceID)
				}
				r.Members = append(r.Members, jm)
			}
		}
		if m.joinWait != nil {
			m.joinWait <- r
			m.joinWait = nil
		}
	}
}

// chooseProtocol picks the leader's most preferred protocol that every
// member supports (join checked that one exists).
func (c *coordinator) chooseProtocol(g *group, ids []string) string {
	lead := g.members[g.leader]
	for _, p := range lead.protocols {
		all := true
		for _, id := range ids {
			if g.members[id].metadataFor(p.Name) == nil && !hasProtocol(g.members[id], p.Name) {
				all = false
				break
			}
		}
		if all {
			return p.Name
		}
	}
	return lead.protocols[0].Name
}

func hasProtocol(m *member, name string) bool {
	for _, p := range m.protocols {
		if p.Name == name {
			return true
		}
	}
	return false
}

// compatible reports whether protocols share a name with every member.
func compatible(g *group, skip string, protocols []kmsg.JoinGroupRequestProtocol) bool {
	for _, p := range protocols {
		all := true
		for id, m := range g.members {
			if id != skip && !hasProtocol(m, p.Name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func (c *coordinator) join(ctx context.Context, req *kmsg.JoinGroupRequest, clientID, remote string) kmsg.Response {
	fail := func(code int16) kmsg.Response {
		r := req.ResponseKind().(*kmsg.JoinGroupResponse)
		r.ErrorCode, r.MemberID, r.Generation = code, req.MemberID, -1
		return r
	}
	if code := c.check(ctx, req.Group, wire.OpConsume); code != errNone {
		return fail(code)
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	rebalance := session
	if req.Version >= 1 && req.RebalanceTimeoutMillis > 0 {
		rebalance = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	}
	if session < minSessionTimeout || session > maxSessionTimeout {
		return fail(errInvalidSessionTimeout)
	}
	if req.ProtocolType == "" || len(req.Protocols) == 0 {
		return fail(errInconsistentProtocol)
	}
	c.mu.Lock()
	g := c.groups[req.Group]
	if g == nil {
		release, err := c.svc.ClaimGroup(req.Group)
		if err != nil {
			c.mu.Unlock()
			code, _ := codeFor(c.svc, err, onGroup)
			return fail(code)
		}
		g = &group{name: req.Group, protocolType: req.ProtocolType, members: map[string]*member{},
			pending: map[string]time.Time{}, release: release}
		c.groups[req.Group] = g
	}
	if g.protocolType != req.ProtocolType || !compatible(g, req.MemberID, req.Protocols) {
		if len(g.members) == 0 && len(g.pending) == 0 {
			c.emptyLocked(g)
		}
		c.mu.Unlock()
		return fail(errInconsistentProtocol)
	}
	id := req.MemberID
	if id == "" && req.InstanceID != nil {
		// A static member (KIP-345) coming back takes its old place.
		for mid, om := range g.members {
			if om.instanceID == *req.InstanceID {
				id = mid
			}
		}
	}
	switch {
	case id == "" && req.Version >= 4 && req.InstanceID == nil:
		// KIP-394: the member gets its id first and joins with it.
		id = newMemberID(clientID)
		g.pending[id] = time.Now()
		c.mu.Unlock()
		r := req.ResponseKind().(*kmsg.JoinGroupResponse)
		r.ErrorCode, r.MemberID, r.Generation = errMemberIDRequired, id, -1
		return r
	case id == "":
		id = newMemberID(clientID)
	case g.members[id] == nil:
		if _, ok := g.pending[id]; !ok {
			c.mu.Unlock()
			return fail(errUnknownMemberID)
		}
		delete(g.pending, id)
	}
	m := g.members[id]
	if m == nil {
		m = &member{id: id}
		g.members[id] = m
	}
	if m.joinWait != nil { // a second JoinGroup of the same member: the first is answered now
		r := kmsg.NewPtrJoinGroupResponse()
		r.ErrorCode = errRebalanceInProgress
		m.joinWait <- r
	}
	m.clientID, m.host, m.session, m.rebalance = clientID, remote, session, rebalance
	if req.InstanceID != nil {
		m.instanceID = *req.InstanceID
	}
	m.protocols, m.lastSeen, m.joined = req.Protocols, time.Now(), true
	wait := make(chan *kmsg.JoinGroupResponse, 1)
	m.joinWait = wait
	if g.leader == "" {
		g.leader = id
	}
	// A join of a stable group whose member changed nothing could be
	// answered at once; Kafka rebalances, and so does this.
	if g.state != statePreparing {
		c.prepareLocked(g)
		m.joined = true
	}
	if c.allJoined(g) {
		c.completeJoinLocked(g)
	}
	c.mu.Unlock()
	select {
	case r := <-wait:
		r.SetVersion(req.Version)
		if r.ErrorCode != errNone {
			r.MemberID = id
		}
		return r
	case <-ctx.Done():
		return fail(errCoordinatorNotAvail)
	}
}

// check authorizes op on the group and requires leadership.
func (c *coordinator) check(ctx context.Context, group, op string) int16 {
	if group == "" {
		return errInvalidGroupID
	}
	if err := c.svc.Authorize(ctx, op, wire.ResourceGroup, group); err != nil {
		code, _ := codeFor(c.svc, err, onGroup)
		return code
	}
	if err := c.svc.RequireLeader(); err != nil {
		return errNotCoordinator
	}
	return errNone
}

// memberLocked finds a member of the given generation.
func (c *coordinator) memberLocked(group, id string, generation int32) (*group, *member, int16) {
	g := c.groups[group]
	if g == nil || g.members[id] == nil {
		return g, nil, errUnknownMemberID
	}
	if generation != g.generation {
		return g, nil, errIllegalGeneration
	}
	return g, g.members[id], errNone
}

func (c *coordinator) sync(ctx context.Context, req *kmsg.SyncGroupRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	if resp.ErrorCode = c.check(ctx, req.Group, wire.OpConsume); resp.ErrorCode != errNone {
		return resp
	}
	c.mu.Lock()
	g, m, code := c.memberLocked(req.Group, req.MemberID, req.Generation)
	if code != errNone {
		c.mu.Unlock()
		resp.ErrorCode = code
		return resp
	}
	if g.state == statePreparing {
		c.mu.Unlock()
		resp.ErrorCode = errRebalanceInProgress
		return resp
	}
	m.lastSeen = time.Now()
	if g.state == stateCompleting && req.MemberID == g.leader {
		for _, a := range req.GroupAssignment {
			if om := g.members[a.MemberID]; om != nil {
				om.assignment = a.MemberAssignment
			}
		}
		g.state = stateStable
		close(g.synced)
		g.synced = nil
	}
	synced := g.synced
	c.mu.Unlock()
	if synced != nil {
		select {
		case <-synced:
		case <-ctx.Done():
			resp.ErrorCode = errCoordinatorNotAvail
			return resp
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g, m, code = c.memberLocked(req.Group, req.MemberID, req.Generation)
	switch {
	case code != errNone:
		resp.ErrorCode = code
	case g.state != stateStable:
		resp.ErrorCode = errRebalanceInProgress
	default:
		resp.Protocol, resp.ProtocolType = strp(g.protocol), strp(g.protocolType)
		resp.MemberAssignment = m.assignment
		if resp.MemberAssignment == nil {
			resp.MemberAssignment = []byte{}
		}
	}
	return resp
}

func (c *coordinator) heartbeat(ctx context.Context, req *kmsg.HeartbeatRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if resp.ErrorCode = c.check(ctx, req.Group, wire.OpConsume); resp.ErrorCode != errNone {
		return resp
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g, m, code := c.memberLocked(req.Group, req.MemberID, req.Generation)
	if code == errIllegalGeneration && g.state == statePreparing {
		code = errRebalanceInProgress
	}
	if code != errNone {
		resp.ErrorCode = code
		return resp
	}
	m.lastSeen = time.Now()
	if g.state == statePreparing {
		resp.ErrorCode = errRebalanceInProgress
	}
	return resp
}

func (c *coordinator) leave(ctx context.Context, req *kmsg.LeaveGroupRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if resp.ErrorCode = c.check(ctx, req.Group, wire.OpConsume); resp.ErrorCode != errNone {
		return resp
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[req.Group]
	leaveOne := func(id, instance string) int16 {
		if g == nil {
			return errUnknownMemberID
		}
		if id == "" && instance != "" {
			for mid, m := range g.members {
				if m.instanceID == instance {
					id = mid
				}
			}
		}
		if g.members[id] == nil {
			return errUnknownMemberID
		}
		c.removeLocked(g, id)
		return errNone
	}
	if req.Version < 3 {
		resp.ErrorCode = leaveOne(req.MemberID, "")
		return resp
	}
	for _, lm := range req.Members {
		inst := ""
		if lm.InstanceID != nil {
			inst = *lm.InstanceID
		}
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = lm.MemberID, lm.InstanceID
		rm.ErrorCode = leaveOne(lm.MemberID, inst)
		resp.Members = append(resp.Members, rm)
	}
	return resp
}

func (c *coordinator) offsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	code := c.check(ctx, req.Group, wire.OpConsume)
	if code == errNone {
		c.mu.Lock()
		g := c.groups[req.Group]
		switch {
		case req.Generation < 0 && req.MemberID == "":
			// A commit outside any group membership (manual assignment):
			// allowed while no Kafka member is in the group.
			if g != nil && len(g.members) > 0 {
				code = errUnknownMemberID
			}
		default:
			var m *member
			// As in Kafka: a member of the current generation may commit
			// while the group prepares a rebalance (cooperative members
			// commit what they give up), not between the join and its
			// SyncGroup.
			g, m, code = c.memberLocked(req.Group, req.MemberID, req.Generation)
			if code == errNone && g.state == stateCompleting {
				code = errRebalanceInProgress
			}
			if m != nil {
				m.lastSeen = time.Now()
			}
		}
		c.mu.Unlock()
	}
	var offs []consumer.Offset
	if code == errNone {
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				if p.Offset >= 0 && p.Partition >= 0 {
					offs = append(offs, consumer.Offset{Topic: t.Topic, Queue: int(p.Partition), Offset: uint64(p.Offset)})
				}
			}
		}
		if err := c.svc.StoreGroupOffsets(ctx, req.Group, offs); err != nil {
			code, _ = codeFor(c.svc, err, onGroup)
			if code == errInvalidGroupID || code == errUnknownTopicOrPart {
				code, _ = codeFor(c.svc, err, onTopic)
			}
		}
	}
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			if code == errNone && (p.Offset < 0 || p.Partition < 0) {
				rp.ErrorCode = errInvalidRequest
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (c *coordinator) offsetFetch(ctx context.Context, req *kmsg.OffsetFetchRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	code := c.check(ctx, req.Group, wire.OpDescribe)
	committed := map[string]map[int32]int64{}
	if code == errNone {
		info, err := c.svc.DescribeGroup(ctx, req.Group)
		if err != nil {
			if ae := c.svc.AsError(err); ae.Code != wire.CodeGroupNotFound {
				code, _ = codeFor(c.svc, err, onGroup)
			}
		}
		for _, q := range info.Queues {
			if q.Committed == nil {
				continue
			}
			if committed[q.Topic] == nil {
				committed[q.Topic] = map[int32]int64{}
			}
			committed[q.Topic][int32(q.Queue)] = int64(*q.Committed)
		}
	}
	resp.ErrorCode = code
	topicsWanted := req.Topics
	if topicsWanted == nil { // every committed offset
		names := make([]string, 0, len(committed))
		for t := range committed {
			names = append(names, t)
		}
		sort.Strings(names)
		for _, t := range names {
			ft := kmsg.NewOffsetFetchRequestTopic()
			ft.Topic = t
			for p := range committed[t] {
				ft.Partitions = append(ft.Partitions, p)
			}
			sort.Slice(ft.Partitions, func(i, j int) bool { return ft.Partitions[i] < ft.Partitions[j] })
			topicsWanted = append(topicsWanted, ft)
		}
	}
	for _, t := range topicsWanted {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p, -1, -1, code
			if off, ok := committed[t.Topic][p]; ok {
				rp.Offset = off
			}
			rp.Metadata = strp("")
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (c *coordinator) describe(ctx context.Context, req *kmsg.DescribeGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range req.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = name
		if dg.ErrorCode = c.check(ctx, name, wire.OpDescribe); dg.ErrorCode != errNone {
			resp.Groups = append(resp.Groups, dg)
			continue
		}
		c.mu.Lock()
		g := c.groups[name]
		if g == nil {
			dg.State = "Dead"
			if _, err := c.svc.DescribeGroup(ctx, name); err == nil {
				dg.State, dg.ProtocolType = "Empty", "consumer"
			}
		} else {
			dg.State, dg.ProtocolType, dg.Protocol = g.state.String(), g.protocolType, g.protocol
			ids := make([]string, 0, len(g.members))
			for id := range g.members {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			for _, id := range ids {
				m := g.members[id]
				dm := kmsg.NewDescribeGroupsResponseGroupMember()
				dm.MemberID, dm.ClientID, dm.ClientHost = id, m.clientID, m.host
				if m.instanceID != "" {
					dm.InstanceID = strp(m.instanceID)
				}
				dm.ProtocolMetadata, dm.MemberAssignment = m.metadataFor(g.protocol), m.assignment
				dg.Members = append(dg.Members, dm)
			}
		}
		c.mu.Unlock()
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

func (c *coordinator) list(ctx context.Context, req *kmsg.ListGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	if err := c.svc.RequireLeader(); err != nil {
		resp.ErrorCode = errNotCoordinator
		return resp
	}
	seen := map[string]bool{}
	want := map[string]bool{}
	for _, s := range req.StatesFilter {
		want[s] = true
	}
	add := func(name, ptype, state string) {
		if seen[name] || (len(want) > 0 && !want[state]) {
			return
		}
		seen[name] = true
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState = name, ptype, state
		resp.Groups = append(resp.Groups, lg)
	}
	c.mu.Lock()
	var mine [][3]string
	for name, g := range c.groups {
		mine = append(mine, [3]string{name, g.protocolType, g.state.String()})
	}
	c.mu.Unlock()
	for _, g := range mine {
		if c.svc.Authorize(ctx, wire.OpDescribe, wire.ResourceGroup, g[0]) == nil {
			add(g[0], g[1], g[2])
		}
	}
	for _, g := range c.svc.ListGroups(ctx) {
		state, ptype := "Empty", "consumer"
		if len(g.Members) > 0 {
			state, ptype = "Stable", "ledgermq"
		}
		add(g.Group, ptype, state)
	}
	return resp
}

// deleteGroups deletes groups without members, with their committed
// offsets (the same as DELETE /v1/groups/{g}).
func (c *coordinator) deleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, name := range req.Groups {
		dg := kmsg.NewDeleteGroupsResponseGroup()
		dg.Group = name
		c.mu.Lock()
		g := c.groups[name]
		active := g != nil && len(g.members) > 0
		c.mu.Unlock()
		switch {
		case active:
			dg.ErrorCode = errNonEmptyGroup
		default:
			if err := c.svc.DeleteGroup(ctx, name); err != nil {
				dg.ErrorCode, _ = codeFor(c.svc, err, onGroup)
				if dg.ErrorCode == errInconsistentProtocol {
					dg.ErrorCode = errNonEmptyGroup
				}
			}
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}
