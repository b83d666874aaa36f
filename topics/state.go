package topics

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// BatchRef locates one stored batch of a queue.
type BatchRef struct {
	BaseOffset uint64 // offset of the batch's first record
	Count      uint32 // records in the batch
	Part       uint16 // which part of the produce command at Index
	Index      uint64 // commit-log index of the produce command
	MaxTime    int64  // index time, Unix ms: the newest record time, made monotonic (see append)
	End        uint64 // bytes stored in the queue up to and including this batch
}

// Horizon says which stored batches a reader may see: those whose log
// entry is still retained (FirstIndex), and the topic's own retention by
// time (newest record at or after MinTimeMs) and by bytes (the newest
// MaxBytes of the queue). Topic retention is applied when reading; the log
// itself is deleted by the broker-wide retention. 0 disables a bound.
type Horizon struct {
	FirstIndex uint64
	MinTimeMs  int64
	MaxBytes   int64
}

// Queue is one queue's offset index.
type Queue struct {
	mu      sync.RWMutex
	batches []BatchRef // ordered by BaseOffset, contiguous
	next    uint64     // offset the next record gets
	wake    chan struct{}
}

func newQueue() *Queue { return &Queue{wake: make(chan struct{})} }

// Topic is a topic's configuration and queues.
type Topic struct {
	Config
	CreatedIndex uint64 // log index of the create command
	queues       []*Queue
}

// Queue returns queue q or ErrQueueNotFound.
func (t *Topic) Queue(q int) (*Queue, error) {
	if q < 0 || q >= len(t.queues) {
		return nil, fmt.Errorf("%w: topic %s has queues 0..%d, not %d", ErrQueueNotFound, t.Name, len(t.queues)-1, q)
	}
	return t.queues[q], nil
}

// State is the replicated topic state. Apply is called from one goroutine;
// every other method is safe to call concurrently with it.
type State struct {
	mu     sync.RWMutex // guards topics
	topics map[string]*Topic
	// Producer state and the clock belong to the FSM goroutine (Apply,
	// Snapshot, Restore); no other goroutine reads them.
	producers    map[uint64]*producerState
	nextProducer uint64
	clockMs      int64 // newest leader time seen in a command
}

// New returns an empty state.
func New() *State {
	return &State{topics: map[string]*Topic{}, producers: map[uint64]*producerState{}}
}

// ProduceResult is the outcome of one part of a produce command.
type ProduceResult struct {
	BaseOffset uint64
	Count      uint32
	Duplicate  bool // a resend of a stored batch: not stored again
	Err        error
}

// The methods below apply committed commands; the state machine's command
// registry (package fsm) calls them from its one Apply goroutine, in log
// order. They are deterministic: same state and command, same result.

// Create applies a create-topic command at log index.
func (s *State) Create(index uint64, c Config) (*Topic, error) {
	if err := c.Normalize(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.topics[c.Name]; ok {
		return nil, fmt.Errorf("%w: %s", ErrTopicExists, c.Name)
	}
	t := &Topic{Config: c, CreatedIndex: index, queues: make([]*Queue, c.Queues)}
	for i := range t.queues {
		t.queues[i] = newQueue()
	}
	s.topics[c.Name] = t
	return t, nil
}

// Delete applies a delete-topic command.
func (s *State) Delete(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.topics[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrTopicNotFound, name)
	}
	delete(s.topics, name)
	// A topic created again under this name starts afresh: producer
	// sequences for it are forgotten (deleting from maps while ranging is
	// deterministic: every entry of the topic goes).
	prefix := name + "/"
	for _, p := range s.producers {
		for k := range p.Queues {
			if strings.HasPrefix(k, prefix) {
				delete(p.Queues, k)
			}
		}
	}
	wakeAll(t) // long polls find the topic gone
	return nil
}

// Produce applies a produce command at log index: each part's batch is
// appended to its queue, or refused with the part's Err.
func (s *State) Produce(index uint64, c ProduceCmd) []ProduceResult {
	res := make([]ProduceResult, len(c.Parts))
	// A read lock suffices: the topic map is not changed here, queues have
	// their own locks, and producer state and the clock are touched only
	// by Apply, Snapshot and Restore, which all run on the one FSM
	// goroutine. Readers of topics are not held up by every produce.
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.advanceClock(c.TimeMs)
	for i, p := range c.Parts {
		t, ok := s.topics[p.Topic]
		if !ok {
			res[i].Err = fmt.Errorf("%w: %s", ErrTopicNotFound, p.Topic)
			continue
		}
		q, err := t.Queue(p.Queue)
		if err != nil {
			res[i].Err = err
			continue
		}
		h, err := wire.ParseHeader(p.Batch)
		if err != nil {
			res[i].Err = fmt.Errorf("%w: %w", ErrInvalidArgument, err)
			continue
		}
		key := p.Topic + "/" + strconv.Itoa(p.Queue)
		if h.ProducerID != 0 {
			dup, err := s.checkSequence(h.ProducerID, key, h.Sequence, h.Count, now)
			if err != nil {
				res[i].Err = err
				continue
			}
			if dup != nil {
				res[i] = ProduceResult{BaseOffset: dup.BaseOffset, Count: dup.Count, Duplicate: true}
				continue
			}
		}
		ref := q.append(index, uint16(i), h, len(p.Batch), c.TimeMs)
		res[i] = ProduceResult{BaseOffset: ref.BaseOffset, Count: h.Count}
		if h.ProducerID != 0 {
			s.recordSequence(h.ProducerID, key, sentBatch{Seq: h.Sequence, Count: h.Count, BaseOffset: ref.BaseOffset})
		}
	}
	return res
}

// MaxFutureMs bounds how far ahead of the leader's clock a batch's
// timestamps count for the time index (Kafka's
// message.timestamp.after.max.ms): a producer clock far ahead cannot keep
// the batches after it from expiring.
const MaxFutureMs = int64(time.Hour / time.Millisecond)

// append adds a batch at the queue's end and wakes its long polls. The
// batch's index time is its newest record time, at most MaxFutureMs after
// the command's time (the leader's clock; 0 in logs that predate it), and
// never before the previous batch's: index times are monotonic, so the
// time horizon and FindTime can search them, and a batch stamped 0 (or
// any old time) cannot hide the batches before it.
func (q *Queue) append(index uint64, part uint16, h wire.BatchHeader, size int, nowMs int64) BatchRef {
	q.mu.Lock()
	defer q.mu.Unlock()
	var end uint64
	t := h.MaxTimestamp
	if nowMs > 0 {
		t = min(t, nowMs+MaxFutureMs)
	}
	if n := len(q.batches); n > 0 {
		end = q.batches[n-1].End
		t = max(t, q.batches[n-1].MaxTime)
	}
	ref := BatchRef{BaseOffset: q.next, Count: h.Count, Part: part, Index: index, MaxTime: t, End: end + uint64(size)}
	q.batches = append(q.batches, ref)
	q.next += uint64(h.Count)
	close(q.wake)
	q.wake = make(chan struct{})
	return ref
}

// wakeAll wakes every long poll on t's queues.
func wakeAll(t *Topic) {
	for _, q := range t.queues {
		q.mu.Lock()
		close(q.wake)
		q.wake = make(chan struct{})
		q.mu.Unlock()
	}
}

// Lookup returns a topic.
func (s *State) Lookup(name string) (*Topic, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.topics[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrTopicNotFound, name)
	}
	return t, nil
}

// List returns the topics ordered by name.
func (s *State) List() []*Topic {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.listLocked()
}

func sortTopics(ts []*Topic) {
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
}

// Bounds returns the queue's next offset and a channel closed when a
// batch is appended (or the topic is deleted).
func (q *Queue) Bounds() (next uint64, wake <-chan struct{}) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.next, q.wake
}

// visible returns the position of the first batch inside h. q.mu must be
// held.
func (q *Queue) visible(h Horizon) int {
	lo := sort.Search(len(q.batches), func(i int) bool { return q.batches[i].Index >= h.FirstIndex })
	if h.MaxBytes > 0 && len(q.batches) > 0 {
		total := q.batches[len(q.batches)-1].End
		if total > uint64(h.MaxBytes) {
			cut := total - uint64(h.MaxBytes)
			lo = max(lo, sort.Search(len(q.batches), func(i int) bool { return q.batches[i].End > cut }))
		}
	}
	if h.MinTimeMs != 0 { // index times are monotonic (append)
		lo = max(lo, sort.Search(len(q.batches), func(i int) bool { return q.batches[i].MaxTime >= h.MinTimeMs }))
	}
	return lo
}

// Find returns up to max batch references starting with the batch that
// holds offset (offset < next), within the horizon; earliest is the first
// visible offset (next if none).
func (q *Queue) Find(offset uint64, h Horizon, max int) (refs []BatchRef, earliest uint64) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	lo := q.visible(h)
	if lo == len(q.batches) {
		return nil, q.next
	}
	earliest = q.batches[lo].BaseOffset
	if offset < earliest {
		offset = earliest
	}
	i := sort.Search(len(q.batches), func(i int) bool {
		b := q.batches[i]
		return b.BaseOffset+uint64(b.Count) > offset
	})
	end := min(len(q.batches), i+max)
	return append([]BatchRef(nil), q.batches[i:end]...), earliest
}

// FindTime returns the offset of the first visible batch whose newest
// record is at or after ms (Unix milliseconds), or next if none.
func (q *Queue) FindTime(ms int64, h Horizon) uint64 {
	q.mu.RLock()
	defer q.mu.RUnlock()
	lo := q.visible(h)
	i := lo + sort.Search(len(q.batches)-lo, func(i int) bool { return q.batches[lo+i].MaxTime >= ms })
	if i == len(q.batches) {
		return q.next
	}
	return q.batches[i].BaseOffset
}

// NextOffsets returns each queue's next offset.
func (t *Topic) NextOffsets() []uint64 {
	out := make([]uint64, len(t.queues))
	for i, q := range t.queues {
		out[i], _ = q.Bounds()
	}
	return out
}

// Prune drops from every queue's index the batches stored in log entries
// below firstIndex (the commit log's first retained index): their bytes
// are gone, no read can reach them, and without pruning the index (and
// every snapshot) would grow with all history. It returns how many
// references it dropped. Offsets, byte ends and the producers' windows are
// unaffected, so results of later commands do not depend on when a node
// pruned: a node prunes by its own retention.
func (s *State) Prune(firstIndex uint64) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	dropped := 0
	for _, t := range s.topics {
		for _, q := range t.queues {
			dropped += q.prune(firstIndex)
		}
	}
	return dropped
}

func (q *Queue) prune(firstIndex uint64) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := sort.Search(len(q.batches), func(i int) bool { return q.batches[i].Index >= firstIndex })
	if k == 0 {
		return 0
	}
	// A copy, not a reslice: the dropped prefix's memory is released (once
	// no snapshot in progress shares the old array), and nobody holding
	// the old slice sees it change.
	q.batches = append(make([]BatchRef, 0, len(q.batches)-k+16), q.batches[k:]...)
	return k
}

// Batches returns how many batch references the queue indexes hold.
func (s *State) Batches() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, t := range s.topics {
		for _, q := range t.queues {
			q.mu.RLock()
			n += len(q.batches)
			q.mu.RUnlock()
		}
	}
	return n
}
