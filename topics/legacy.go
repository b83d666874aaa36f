package topics

import (
	"bytes"
	"encoding/gob"
	"fmt"
)

// legacySnap is the topics snapshot of format version 0 (before the
// binary container), which was gob-encoded: gob matches fields by name,
// so these names must stay as they were. Only read, never written.
type legacySnap struct {
	Topics []struct {
		Config       Config
		CreatedIndex uint64
		Queues       []struct {
			Next    uint64
			Batches []BatchRef
		}
	}
	Producers map[uint64]*struct {
		LastSeenMs int64
		Queues     map[string]*struct {
			Next   uint64
			Recent []sentBatch
		}
	}
	NextProducer uint64
	ClockMs      int64
}

// DecodeLegacy replaces the state with a version-0 (gob) topics snapshot,
// so that nodes whose newest snapshot an earlier version wrote can start.
// On error the state is unchanged.
func (s *State) DecodeLegacy(b []byte) error {
	var sn legacySnap
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&sn); err != nil {
		return fmt.Errorf("topics: decode version-0 snapshot: %w", err)
	}
	topics := map[string]*Topic{}
	for _, st := range sn.Topics {
		if len(st.Queues) != st.Config.Queues {
			return fmt.Errorf("topics: version-0 snapshot: topic %s has %d queues, config says %d", st.Config.Name, len(st.Queues), st.Config.Queues)
		}
		t := &Topic{Config: st.Config, CreatedIndex: st.CreatedIndex}
		for _, sq := range st.Queues {
			q := newQueue()
			q.next, q.batches = sq.Next, sq.Batches
			t.queues = append(t.queues, q)
		}
		topics[t.Name] = t
	}
	producers := map[uint64]*producerState{}
	for id, p := range sn.Producers {
		ps := &producerState{LastSeenMs: p.LastSeenMs, Queues: map[string]*seqState{}}
		for k, q := range p.Queues {
			ps.Queues[k] = &seqState{Next: q.Next, Recent: q.Recent}
		}
		producers[id] = ps
	}
	s.mu.Lock()
	old := s.topics
	s.topics, s.producers, s.nextProducer, s.clockMs = topics, producers, sn.NextProducer, sn.ClockMs
	s.mu.Unlock()
	for _, t := range old {
		wakeAll(t)
	}
	return nil
}
