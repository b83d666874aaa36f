package topics

import (
	"fmt"
	"sort"

	"github.com/ledgermq/ledgermq/internal/enc"
)

// Snapshot captures the state cheaply: queue indexes only grow at their
// end, so the snapshot shares their backing arrays up to the current
// length instead of copying them. Producer state changes in place, so it
// is copied. Call it from the Apply goroutine.
func (s *State) Snapshot() *Snap {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sn := &Snap{nextProducer: s.nextProducer, clockMs: s.clockMs}
	for _, id := range sortedKeys(s.producers) {
		p := s.producers[id]
		sp := snapProducer{id: id, lastSeenMs: p.LastSeenMs}
		for _, k := range sortedKeys(p.Queues) {
			st := p.Queues[k]
			sp.queues = append(sp.queues, snapSeq{key: k, next: st.Next, recent: append([]sentBatch(nil), st.Recent...)})
		}
		sn.producers = append(sn.producers, sp)
	}
	for _, t := range s.listLocked() {
		st := snapTopic{config: t.Config, createdIndex: t.CreatedIndex}
		for _, q := range t.queues {
			q.mu.RLock()
			st.queues = append(st.queues, snapQueue{next: q.next, batches: q.batches[:len(q.batches):len(q.batches)]})
			q.mu.RUnlock()
		}
		sn.topics = append(sn.topics, st)
	}
	return sn
}

func sortedKeys[K uint64 | string, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return ks
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
	topics       []snapTopic // by name
	producers    []snapProducer
	nextProducer uint64
	clockMs      int64
}

type snapTopic struct {
	config       Config
	createdIndex uint64
	queues       []snapQueue
}

type snapQueue struct {
	next    uint64
	batches []BatchRef
}

type snapProducer struct {
	id         uint64
	lastSeenMs int64
	queues     []snapSeq // by key
}

type snapSeq struct {
	key    string
	next   uint64
	recent []sentBatch
}

// Encode writes the snapshot in its binary form (docs/design.md, "State
// snapshots"): clock, producer counter, topics by name with their queues'
// batch indexes (delta-encoded), then producers by id. The same state
// always encodes to the same bytes.
func (sn *Snap) Encode(w *enc.Writer) {
	w.Varint(sn.clockMs)
	w.Uvarint(sn.nextProducer)
	w.Uvarint(uint64(len(sn.topics)))
	for _, t := range sn.topics {
		encodeTopic(w, &t)
	}
	w.Uvarint(uint64(len(sn.producers)))
	for _, p := range sn.producers {
		w.Uvarint(p.id)
		w.Varint(p.lastSeenMs)
		w.Uvarint(uint64(len(p.queues)))
		for _, q := range p.queues {
			w.String(q.key)
			w.Uvarint(q.next)
			w.Uvarint(uint64(len(q.recent)))
			for _, b := range q.recent {
				w.Uvarint(b.Seq)
				w.Uvarint(uint64(b.Count))
				w.Uvarint(b.BaseOffset)
			}
		}
	}
}

func encodeTopic(w *enc.Writer, t *snapTopic) {
	c := t.config
	w.String(c.Name)
	w.Uvarint(uint64(c.Queues))
	w.Varint(c.RetentionMs)
	w.Varint(c.RetentionBytes)
	w.Uvarint(uint64(c.MaxMessageBytes))
	w.Uvarint(t.createdIndex)
	w.Uvarint(uint64(len(t.queues)))
	for _, q := range t.queues {
		w.Uvarint(q.next)
		w.Uvarint(uint64(len(q.batches)))
		var prev BatchRef
		for _, b := range q.batches {
			// Offsets are contiguous, indexes and byte ends grow: deltas.
			w.Uvarint(b.BaseOffset - (prev.BaseOffset + uint64(prev.Count)))
			w.Uvarint(uint64(b.Count))
			w.Uvarint(uint64(b.Part))
			w.Uvarint(b.Index - prev.Index)
			w.Varint(b.MaxTime)
			w.Uvarint(b.End - prev.End)
			prev = b
		}
	}
}

// Decode replaces the state with an encoded snapshot. On error the state
// is unchanged.
func (s *State) Decode(r *enc.Reader) error {
	clock, nextProducer := r.Varint(), r.Uvarint()
	topics := map[string]*Topic{}
	for i, n := 0, r.Count(8); i < n && r.Err() == nil; i++ {
		t := decodeTopic(r)
		if r.Err() == nil {
			if _, dup := topics[t.Name]; dup {
				r.Fail("topic %s twice", t.Name)
			}
			topics[t.Name] = t
		}
	}
	producers := map[uint64]*producerState{}
	for i, n := 0, r.Count(3); i < n && r.Err() == nil; i++ {
		id := r.Uvarint()
		p := &producerState{LastSeenMs: r.Varint(), Queues: map[string]*seqState{}}
		for k, nq := 0, r.Count(3); k < nq && r.Err() == nil; k++ {
			key, st := r.String(), &seqState{Next: r.Uvarint()}
			for j, nb := 0, r.Count(3); j < nb && r.Err() == nil; j++ {
				st.Recent = append(st.Recent, sentBatch{Seq: r.Uvarint(), Count: uint32(r.Uvarint()), BaseOffset: r.Uvarint()})
			}
			p.Queues[key] = st
		}
		producers[id] = p
	}
	if err := r.End(); err != nil {
		return fmt.Errorf("topics: decode snapshot: %w", err)
	}
	s.mu.Lock()
	old := s.topics
	s.topics, s.producers, s.nextProducer, s.clockMs = topics, producers, nextProducer, clock
	s.mu.Unlock()
	for _, t := range old { // wake long polls on the replaced queues
		wakeAll(t)
	}
	return nil
}

func decodeTopic(r *enc.Reader) *Topic {
	c := Config{Name: r.String(), Queues: int(r.Uvarint()), RetentionMs: r.Varint(), RetentionBytes: r.Varint(),
		MaxMessageBytes: int(r.Uvarint())}
	t := &Topic{Config: c, CreatedIndex: r.Uvarint()}
	nq := r.Count(2)
	if r.Err() == nil && (nq != c.Queues || c.Queues > MaxQueues) {
		r.Fail("topic %s: %d queues stored, config says %d", c.Name, nq, c.Queues)
	}
	for i := 0; i < nq && r.Err() == nil; i++ {
		q := newQueue()
		q.next = r.Uvarint()
		var prev BatchRef
		for j, nb := 0, r.Count(6); j < nb && r.Err() == nil; j++ {
			b := BatchRef{BaseOffset: prev.BaseOffset + uint64(prev.Count) + r.Uvarint(), Count: uint32(r.Uvarint()),
				Part: uint16(r.Uvarint()), Index: prev.Index + r.Uvarint(), MaxTime: r.Varint(), End: prev.End + r.Uvarint()}
			q.batches = append(q.batches, b)
			prev = b
		}
		t.queues = append(t.queues, q)
	}
	return t
}
