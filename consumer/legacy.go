package consumer

import (
	"encoding/json"
	"fmt"
)

// legacyGroup is a group in a version-0 snapshot (JSON, before the binary
// container). Only read, never written.
type legacyGroup struct {
	Name       string
	Generation uint64
	NextMember uint64
	Members    []Member
	Assignment map[string][]TQ
	Offsets    map[string]uint64
}

// DecodeLegacy replaces the state with a version-0 (JSON) groups snapshot,
// so that nodes whose newest snapshot an earlier version wrote can start.
// On error the state is unchanged.
func (s *State) DecodeLegacy(b []byte) error {
	var gs []legacyGroup
	if err := json.Unmarshal(b, &gs); err != nil {
		return fmt.Errorf("consumer: decode version-0 snapshot: %w", err)
	}
	groups := map[string]*Group{}
	for _, lg := range gs {
		g := &Group{Name: lg.Name, Generation: lg.Generation, nextMember: lg.NextMember,
			Members: map[string]*Member{}, Assignment: lg.Assignment, Offsets: lg.Offsets}
		if g.Assignment == nil {
			g.Assignment = map[string][]TQ{}
		}
		if g.Offsets == nil {
			g.Offsets = map[string]uint64{}
		}
		for i := range lg.Members {
			m := lg.Members[i]
			g.Members[m.ID] = &m
		}
		groups[g.Name] = g
	}
	s.mu.Lock()
	s.groups = groups
	s.mu.Unlock()
	return nil
}
