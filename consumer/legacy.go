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

// assigned sets owners and targets from an assignment written before
// queues had both (every queue then was with its one owner).
func (g *Group) assigned(a map[string][]TQ) {
	for id, qs := range a {
		for _, q := range qs {
			g.Owners[q.key()], g.Targets[q.key()] = id, id
		}
	}
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
		g := newGroup(lg.Name)
		g.Generation, g.nextMember, g.legacy = lg.Generation, lg.NextMember, true
		g.assigned(lg.Assignment)
		if lg.Offsets != nil {
			g.Offsets = lg.Offsets
		}
		for i := range lg.Members {
			m := lg.Members[i]
			g.Members[m.ID] = &m
		}
		groups[g.Name] = g
	}
	s.mu.Lock()
	s.groups = groups
	s.notify()
	s.mu.Unlock()
	return nil
}
