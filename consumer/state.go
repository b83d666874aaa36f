package consumer

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Errors. The broker maps each to an API code.
var (
	ErrGroupNotFound     = errors.New("consumer: group not found")
	ErrUnknownMember     = errors.New("consumer: unknown member")
	ErrIllegalGeneration = errors.New("consumer: stale generation")
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

// Member is one group member.
type Member struct {
	ID               string
	Topics           []string
	SessionTimeoutMs int64
}

// Group is one consumer group.
type Group struct {
	Name       string
	Generation uint64
	Members    map[string]*Member
	Assignment map[string][]TQ   // member id -> queues
	Offsets    map[string]uint64 // TQ.key() -> committed next offset
	nextMember uint64
}

// Command payloads (JSON after the type byte).
type (
	JoinCmd struct {
		Group            string   `json:"group"`
		MemberID         string   `json:"member_id"`
		Topics           []string `json:"topics"`
		SessionTimeoutMs int64    `json:"session_timeout_ms"`
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
	Offset struct {
		Topic  string `json:"topic"`
		Queue  int    `json:"queue"`
		Offset uint64 `json:"offset"`
	}
)

// AppendPayload appends a command payload (JSON); the command registry
// (package fsm) frames it behind the command's code.
func AppendPayload[C JoinCmd | LeaveCmd | CommitCmd | ResetCmd](dst []byte, c C) []byte {
	b, _ := json.Marshal(c)
	return append(dst, b...)
}

// DecodePayload decodes a command payload.
func DecodePayload[C JoinCmd | LeaveCmd | CommitCmd | ResetCmd](b []byte) (C, error) {
	var c C
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return c, nil
}

// State is all groups. Apply is called from one goroutine; the read methods
// are safe alongside it.
type State struct {
	mu     sync.RWMutex
	groups map[string]*Group
	queues QueueCounter
}

// New returns an empty state reading queue counts from queues.
func New(queues QueueCounter) *State {
	return &State{groups: map[string]*Group{}, queues: queues}
}

// Membership is the result of a join: the member's id, generation and
// queues.
type Membership struct {
	MemberID   string
	Generation uint64
	Assignment []TQ
}

// The methods below apply committed commands, called by the command
// registry (package fsm) from its one Apply goroutine in log order. They
// are deterministic.

// Join adds a member (a new one when c.MemberID is empty) or updates its
// subscription, and rebalances the group.
func (s *State) Join(c JoinCmd) (Membership, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.join(c)
}

// Leave removes a member and rebalances the group.
func (s *State) Leave(c LeaveCmd) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leave(c)
}

// Commit records a member's committed offsets, fenced by generation and
// ownership.
func (s *State) Commit(c CommitCmd) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commit(c)
}

// Reset sets an empty group's committed offsets.
func (s *State) Reset(c ResetCmd) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reset(c)
}

func (s *State) group(name string) *Group {
	g := s.groups[name]
	if g == nil {
		g = &Group{Name: name, Members: map[string]*Member{}, Assignment: map[string][]TQ{}, Offsets: map[string]uint64{}}
		s.groups[name] = g
	}
	return g
}

func (s *State) join(c JoinCmd) (Membership, error) {
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
	topics := append([]string(nil), c.Topics...)
	sort.Strings(topics)
	g.Members[id] = &Member{ID: id, Topics: topics, SessionTimeoutMs: c.SessionTimeoutMs}
	s.rebalance(g)
	return Membership{MemberID: id, Generation: g.Generation, Assignment: append([]TQ(nil), g.Assignment[id]...)}, nil
}

func (s *State) leave(c LeaveCmd) error {
	g := s.groups[c.Group]
	if g == nil {
		return fmt.Errorf("%w: %s", ErrGroupNotFound, c.Group)
	}
	if _, ok := g.Members[c.MemberID]; !ok {
		return fmt.Errorf("%w: %s", ErrUnknownMember, c.MemberID)
	}
	delete(g.Members, c.MemberID)
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
	if c.Generation != g.Generation {
		return fmt.Errorf("%w: commit for generation %d, the group is at %d", ErrIllegalGeneration, c.Generation, g.Generation)
	}
	owned := map[TQ]bool{}
	for _, q := range g.Assignment[c.MemberID] {
		owned[q] = true
	}
	for _, o := range c.Offsets {
		if !owned[TQ{o.Topic, o.Queue}] {
			return fmt.Errorf("%w: %s/%d", ErrNotAssigned, o.Topic, o.Queue)
		}
	}
	for _, o := range c.Offsets {
		g.Offsets[TQ{o.Topic, o.Queue}.key()] = o.Offset
	}
	return nil
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

// rebalance recomputes the assignment and bumps the generation. Queues of
// each topic go round-robin to the members subscribed to it, members in id
// order: deterministic, and each queue has exactly one owner.
func (s *State) rebalance(g *Group) {
	g.Generation++
	g.Assignment = map[string][]TQ{}
	ids := make([]string, 0, len(g.Members))
	topicSet := map[string]bool{}
	for id, m := range g.Members {
		ids = append(ids, id)
		for _, t := range m.Topics {
			topicSet[t] = true
		}
	}
	sort.Strings(ids)
	topics := make([]string, 0, len(topicSet))
	for t := range topicSet {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	turn := 0
	for _, t := range topics {
		n, ok := s.queues(t)
		if !ok {
			continue
		}
		var subs []string
		for _, id := range ids {
			if containsString(g.Members[id].Topics, t) {
				subs = append(subs, id)
			}
		}
		for q := 0; q < n; q++ {
			id := subs[turn%len(subs)]
			turn++
			g.Assignment[id] = append(g.Assignment[id], TQ{t, q})
		}
	}
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
