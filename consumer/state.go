package consumer

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Errors. The broker maps each to an API code.
var (
	ErrGroupNotFound     = errors.New("consumer: group not found")
	ErrUnknownMember     = errors.New("consumer: unknown member")
	ErrIllegalGeneration = errors.New("consumer: illegal generation")
	ErrNotAssigned       = errors.New("consumer: queue not assigned to this member")
	ErrGroupActive       = errors.New("consumer: group has members")
	ErrInvalid           = errors.New("consumer: invalid request")
)

// QueueCounter reports a topic's queue count (false if it does not exist).
// It reads the replicated topic state, so it is deterministic too.
type QueueCounter func(topic string) (int, bool)

// TQ names a queue.
type TQ struct {
	Topic string
	Queue int
}

func (q TQ) key() string { return q.Topic + "/" + strconv.Itoa(q.Queue) }

// Member is one group member. InstanceID, when set, makes it static: a
// join with the same instance id replaces it (see JoinCmd).
type Member struct {
	ID               string
	InstanceID       string
	Topics           []string
	SessionTimeoutMs int64
}

// Group is one consumer group. Every queue of its members' topics has a
// target (the member the assignor gives it to) and at most one owner (the
// member that may deliver it). A queue whose target moves keeps its owner
// until the owner releases it (or leaves); only then does the target
// become the owner. So no two members ever own a queue at once.
type Group struct {
	Name       string
	Generation uint64 // bumped by every change of members, targets or owners
	Members    map[string]*Member
	Owners     map[string]string // TQ.key() -> owning member
	Targets    map[string]string // TQ.key() -> target member
	Offsets    map[string]uint64 // TQ.key() -> committed next offset
	nextMember uint64
	// legacy: the group's membership last changed by a command of the
	// first group protocol (codes 16-18, written before the two-step
	// handover), or it was restored from a snapshot of that time. Such a
	// group is rebalanced as it was then (round robin, queues handed over
	// at once) and its commits fenced by exact generation, so that a log
	// written by an earlier version replays to the offsets it acknowledged.
	legacy bool
}

// Command payloads (JSON after the type byte).
type (
	// JoinCmd adds a member, or updates one (MemberID set). With an
	// InstanceID that a current member has, the new member replaces that
	// one: it gets a new id and the old member's queues, owned and
	// targeted, and the old id is gone (fenced).
	JoinCmd struct {
		Group            string   `json:"group"`
		MemberID         string   `json:"member_id"`
		InstanceID       string   `json:"instance_id,omitempty"`
		Topics           []string `json:"topics"`
		SessionTimeoutMs int64    `json:"session_timeout_ms"`
	}
	// ReleaseCmd gives up queues the member owns, committing Offsets for
	// them in the same step; queues it does not own are skipped.
	ReleaseCmd struct {
		Group    string   `json:"group"`
		MemberID string   `json:"member_id"`
		Queues   []TQ     `json:"queues"`
		Offsets  []Offset `json:"offsets,omitempty"`
	}
	LeaveCmd struct {
		Group    string `json:"group"`
		MemberID string `json:"member_id"`
		Reason   string `json:"reason"`
	}
	CommitCmd struct {
		Group      string   `json:"group"`
		MemberID   string   `json:"member_id"`
		Generation uint64   `json:"generation"`
		Offsets    []Offset `json:"offsets"`
	}
	ResetCmd struct {
		Group   string   `json:"group"`
		Offsets []Offset `json:"offsets"`
	}
	// DeleteGroupCmd deletes a group without members, with its committed
	// offsets.
	DeleteGroupCmd struct {
		Group string `json:"group"`
	}
	Offset struct {
		Topic  string `json:"topic"`
		Queue  int    `json:"queue"`
		Offset uint64 `json:"offset"`
	}
)

// AppendPayload appends a command payload (JSON); the command registry
// (package fsm) frames it behind the command's code.
func AppendPayload[C JoinCmd | LeaveCmd | CommitCmd | ResetCmd | ReleaseCmd | DeleteGroupCmd](dst []byte, c C) []byte {
	b, _ := json.Marshal(c)
	return append(dst, b...)
}

// DecodePayload decodes a command payload.
func DecodePayload[C JoinCmd | LeaveCmd | CommitCmd | ResetCmd | ReleaseCmd | DeleteGroupCmd](b []byte) (C, error) {
	var c C
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return c, nil
}

// State is all groups. Apply is called from one goroutine; the read methods
// are safe alongside it.
type State struct {
	mu      sync.RWMutex
	groups  map[string]*Group
	queues  QueueCounter
	changed chan struct{} // closed and replaced when a group changes
}

// New returns an empty state reading queue counts from queues.
func New(queues QueueCounter) *State {
	return &State{groups: map[string]*Group{}, queues: queues, changed: make(chan struct{})}
}

// Changed returns a channel closed at the next change of any group's
// members, targets or owners (for long-polled heartbeats).
func (s *State) Changed() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.changed
}

// notify wakes the waiters of Changed; s.mu held.
func (s *State) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Membership is a member's view: its id, the group's generation, the
// queues it owns and may deliver (Assignment) and the queues it owns but
// must release (Revoking: their target is another member).
type Membership struct {
	MemberID         string
	Generation       uint64
	Assignment       []TQ
	Revoking         []TQ
	SessionTimeoutMs int64
}

// The methods below apply committed commands, called by the command
// registry (package fsm) from its one Apply goroutine in log order. They
// are deterministic.

// Join adds a member (a new one when c.MemberID is empty) or updates its
// subscription, and rebalances the group.
func (s *State) Join(c JoinCmd) (Membership, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notify()
	return s.joinAs(c, false)
}

// Leave removes a member and rebalances the group.
func (s *State) Leave(c LeaveCmd) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notify()
	return s.leave(c, false)
}

// JoinV1, LeaveV1 and CommitV1 apply the commands of the first group
// protocol (see Group.legacy), for logs written by earlier versions.
func (s *State) JoinV1(c JoinCmd) (Membership, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notify()
	c.InstanceID = ""
	return s.joinAs(c, true)
}

// LeaveV1: see JoinV1.
func (s *State) LeaveV1(c LeaveCmd) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notify()
	return s.leave(c, true)
}

// CommitV1: see JoinV1. The commit's generation must be the group's.
func (s *State) CommitV1(c CommitCmd) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.groups[c.Group]; g != nil && g.Members[c.MemberID] != nil && c.Generation != g.Generation {
		return fmt.Errorf("%w: commit for generation %d, the group is at %d", ErrIllegalGeneration, c.Generation, g.Generation)
	}
	return s.commit(c)
}

// Commit records a member's committed offsets, fenced by generation and
// ownership.
func (s *State) Commit(c CommitCmd) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commit(c)
}

// Release gives up queues a member owns (see ReleaseCmd).
func (s *State) Release(c ReleaseCmd) (Membership, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notify()
	return s.release(c)
}

// Reset sets an empty group's committed offsets.
func (s *State) Reset(c ResetCmd) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reset(c)
}

// DeleteGroup deletes a group that has no members.
func (s *State) DeleteGroup(c DeleteGroupCmd) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[c.Group]
	if g == nil {
		return fmt.Errorf("%w: %s", ErrGroupNotFound, c.Group)
	}
	if len(g.Members) > 0 {
		return fmt.Errorf("%w: %s has %d members; stop them first", ErrGroupActive, c.Group, len(g.Members))
	}
	delete(s.groups, c.Group)
	s.notify()
	return nil
}

// Exists reports whether a group exists and how many members it has.
func (s *State) Exists(group string) (members int, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.groups[group]
	if g == nil {
		return 0, false
	}
	return len(g.Members), true
}

// Count returns the number of groups.
func (s *State) Count() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.groups)
}

func (s *State) group(name string) *Group {
	g := s.groups[name]
	if g == nil {
		g = newGroup(name)
		s.groups[name] = g
	}
	return g
}

func newGroup(name string) *Group {
	return &Group{Name: name, Members: map[string]*Member{}, Owners: map[string]string{}, Targets: map[string]string{},
		Offsets: map[string]uint64{}}
}

func (s *State) joinAs(c JoinCmd, legacy bool) (Membership, error) {
	if c.Group == "" || len(c.Topics) == 0 {
		return Membership{}, fmt.Errorf("%w: a join needs a group and topics", ErrInvalid)
	}
	// A rejoin with an unknown member id is refused, but only after the
	// group is looked up with s.group, which creates it: logs written by
	// earlier versions replay to the same state only if this stays so.
	// The broker refuses such a join before proposing it, so new logs do
	// not hold one.
	g := s.group(c.Group)
	id := c.MemberID
	if id == "" {
		g.nextMember++
		id = "m" + strconv.FormatUint(g.nextMember, 10)
	} else if _, ok := g.Members[id]; !ok {
		return Membership{}, fmt.Errorf("%w: %s in group %s (join without an id to get a new one)", ErrUnknownMember, id, c.Group)
	}
	if c.InstanceID != "" {
		for _, old := range g.sortedMembers() {
			if m := g.Members[old]; old != id && m.InstanceID == c.InstanceID {
				g.handOver(old, id) // the restarted instance takes its queues back
				delete(g.Members, old)
			}
		}
	}
	topics := append([]string(nil), c.Topics...)
	sort.Strings(topics)
	g.Members[id] = &Member{ID: id, InstanceID: c.InstanceID, Topics: topics, SessionTimeoutMs: c.SessionTimeoutMs}
	g.legacy = legacy
	s.rebalance(g)
	return g.membership(id), nil
}

// handOver renames member from's ownerships and targets to member to.
func (g *Group) handOver(from, to string) {
	for k, m := range g.Owners {
		if m == from {
			g.Owners[k] = to
		}
	}
	for k, m := range g.Targets {
		if m == from {
			g.Targets[k] = to
		}
	}
}

func (s *State) leave(c LeaveCmd, legacy bool) error {
	g := s.groups[c.Group]
	if g == nil {
		return fmt.Errorf("%w: %s", ErrGroupNotFound, c.Group)
	}
	if _, ok := g.Members[c.MemberID]; !ok {
		return fmt.Errorf("%w: %s", ErrUnknownMember, c.MemberID)
	}
	delete(g.Members, c.MemberID)
	g.legacy = legacy
	s.rebalance(g)
	return nil
}

func (s *State) commit(c CommitCmd) error {
	g := s.groups[c.Group]
	if g == nil {
		return fmt.Errorf("%w: %s", ErrGroupNotFound, c.Group)
	}
	if _, ok := g.Members[c.MemberID]; !ok {
		return fmt.Errorf("%w: %s", ErrUnknownMember, c.MemberID)
	}
	// Ownership fences a commit: a queue has one owner at a time, so an
	// owner with an older view of the group may still commit it. A
	// generation the group never had is a client's bug.
	if c.Generation == 0 || c.Generation > g.Generation {
		return fmt.Errorf("%w: commit for generation %d, the group is at %d", ErrIllegalGeneration, c.Generation, g.Generation)
	}
	for _, o := range c.Offsets {
		if g.Owners[TQ{o.Topic, o.Queue}.key()] != c.MemberID {
			return fmt.Errorf("%w: %s/%d", ErrNotAssigned, o.Topic, o.Queue)
		}
	}
	for _, o := range c.Offsets {
		g.Offsets[TQ{o.Topic, o.Queue}.key()] = o.Offset
	}
	return nil
}

func (s *State) release(c ReleaseCmd) (Membership, error) {
	g := s.groups[c.Group]
	if g == nil {
		return Membership{}, fmt.Errorf("%w: %s", ErrGroupNotFound, c.Group)
	}
	if _, ok := g.Members[c.MemberID]; !ok {
		return Membership{}, fmt.Errorf("%w: %s", ErrUnknownMember, c.MemberID)
	}
	for _, o := range c.Offsets { // offsets first, while the member still owns the queues
		if k := (TQ{o.Topic, o.Queue}).key(); g.Owners[k] == c.MemberID {
			g.Offsets[k] = o.Offset
		}
	}
	changed := false
	for _, q := range c.Queues {
		k := q.key()
		if g.Owners[k] != c.MemberID || g.Targets[k] == c.MemberID {
			continue // not its own, or not moving: nothing to give up
		}
		changed = true
		if t := g.Targets[k]; t != "" {
			g.Owners[k] = t
		} else {
			delete(g.Owners, k)
		}
	}
	if changed {
		g.Generation++
	}
	return g.membership(c.MemberID), nil
}

func (s *State) reset(c ResetCmd) error {
	g := s.group(c.Group)
	if len(g.Members) > 0 {
		return fmt.Errorf("%w: %s has %d members; stop them first", ErrGroupActive, c.Group, len(g.Members))
	}
	for _, o := range c.Offsets {
		g.Offsets[TQ{o.Topic, o.Queue}.key()] = o.Offset
	}
	return nil
}

// TopicChanged rebalances the groups subscribed to a topic that was
// created or deleted, and forgets committed offsets of a deleted topic (a
// topic created again under its name starts at offset 0). Called by the
// FSM after the topic command applies.
func (s *State) TopicChanged(topic string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notify()
	if _, exists := s.queues(topic); !exists {
		prefix := topic + "/"
		for _, g := range s.groups {
			for k := range g.Offsets {
				if strings.HasPrefix(k, prefix) {
					delete(g.Offsets, k)
				}
			}
		}
	}
	for _, name := range s.sortedGroups() {
		g := s.groups[name]
		for _, m := range g.Members {
			if containsString(m.Topics, topic) {
				s.rebalance(g)
				break
			}
		}
	}
}

// rebalance recomputes the targets, hands every queue without a live
// owner to its target, and bumps the generation. A queue whose owner is a
// member and whose target is another stays with its owner until it is
// released (Release) or the owner leaves.
func (s *State) rebalance(g *Group) {
	g.Generation++
	if g.legacy { // the first protocol: round robin, every queue with its target at once
		g.Targets = s.assignRoundRobin(g)
		g.Owners = maps.Clone(g.Targets)
		return
	}
	g.Targets = s.assign(g)
	for k, owner := range g.Owners {
		if _, live := g.Members[owner]; !live || g.Targets[k] == "" {
			delete(g.Owners, k)
		}
	}
	for k, t := range g.Targets {
		if g.Owners[k] == "" {
			g.Owners[k] = t
		}
	}
}

// assign is the assignor: per topic (in name order), the queues are
// spread over the members subscribed to it as evenly as possible (member
// counts differ by at most one; a topic's odd queues go to the members
// with the fewest queues of the topics before, so totals stay even too),
// and a queue stays with its current target while that member is under
// its share (sticky: a join or a leave moves only the queues it must).
// Deterministic: members in id order.
func (s *State) assign(g *Group) map[string]string {
	targets := map[string]string{}
	topics, ids := g.subscribedTopics(), g.sortedMembers()
	load := map[string]int{} // queues given so far, over the topics before
	for _, t := range topics {
		n, ok := s.queues(t)
		if !ok || n == 0 {
			continue
		}
		subs := g.subscribers(ids, t)
		held := map[string][]int{}
		for q := range n {
			if prev := g.Targets[TQ{t, q}.key()]; prev != "" && containsString(subs, prev) {
				held[prev] = append(held[prev], q)
			}
		}
		// Shares: n/len(subs) each; the remainder goes to the members with
		// the least load so far, then to those holding the most now (which
		// keeps queues in place), then by id.
		order := append([]string(nil), subs...)
		sort.SliceStable(order, func(i, j int) bool {
			a, b := order[i], order[j]
			if load[a] != load[b] {
				return load[a] < load[b]
			}
			return len(held[a]) > len(held[b])
		})
		share := map[string]int{}
		for i, id := range order {
			share[id] = n / len(subs)
			if i < n%len(subs) {
				share[id]++
			}
		}
		count := map[string]int{}
		taken := make([]bool, n)
		for _, id := range subs {
			for _, q := range held[id] {
				if count[id] < share[id] {
					targets[TQ{t, q}.key()] = id
					count[id]++
					taken[q] = true
				}
			}
		}
		next := 0
		for q := range n {
			if taken[q] {
				continue
			}
			for count[subs[next]] >= share[subs[next]] {
				next++
			}
			targets[TQ{t, q}.key()] = subs[next]
			count[subs[next]]++
		}
		for id, c := range count {
			load[id] += c
		}
	}
	return targets
}

// assignRoundRobin is the first protocol's assignor: one turn counter
// over the queues of every subscribed topic (topics by name, queues in
// order), each queue to the next subscriber of its topic in id order.
func (s *State) assignRoundRobin(g *Group) map[string]string {
	targets := map[string]string{}
	topics, ids := g.subscribedTopics(), g.sortedMembers()
	turn := 0
	for _, t := range topics {
		n, ok := s.queues(t)
		if !ok {
			continue
		}
		subs := g.subscribers(ids, t)
		for q := 0; q < n; q++ {
			targets[TQ{t, q}.key()] = subs[turn%len(subs)]
			turn++
		}
	}
	return targets
}

// membership is member id's view; id must be a member.
func (g *Group) membership(id string) Membership {
	m := Membership{MemberID: id, Generation: g.Generation, SessionTimeoutMs: g.Members[id].SessionTimeoutMs}
	for _, k := range g.sortedQueueKeys() {
		if g.Owners[k] != id {
			continue
		}
		if g.Targets[k] == id {
			m.Assignment = append(m.Assignment, parseKey(k))
		} else {
			m.Revoking = append(m.Revoking, parseKey(k))
		}
	}
	return m
}

// sortedQueueKeys returns the keys of every owned or targeted queue, by
// topic and queue number.
func (g *Group) sortedQueueKeys() []string {
	seen := map[string]bool{}
	var tqs []TQ
	for _, m := range []map[string]string{g.Owners, g.Targets} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				tqs = append(tqs, parseKey(k))
			}
		}
	}
	sort.Slice(tqs, func(i, j int) bool {
		return tqs[i].Topic < tqs[j].Topic || tqs[i].Topic == tqs[j].Topic && tqs[i].Queue < tqs[j].Queue
	})
	keys := make([]string, len(tqs))
	for i, q := range tqs {
		keys[i] = q.key()
	}
	return keys
}

// subscribedTopics returns the topics any member subscribes to, sorted.
func (g *Group) subscribedTopics() []string {
	set := map[string]bool{}
	for _, m := range g.Members {
		for _, t := range m.Topics {
			set[t] = true
		}
	}
	topics := make([]string, 0, len(set))
	for t := range set {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	return topics
}

// subscribers returns the members among ids subscribed to topic t.
func (g *Group) subscribers(ids []string, t string) []string {
	var subs []string
	for _, id := range ids {
		if containsString(g.Members[id].Topics, t) {
			subs = append(subs, id)
		}
	}
	return subs
}

func (g *Group) sortedMembers() []string {
	ids := make([]string, 0, len(g.Members))
	for id := range g.Members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func (s *State) sortedGroups() []string {
	names := make([]string, 0, len(s.groups))
	for n := range s.groups {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
