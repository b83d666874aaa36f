package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ledgermq/ledgermq/replication"
	"github.com/ledgermq/ledgermq/topics"
	"github.com/ledgermq/ledgermq/wire"
)

// DefaultMinIndexWait bounds how long a read with a position token
// (min_index) and no long poll waits for this node to apply it.
const DefaultMinIndexWait = 5 * time.Second

// FetchRequest asks for a queue's stored batches from Offset on, or from
// the first batch at or after Time when Time is set. Any node serves it
// from its applied (so committed) state.
type FetchRequest struct {
	Topic    string
	Queue    int
	Offset   uint64
	Time     *time.Time
	Wait     time.Duration // long poll while the queue has nothing at Offset (at most Config.MaxWait)
	MaxBytes int           // at least one batch is returned whatever its size; 0: up to 64 batches
	// MinIndex is a position token (the index a write answered): the
	// fetch is served once this node has applied it, so it shows that
	// write and everything before it. A node behind it waits, within
	// Wait (DefaultMinIndexWait when Wait is 0), then answers
	// UNAVAILABLE (not applied). 0: serve at once.
	MinIndex uint64
}

// Batch is one stored batch as the producer sent it.
type Batch struct {
	BaseOffset uint64
	Count      uint32
	Data       []byte
}

// Fetched is the answer to a fetch.
type Fetched struct {
	Offset  uint64 // where the fetch started (resolved from Time when given)
	Batches []Batch
	// Next is the offset to fetch from next: after the last batch
	// returned, or Offset when none was.
	Next uint64
	// TimeMs skips records older than it (Unix ms) when the fetch was by
	// time: the first batch may hold older ones.
	TimeMs int64
}

// Fetch returns stored batches of a queue, waiting up to req.Wait for the
// first one. An offset outside the stored range is OFFSET_OUT_OF_RANGE
// with the valid range.
func (s *Service) Fetch(ctx context.Context, req FetchRequest) (*Fetched, error) {
	start := time.Now()
	f, n, size, err := s.fetchBounded(ctx, req)
	if err == nil {
		s.Metrics.fetched(n, size)
		if n > 0 {
			s.Metrics.FetchLatency.Observe(time.Since(start))
		}
	}
	return f, err
}

// Peek is Fetch for a front-end's own bookkeeping rather than for serving
// messages (the Kafka front-end's long-poll wait and timestamp lookup):
// the same checks, waits and answer, but not counted in the fetch metrics.
func (s *Service) Peek(ctx context.Context, req FetchRequest) (*Fetched, error) {
	f, _, _, err := s.fetchBounded(ctx, req)
	return f, err
}

// fetchBounded is Fetch without metrics: the batches within req.MaxBytes
// (at least one), with their message count and framed size.
func (s *Service) fetchBounded(ctx context.Context, req FetchRequest) (*Fetched, int, int, error) {
	if err := s.Authorize(ctx, wire.OpConsume, wire.ResourceTopic, req.Topic); err != nil {
		return nil, 0, 0, err
	}
	n, size := 0, 0
	f, err := s.fetch(ctx, req, func(_ *Fetched, b Batch) bool {
		if req.MaxBytes > 0 && n > 0 && size+wire.FetchFrameHeader+len(b.Data) > req.MaxBytes {
			return false
		}
		n, size = n+int(b.Count), size+wire.FetchFrameHeader+len(b.Data)
		return true
	})
	return f, n, size, err
}

// fetch resolves a fetch (token, time, offset range, long poll) and reads
// its batches one by one for as long as take accepts them: a batch take
// refuses is not returned and ends the read, so nothing is read that the
// answer will not carry. take sees the answer so far (its resolved Offset
// and TimeMs).
func (s *Service) fetch(ctx context.Context, req FetchRequest, take func(*Fetched, Batch) bool) (*Fetched, error) {
	wait := min(req.Wait, s.cfg.MaxWait)
	start := time.Now()
	if err := s.readableAt(ctx, req.MinIndex, wait); err != nil {
		return nil, err
	}
	wait = max(0, wait-time.Since(start)) // one bound for every wait
	t, err := s.topics.Lookup(req.Topic)
	if err != nil {
		return nil, err
	}
	q, err := t.Queue(req.Queue)
	if err != nil {
		return nil, err
	}
	out := &Fetched{Offset: req.Offset, TimeMs: -1 << 62}
	if req.Time != nil {
		out.TimeMs = req.Time.UnixMilli()
		out.Offset = s.reader.OffsetForTime(t, q, out.TimeMs)
	}
	refs, err := s.waitForData(ctx, t, q, req.Queue, out.Offset, wait)
	if err != nil {
		return nil, err
	}
	out.Next = out.Offset
	for _, ref := range refs {
		raw, err := s.reader.Batch(ref)
		if err != nil {
			return nil, err
		}
		b := Batch{BaseOffset: ref.BaseOffset, Count: ref.Count, Data: raw}
		if !take(out, b) {
			break
		}
		out.Batches = append(out.Batches, b)
		out.Next = ref.BaseOffset + uint64(ref.Count)
	}
	return out, nil
}

// waitForData checks offset against the queue's range and long-polls
// while the queue has nothing at offset. Only the leader says an offset
// is beyond the end (OFFSET_OUT_OF_RANGE, on which consumers restart at
// the earliest offset): a follower, or a leader still applying its
// predecessor's entries, may simply lag the reader, who may have read up
// to there on another node. Such a node waits for the queue to grow like
// a long poll at the end, then answers a retriable UNAVAILABLE.
func (s *Service) waitForData(ctx context.Context, t *topics.Topic, q *topics.Queue, queue int, offset uint64, wait time.Duration) ([]topics.BatchRef, error) {
	deadline := time.Now().Add(wait)
	for {
		next, wake := q.Bounds()
		lagging := offset > next && !s.node.IsLeader()
		if offset > next && !lagging {
			return nil, s.outOfRange(t, q, queue, offset)
		}
		if offset < next {
			refs, earliest := s.reader.Refs(t, q, offset, 64)
			if offset < earliest {
				return nil, s.outOfRange(t, q, queue, offset)
			}
			return refs, nil
		}
		left := time.Until(deadline)
		if left <= 0 && lagging {
			return nil, unavailable(fmt.Sprintf("offset %d is beyond the end (%d) of %s/%d on this node, which may lag the leader; read from the leader",
				offset, next, t.Name, queue))
		}
		if left <= 0 {
			return nil, nil
		}
		timer := time.NewTimer(left)
		select {
		case <-wake:
		case <-timer.C:
		case <-ctx.Done():
		case <-s.stop:
		}
		timer.Stop()
		if _, err := s.topics.Lookup(t.Name); err != nil {
			return nil, err
		}
		if ctx.Err() != nil || s.isStopped() {
			return nil, nil
		}
	}
}

// awaitApplied waits until this node has applied index (a position
// token; 0 needs nothing), at most wait (DefaultMinIndexWait if 0). A node
// that does not catch up in time answers a retriable UNAVAILABLE, not
// applied: the reader may ask again, or ask another node.
func (s *Service) awaitApplied(ctx context.Context, index uint64, wait time.Duration) error {
	if index == 0 || s.node.AppliedIndex() >= index {
		return nil
	}
	if wait <= 0 {
		wait = DefaultMinIndexWait
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	go func() { // a closing service ends the wait
		select {
		case <-s.stop:
			cancel()
		case <-wctx.Done():
		}
	}()
	err := s.node.WaitApplied(wctx, index)
	switch {
	case err == nil:
		return nil
	case s.isStopped() || errors.Is(err, replication.ErrClosed):
		return errShuttingDown()
	}
	return unavailable(fmt.Sprintf("not applied: this node has applied the log up to index %d, below min_index %d, and did not catch up within %v; retry, or read from another node (the leader has every acknowledged write)",
		s.node.AppliedIndex(), index, wait))
}

// catchUpWait is how long a read waits for a node that has not caught up
// since it started before it refuses.
const catchUpWait = 200 * time.Millisecond

// readableAt is the gate of every read: with a position token (minIndex >
// 0) the node must have applied it (awaitApplied), which is all the reader
// asked for; without one, the node must have caught up since it started
// (replication.Node.CaughtUp), because until then its state may lack
// topics, messages and offsets that exist and an answer such as
// TOPIC_NOT_FOUND or an early end of a queue would be wrong, not merely
// old. It waits briefly (catchUpWait), then refuses with a retriable
// UNAVAILABLE, not applied: readers ask another node.
func (s *Service) readableAt(ctx context.Context, minIndex uint64, wait time.Duration) error {
	if minIndex > 0 {
		return s.awaitApplied(ctx, minIndex, wait)
	}
	if s.node.CaughtUp() {
		return nil
	}
	t := time.NewTimer(catchUpWait)
	defer t.Stop()
	select {
	case <-s.node.CaughtUpCh():
		return nil
	case <-t.C:
	case <-ctx.Done():
	case <-s.stop:
		return errShuttingDown()
	}
	st := s.node.Status()
	return unavailable(fmt.Sprintf("catching up since start: applied %d, commit index %d; read from another node", st.AppliedIndex, st.CommitIndex))
}

func (s *Service) isStopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

func (s *Service) outOfRange(t *topics.Topic, q *topics.Queue, queue int, offset uint64) error {
	r := s.reader.Range(t, q)
	e := Errorf(wire.CodeOffsetOutOfRange, "offset %d is outside the stored range [%d, %d] of %s/%d", offset, r.Earliest, r.Next, t.Name, queue)
	e.Earliest, e.Latest = &r.Earliest, &r.Next
	return e
}

// Record is one fetched message with its offset.
type Record struct {
	Offset uint64
	wire.Message
}

// Records is the answer to FetchRecords.
type Records struct {
	Records []Record
	Next    uint64
}

// FetchRecords is Fetch decoded into messages for front-ends that show
// records (JSON, the console): at most maxRecords records and about
// req.MaxBytes of keys, values and headers (at least one record). Batches
// are read and decoded one at a time until the records are enough.
func (s *Service) FetchRecords(ctx context.Context, req FetchRequest, maxRecords int) (*Records, error) {
	start := time.Now()
	if err := s.Authorize(ctx, wire.OpConsume, wire.ResourceTopic, req.Topic); err != nil {
		return nil, err
	}
	out := &Records{Records: []Record{}}
	size, started := 0, false
	var bad error
	full := func() bool { return len(out.Records) >= maxRecords || size >= req.MaxBytes }
	f, err := s.fetch(ctx, req, func(f *Fetched, b Batch) bool {
		if bad != nil || full() {
			return false
		}
		if !started { // records before the resolved offset are skipped
			out.Next, started = f.Offset, true
		}
		// The bound every stored batch passed on produce: decoding it
		// allocates at most about twice that, never an unbounded amount.
		_, msgs, err := wire.Decode(b.Data, s.BatchRecordsLimit(), 0)
		if err != nil {
			bad = fmt.Errorf("stored batch at %s/%d offset %d: %w", req.Topic, req.Queue, b.BaseOffset, err)
			return false
		}
		for k := range msgs {
			off := b.BaseOffset + uint64(k)
			if off < out.Next {
				continue
			}
			out.Next = off + 1
			if msgs[k].Timestamp.UnixMilli() < f.TimeMs {
				continue
			}
			out.Records = append(out.Records, Record{Offset: off, Message: msgs[k]})
			size += msgs[k].Size()
			if full() {
				break
			}
		}
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return nil, err
	}
	if !started {
		out.Next = f.Offset
	}
	s.Metrics.fetched(len(out.Records), size)
	if len(out.Records) > 0 {
		s.Metrics.FetchLatency.Observe(time.Since(start))
	}
	return out, nil
}
