package consumer

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/ledgermq/ledgermq/internal/enc"
)

// GroupView is a copy of a group for readers.
type GroupView struct {
	Name       string
	Generation uint64
	Members    []Member        // by id
	Assignment map[string][]TQ // member -> queues it owns and delivers
	Revoking   map[string][]TQ // member -> queues it owns and must release
	Targets    map[TQ]string   // where each queue is going (its owner when it stays)
	Offsets    map[TQ]uint64   // committed next offsets
}

// Describe returns a copy of a group.
func (s *State) Describe(name string) (GroupView, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.groups[name]
	if g == nil {
		return GroupView{}, fmt.Errorf("%w: %s", ErrGroupNotFound, name)
	}
	return view(g), nil
}

func view(g *Group) GroupView {
	v := GroupView{Name: g.Name, Generation: g.Generation, Assignment: map[string][]TQ{}, Revoking: map[string][]TQ{},
		Targets: map[TQ]string{}, Offsets: map[TQ]uint64{}}
	for _, id := range g.sortedMembers() {
		m := g.Members[id]
		v.Members = append(v.Members, Member{ID: m.ID, InstanceID: m.InstanceID, Topics: append([]string(nil), m.Topics...),
			SessionTimeoutMs: m.SessionTimeoutMs})
		ms := g.membership(id)
		if ms.Assignment != nil {
			v.Assignment[id] = ms.Assignment
		}
		if ms.Revoking != nil {
			v.Revoking[id] = ms.Revoking
		}
	}
	for k, t := range g.Targets {
		v.Targets[parseKey(k)] = t
	}
	for k, off := range g.Offsets {
		v.Offsets[parseKey(k)] = off
	}
	return v
}

func parseKey(k string) TQ {
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] == '/' {
			q := 0
			fmt.Sscan(k[i+1:], &q)
			return TQ{Topic: k[:i], Queue: q}
		}
	}
	return TQ{Topic: k}
}

// List returns every group, by name.
func (s *State) List() []GroupView {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]GroupView, 0, len(s.groups))
	for _, n := range s.sortedGroups() {
		out = append(out, view(s.groups[n]))
	}
	return out
}

// Membership returns a member's current generation and queues.
func (s *State) Membership(group, member string) (Membership, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.groups[group]
	if g == nil {
		return Membership{}, fmt.Errorf("%w: %s", ErrGroupNotFound, group)
	}
	if _, ok := g.Members[member]; !ok {
		return Membership{}, fmt.Errorf("%w: %s", ErrUnknownMember, member)
	}
	return g.membership(member), nil
}

// Members returns (group, member, session timeout) for every member, for
// the leader's session tracking.
func (s *State) Members() []MemberRef {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []MemberRef
	for _, n := range s.sortedGroups() {
		g := s.groups[n]
		revoking := map[string]bool{}
		for k, owner := range g.Owners {
			if g.Targets[k] != owner {
				revoking[owner] = true
			}
		}
		for _, id := range g.sortedMembers() {
			m := g.Members[id]
			out = append(out, MemberRef{Group: n, MemberID: m.ID, SessionTimeoutMs: m.SessionTimeoutMs, Revoking: revoking[id]})
		}
	}
	return out
}

// MemberRef identifies a member, with its session timeout and whether it
// owns queues it must release.
type MemberRef struct {
	Group, MemberID  string
	SessionTimeoutMs int64
	Revoking         bool
}

// Snap is a point-in-time copy of every group.
type Snap struct{ groups []snapGroup }

type snapGroup struct {
	name       string
	generation uint64
	nextMember uint64
	legacy     bool
	members    []Member // by id
	queues     []snapQueue
	offsets    []snapOffset
}

type snapQueue struct {
	key, owner, target string // TQ.key(); owner or target may be ""
}

type snapOffset struct {
	key    string // TQ.key()
	offset uint64
}

// Snapshot copies the state for persisting. Call it from the Apply
// goroutine.
func (s *State) Snapshot() *Snap {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sn := &Snap{}
	for _, n := range s.sortedGroups() {
		g := s.groups[n]
		sg := snapGroup{name: g.Name, generation: g.Generation, nextMember: g.nextMember, legacy: g.legacy, members: view(g).Members}
		for _, k := range g.sortedQueueKeys() {
			sg.queues = append(sg.queues, snapQueue{key: k, owner: g.Owners[k], target: g.Targets[k]})
		}
		keys := make([]string, 0, len(g.Offsets))
		for k := range g.Offsets {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			sg.offsets = append(sg.offsets, snapOffset{key: k, offset: g.Offsets[k]})
		}
		sn.groups = append(sn.groups, sg)
	}
	return sn
}

// Encode writes the snapshot in its binary form (version 2): groups by
// name, each with its protocol (1: the first, see Group.legacy), its
// members by id, every queue's owner and target by queue, and committed
// offsets by queue. The same state always encodes to
// the same bytes.
func (sn *Snap) Encode(w *enc.Writer) {
	w.Uvarint(uint64(len(sn.groups)))
	for _, g := range sn.groups {
		w.String(g.name)
		w.Uvarint(g.generation)
		w.Uvarint(g.nextMember)
		protocol := uint64(2)
		if g.legacy {
			protocol = 1
		}
		w.Uvarint(protocol)
		w.Uvarint(uint64(len(g.members)))
		for _, m := range g.members {
			w.String(m.ID)
			w.String(m.InstanceID)
			w.Varint(m.SessionTimeoutMs)
			w.Uvarint(uint64(len(m.Topics)))
			for _, t := range m.Topics {
				w.String(t)
			}
		}
		w.Uvarint(uint64(len(g.queues)))
		for _, q := range g.queues {
			w.String(q.key)
			w.String(q.owner)
			w.String(q.target)
		}
		w.Uvarint(uint64(len(g.offsets)))
		for _, o := range g.offsets {
			w.String(o.key)
			w.Uvarint(o.offset)
		}
	}
}

// Decode replaces the state with a snapshot Encode wrote. On error the
// state is unchanged.
func (s *State) Decode(r *enc.Reader) error { return s.decode(r, decodeGroup) }

// DecodeV1 replaces the state with a snapshot of format version 1 (one
// assignment per member, before owners and targets). On error the state
// is unchanged.
func (s *State) DecodeV1(r *enc.Reader) error { return s.decode(r, decodeGroupV1) }

func (s *State) decode(r *enc.Reader, one func(*enc.Reader) *Group) error {
	groups := map[string]*Group{}
	for i, n := 0, r.Count(4); i < n && r.Err() == nil; i++ {
		g := one(r)
		if _, dup := groups[g.Name]; dup && r.Err() == nil {
			r.Fail("group %s twice", g.Name)
		}
		groups[g.Name] = g
	}
	if err := r.End(); err != nil {
		return fmt.Errorf("consumer: decode snapshot: %w", err)
	}
	s.mu.Lock()
	s.groups = groups
	s.notify()
	s.mu.Unlock()
	return nil
}

func decodeGroup(r *enc.Reader) *Group {
	g := newGroup(r.String())
	g.Generation, g.nextMember = r.Uvarint(), r.Uvarint()
	switch p := r.Uvarint(); p {
	case 1:
		g.legacy = true
	case 2:
	default:
		r.Fail("group %s: unknown group protocol %d", g.Name, p)
	}
	for i, n := 0, r.Count(4); i < n && r.Err() == nil; i++ {
		m := &Member{ID: r.String(), InstanceID: r.String(), SessionTimeoutMs: r.Varint()}
		for j, nt := 0, r.Count(1); j < nt && r.Err() == nil; j++ {
			m.Topics = append(m.Topics, r.String())
		}
		checkMember(r, g, m)
		g.Members[m.ID] = m
	}
	for i, n := 0, r.Count(3); i < n && r.Err() == nil; i++ {
		k, owner, target := r.String(), r.String(), r.String()
		checkKey(r, g, k)
		if _, dup := g.Owners[k]; dup {
			r.Fail("group %s: queue %s twice", g.Name, k)
		} else if _, dup := g.Targets[k]; dup {
			r.Fail("group %s: queue %s twice", g.Name, k)
		}
		if owner != "" {
			g.Owners[k] = owner
		}
		if target != "" {
			g.Targets[k] = target
		}
	}
	decodeOffsets(r, g)
	return g
}

func decodeGroupV1(r *enc.Reader) *Group {
	g := newGroup(r.String())
	g.Generation, g.nextMember, g.legacy = r.Uvarint(), r.Uvarint(), true
	assignment := map[string][]TQ{}
	for i, n := 0, r.Count(4); i < n && r.Err() == nil; i++ {
		m := &Member{ID: r.String(), SessionTimeoutMs: r.Varint()}
		for j, nt := 0, r.Count(1); j < nt && r.Err() == nil; j++ {
			m.Topics = append(m.Topics, r.String())
		}
		for j, nq := 0, r.Count(2); j < nq && r.Err() == nil; j++ {
			assignment[m.ID] = append(assignment[m.ID], TQ{Topic: r.String(), Queue: int(r.Uvarint())})
		}
		checkMember(r, g, m)
		g.Members[m.ID] = m
	}
	g.assigned(assignment)
	decodeOffsets(r, g)
	return g
}

func decodeOffsets(r *enc.Reader, g *Group) {
	for i, n := 0, r.Count(2); i < n && r.Err() == nil; i++ {
		k := r.String()
		checkKey(r, g, k)
		if _, dup := g.Offsets[k]; dup && r.Err() == nil {
			r.Fail("group %s: offset of %s twice", g.Name, k)
		}
		g.Offsets[k] = r.Uvarint()
	}
}

// checkMember refuses a restored member no join could have made (issue
// 11): no id, an id twice, a session timeout that is not positive.
func checkMember(r *enc.Reader, g *Group, m *Member) {
	if r.Err() != nil {
		return
	}
	if _, dup := g.Members[m.ID]; dup {
		r.Fail("group %s: member %q twice", g.Name, m.ID)
	} else if m.ID == "" || m.SessionTimeoutMs <= 0 {
		r.Fail("group %s: member %q with session timeout %d", g.Name, m.ID, m.SessionTimeoutMs)
	}
}

// checkKey refuses a queue key that is not "topic/queue".
func checkKey(r *enc.Reader, g *Group, k string) {
	i := strings.LastIndexByte(k, '/')
	if r.Err() != nil {
		return
	}
	if q, err := strconv.Atoi(k[i+1:]); i <= 0 || err != nil || q < 0 || strconv.Itoa(q) != k[i+1:] {
		r.Fail("group %s: bad queue %q", g.Name, k)
	}
}
