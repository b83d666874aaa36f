package topics

import (
	"fmt"
	"sort"
)

// Idempotent producers. The broker hands out producer ids; every batch an
// idempotent producer sends carries (producer id, sequence of its first
// record), sequences counting records per producer and queue from 0. The
// state remembers, per producer and queue, the next expected sequence and
// the last few batches, so a batch resent after an ambiguous failure is
// answered with its original offsets instead of being stored again.
//
// A producer is remembered until it has been idle for ProducerTTL of the
// leaders' clocks as stamped in the commands (so every node forgets it at
// the same log position), or until MaxProducers newer producers push it out.

const (
	// ProducerTTL is how long an idle producer id stays valid.
	ProducerTTL = 7 * 24 * 3600 * 1000 // ms
	// MaxProducers bounds the remembered producers; the least recently
	// active are forgotten first.
	MaxProducers = 100_000
	// recentBatches is how many batches per producer and queue are
	// remembered for answering resends; the SDK keeps at most this many in
	// flight per queue.
	recentBatches = 8
)

// Errors of idempotent produce.
var (
	ErrUnknownProducer   = fmt.Errorf("%w: unknown or expired producer id", ErrInvalidArgument)
	ErrOutOfOrderSeq     = fmt.Errorf("%w: sequence gap: an earlier batch of this producer is missing", ErrInvalidArgument)
	ErrDuplicateSequence = fmt.Errorf("%w: batch sequence is older than the remembered window", ErrInvalidArgument)
)

type producerState struct {
	LastSeenMs int64
	Queues     map[string]*seqState // "topic/queue"
}

type seqState struct {
	Next   uint64
	Recent []sentBatch // oldest first, at most recentBatches
}

type sentBatch struct {
	Seq        uint64
	Count      uint32
	BaseOffset uint64
}

// InitProducer applies an init-producer command: it assigns the next
// producer id.
func (s *State) InitProducer(timeMs int64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.advanceClock(timeMs)
	s.expireProducers(now)
	s.nextProducer++
	id := s.nextProducer
	s.producers[id] = &producerState{LastSeenMs: now, Queues: map[string]*seqState{}}
	return id, nil
}

// advanceClock keeps the state's clock monotonic across leaders whose
// clocks disagree. mu must be held.
func (s *State) advanceClock(timeMs int64) int64 {
	if timeMs > s.clockMs {
		s.clockMs = timeMs
	}
	return s.clockMs
}

// evictBatch is how many producers one eviction forgets beyond the one
// the new producer needs: evicting a tenth at once sorts the ids once per
// MaxProducers/10 new producers, not once per producer (a storm of
// init-producer commands would otherwise sort 100k ids under the state
// lock for each).
const evictBatch = MaxProducers / 10

// expireProducers forgets idle producers and, when MaxProducers are
// remembered, the least recently active evictBatch+1 of them. mu must be
// held. Deterministic: it depends only on the state and the command's
// time.
func (s *State) expireProducers(now int64) {
	for id, p := range s.producers {
		if now-p.LastSeenMs > ProducerTTL {
			delete(s.producers, id)
		}
	}
	if len(s.producers) < MaxProducers {
		return
	}
	ids := make([]uint64, 0, len(s.producers))
	for id := range s.producers {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := s.producers[ids[i]], s.producers[ids[j]]
		if a.LastSeenMs != b.LastSeenMs {
			return a.LastSeenMs < b.LastSeenMs
		}
		return ids[i] < ids[j]
	})
	for _, id := range ids[:len(ids)-(MaxProducers-1)+evictBatch] {
		delete(s.producers, id)
	}
}

// checkSequence decides what to do with an idempotent batch. It returns
// dup != nil for a resend of a remembered batch (answer with its offsets),
// or an error; otherwise the caller stores the batch and calls record.
// s.mu must be held (read or write); producer maps are only touched from
// Apply's goroutine.
func (s *State) checkSequence(pid uint64, key string, seq uint64, count uint32, now int64) (*sentBatch, error) {
	p, ok := s.producers[pid]
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrUnknownProducer, pid)
	}
	p.LastSeenMs = max(p.LastSeenMs, now)
	st := p.Queues[key]
	if st == nil {
		if seq != 0 {
			return nil, fmt.Errorf("%w: first batch to %s has sequence %d, want 0", ErrOutOfOrderSeq, key, seq)
		}
		return nil, nil
	}
	if seq == st.Next {
		return nil, nil
	}
	for i := range st.Recent {
		if b := st.Recent[i]; b.Seq == seq && b.Count == count {
			return &b, nil
		}
	}
	if seq < st.Next {
		return nil, fmt.Errorf("%w: sequence %d, next expected %d", ErrDuplicateSequence, seq, st.Next)
	}
	return nil, fmt.Errorf("%w: sequence %d, next expected %d", ErrOutOfOrderSeq, seq, st.Next)
}

func (s *State) recordSequence(pid uint64, key string, b sentBatch) {
	p := s.producers[pid]
	st := p.Queues[key]
	if st == nil {
		st = &seqState{}
		p.Queues[key] = st
	}
	st.Next = b.Seq + uint64(b.Count)
	st.Recent = append(st.Recent, b)
	if len(st.Recent) > recentBatches {
		st.Recent = append(st.Recent[:0], st.Recent[1:]...)
	}
}
