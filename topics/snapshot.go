package topics

import (
	"encoding/gob"
	"fmt"
	"io"
)

// Snapshot captures the state cheaply: queue indexes only grow at their
// end, so the snapshot shares their backing arrays up to the current
// length instead of copying them.
func (s *State) Snapshot() *Snap {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sn := &Snap{NextProducer: s.nextProducer, ClockMs: s.clockMs, Producers: make(map[uint64]*producerState, len(s.producers))}
	// Producer state changes in place, so it is copied.
	for id, p := range s.producers {
		cp := &producerState{LastSeenMs: p.LastSeenMs, Queues: make(map[string]*seqState, len(p.Queues))}
		for k, st := range p.Queues {
			cp.Queues[k] = &seqState{Next: st.Next, Recent: append([]sentBatch(nil), st.Recent...)}
		}
		sn.Producers[id] = cp
	}
	for _, t := range s.listLocked() {
		st := snapTopic{Config: t.Config, CreatedIndex: t.CreatedIndex}
		for _, q := range t.queues {
			q.mu.RLock()
			st.Queues = append(st.Queues, snapQueue{Next: q.next, Batches: q.batches[:len(q.batches):len(q.batches)]})
			q.mu.RUnlock()
		}
		sn.Topics = append(sn.Topics, st)
	}
	return sn
}

// listLocked is List for callers that hold mu.
func (s *State) listLocked() []*Topic {
	out := make([]*Topic, 0, len(s.topics))
	for _, t := range s.topics {
		out = append(out, t)
	}
	sortTopics(out)
	return out
}

// Snap is a point-in-time copy of the state.
type Snap struct {
	Topics       []snapTopic
	Producers    map[uint64]*producerState
	NextProducer uint64
	ClockMs      int64
}

type snapTopic struct {
	Config       Config
	CreatedIndex uint64
	Queues       []snapQueue
}

type snapQueue struct {
	Next    uint64
	Batches []BatchRef
}

// Persist writes the snapshot.
func (sn *Snap) Persist(w io.Writer) error {
	if err := gob.NewEncoder(w).Encode(sn); err != nil {
		return fmt.Errorf("topics: persist snapshot: %w", err)
	}
	return nil
}

// Restore replaces the state with a persisted snapshot.
func (s *State) Restore(r io.Reader) error {
	var sn Snap
	if err := gob.NewDecoder(r).Decode(&sn); err != nil {
		return fmt.Errorf("topics: restore snapshot: %w", err)
	}
	topics := map[string]*Topic{}
	for _, st := range sn.Topics {
		t := &Topic{Config: st.Config, CreatedIndex: st.CreatedIndex}
		for _, sq := range st.Queues {
			q := newQueue()
			q.next, q.batches = sq.Next, sq.Batches
			t.queues = append(t.queues, q)
		}
		topics[t.Name] = t
	}
	if sn.Producers == nil {
		sn.Producers = map[uint64]*producerState{}
	}
	for _, p := range sn.Producers {
		if p.Queues == nil {
			p.Queues = map[string]*seqState{}
		}
	}
	s.mu.Lock()
	old := s.topics
	s.topics = topics
	s.producers, s.nextProducer, s.clockMs = sn.Producers, sn.NextProducer, sn.ClockMs
	s.mu.Unlock()
	for _, t := range old { // wake long polls on the replaced queues
		for _, q := range t.queues {
			q.mu.Lock()
			close(q.wake)
			q.wake = make(chan struct{})
			q.mu.Unlock()
		}
	}
	return nil
}
