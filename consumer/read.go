package consumer

import (
	"fmt"
	"sort"

	"github.com/ledgermq/ledgermq/internal/enc"
)

// GroupView is a copy of a group for readers.
type GroupView struct {
	Name       string
	Generation uint64
	Members    []Member // by id
	Assignment map[string][]TQ
	Offsets    map[TQ]uint64 // committed next offsets
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
	v := GroupView{Name: g.Name, Generation: g.Generation, Assignment: map[string][]TQ{}, Offsets: map[TQ]uint64{}}
	for _, m := range g.Members {
		v.Members = append(v.Members, Member{ID: m.ID, Topics: append([]string(nil), m.Topics...), SessionTimeoutMs: m.SessionTimeoutMs})
	}
	sort.Slice(v.Members, func(i, j int) bool { return v.Members[i].ID < v.Members[j].ID })
	for id, qs := range g.Assignment {
		v.Assignment[id] = append([]TQ(nil), qs...)
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
	return Membership{MemberID: member, Generation: g.Generation, Assignment: append([]TQ(nil), g.Assignment[member]...)}, nil
}

// Members returns (group, member, session timeout) for every member, for
// the leader's session tracking.
func (s *State) Members() []MemberRef {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []MemberRef
	for _, n := range s.sortedGroups() {
		for _, m := range s.groups[n].Members {
			out = append(out, MemberRef{Group: n, MemberID: m.ID, SessionTimeoutMs: m.SessionTimeoutMs})
		}
	}
	return out
}

// MemberRef identifies a member.
type MemberRef struct {
	Group, MemberID  string
	SessionTimeoutMs int64
}

// Snap is a point-in-time copy of every group.
type Snap struct{ groups []snapGroup }

type snapGroup struct {
	name       string
	generation uint64
	nextMember uint64
	members    []Member // by id
	assignment [][]TQ   // per member, in members' order
	offsets    []snapOffset
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
		sg := snapGroup{name: g.Name, generation: g.Generation, nextMember: g.nextMember}
		for _, m := range view(g).Members {
			sg.members = append(sg.members, m)
			sg.assignment = append(sg.assignment, append([]TQ(nil), g.Assignment[m.ID]...))
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

// Encode writes the snapshot in its binary form: groups by name, each with
// members by id (with their assignments) and committed offsets by queue.
// The same state always encodes to the same bytes.
func (sn *Snap) Encode(w *enc.Writer) {
	w.Uvarint(uint64(len(sn.groups)))
	for _, g := range sn.groups {
		w.String(g.name)
		w.Uvarint(g.generation)
		w.Uvarint(g.nextMember)
		w.Uvarint(uint64(len(g.members)))
		for i, m := range g.members {
			w.String(m.ID)
			w.Varint(m.SessionTimeoutMs)
			w.Uvarint(uint64(len(m.Topics)))
			for _, t := range m.Topics {
				w.String(t)
			}
			w.Uvarint(uint64(len(g.assignment[i])))
			for _, q := range g.assignment[i] {
				w.String(q.Topic)
				w.Uvarint(uint64(q.Queue))
			}
		}
		w.Uvarint(uint64(len(g.offsets)))
		for _, o := range g.offsets {
			w.String(o.key)
			w.Uvarint(o.offset)
		}
	}
}

// Decode replaces the state with an encoded snapshot. On error the state
// is unchanged.
func (s *State) Decode(r *enc.Reader) error {
	groups := map[string]*Group{}
	for i, n := 0, r.Count(4); i < n && r.Err() == nil; i++ {
		g := decodeGroup(r)
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
	s.mu.Unlock()
	return nil
}

func decodeGroup(r *enc.Reader) *Group {
	g := &Group{Name: r.String(), Generation: r.Uvarint(), nextMember: r.Uvarint(),
		Members: map[string]*Member{}, Assignment: map[string][]TQ{}, Offsets: map[string]uint64{}}
	for i, n := 0, r.Count(4); i < n && r.Err() == nil; i++ {
		m := &Member{ID: r.String(), SessionTimeoutMs: r.Varint()}
		for j, nt := 0, r.Count(1); j < nt && r.Err() == nil; j++ {
			m.Topics = append(m.Topics, r.String())
		}
		var qs []TQ
		for j, nq := 0, r.Count(2); j < nq && r.Err() == nil; j++ {
			qs = append(qs, TQ{Topic: r.String(), Queue: int(r.Uvarint())})
		}
		g.Members[m.ID] = m
		if qs != nil {
			g.Assignment[m.ID] = qs
		}
	}
	for i, n := 0, r.Count(2); i < n && r.Err() == nil; i++ {
		k := r.String()
		g.Offsets[k] = r.Uvarint()
	}
	return g
}
