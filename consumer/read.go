package consumer

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
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

// snapshot form: plain data.
type snapGroup struct {
	Name       string
	Generation uint64
	NextMember uint64
	Members    []Member
	Assignment map[string][]TQ
	Offsets    map[string]uint64
}

// Snapshot copies the state for persisting.
func (s *State) Snapshot() []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var gs []snapGroup
	for _, n := range s.sortedGroups() {
		g := s.groups[n]
		sg := snapGroup{Name: g.Name, Generation: g.Generation, NextMember: g.nextMember, Assignment: g.Assignment, Offsets: g.Offsets}
		for _, m := range g.Members {
			sg.Members = append(sg.Members, *m)
		}
		sort.Slice(sg.Members, func(i, j int) bool { return sg.Members[i].ID < sg.Members[j].ID })
		gs = append(gs, sg)
	}
	b, _ := json.Marshal(gs) // copies: marshalled under the lock
	return b
}

// Restore replaces the state with a snapshot.
func (s *State) Restore(r io.Reader) error {
	var gs []snapGroup
	if err := json.NewDecoder(r).Decode(&gs); err != nil {
		return fmt.Errorf("consumer: restore snapshot: %w", err)
	}
	groups := map[string]*Group{}
	for _, sg := range gs {
		g := &Group{Name: sg.Name, Generation: sg.Generation, nextMember: sg.NextMember,
			Members: map[string]*Member{}, Assignment: sg.Assignment, Offsets: sg.Offsets}
		if g.Assignment == nil {
			g.Assignment = map[string][]TQ{}
		}
		if g.Offsets == nil {
			g.Offsets = map[string]uint64{}
		}
		for i := range sg.Members {
			m := sg.Members[i]
			g.Members[m.ID] = &m
		}
		groups[g.Name] = g
	}
	s.mu.Lock()
	s.groups = groups
	s.mu.Unlock()
	return nil
}
