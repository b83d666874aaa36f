package topics

import (
	"fmt"
	"time"
)

// ProduceLog gives the read path the payloads of committed produce
// commands by log index; the broker's replication node, through the
// command registry, implements it. FirstIndex is the oldest entry still
// retained.
type ProduceLog interface {
	ProducePayload(index uint64) ([]byte, error)
	FirstIndex() uint64
}

// Reader serves a node's stored batches: it turns a queue's BatchRefs into
// the bytes of the batches as the producer sent them, and applies the
// topic's retention to what readers may see. It is safe for concurrent
// use alongside Apply.
type Reader struct {
	state *State
	log   ProduceLog
	now   func() time.Time
}

// NewReader reads s's batches from log; now is the clock retention by time
// is measured with (time.Now when nil).
func NewReader(s *State, log ProduceLog, now func() time.Time) *Reader {
	if now == nil {
		now = time.Now
	}
	return &Reader{state: s, log: log, now: now}
}

// Horizon is what readers of t may see now: entries still in the log,
// within the topic's retention by time and by bytes.
func (r *Reader) Horizon(t *Topic) Horizon {
	h := Horizon{FirstIndex: r.log.FirstIndex(), MaxBytes: t.RetentionBytes}
	if t.RetentionMs > 0 {
		h.MinTimeMs = r.now().UnixMilli() - t.RetentionMs
	}
	return h
}

// Batch returns the stored bytes of the batch ref points to: part
// ref.Part of the produce command at ref.Index.
func (r *Reader) Batch(ref BatchRef) ([]byte, error) {
	payload, err := r.log.ProducePayload(ref.Index)
	if err != nil {
		return nil, err
	}
	b, err := partAt(payload, int(ref.Part))
	if err != nil {
		return nil, fmt.Errorf("topics: log entry %d: %w", ref.Index, err)
	}
	return b, nil
}

// Range is a queue's readable offsets: [Earliest, Next).
type Range struct {
	Earliest, Next uint64
}

// Range returns the offsets of queue q that readers may see now.
func (r *Reader) Range(t *Topic, q *Queue) Range {
	next, _ := q.Bounds()
	_, earliest := q.Find(next, r.Horizon(t), 0)
	return Range{Earliest: min(earliest, next), Next: next}
}

// Bytes returns the stored batch bytes of queue q that readers may see
// now (the batches as the producer sent them, without log framing). It
// reads one batch from the log when the first visible batch's size is not
// known from the index (its predecessor was pruned).
func (r *Reader) Bytes(t *Topic, q *Queue) uint64 {
	q.mu.RLock()
	lo := q.visible(r.Horizon(t))
	if lo == len(q.batches) {
		q.mu.RUnlock()
		return 0
	}
	last, first := q.batches[len(q.batches)-1].End, q.batches[lo]
	var start uint64
	known := lo > 0 || first.BaseOffset == 0
	if lo > 0 {
		start = q.batches[lo-1].End
	}
	q.mu.RUnlock()
	if !known {
		b, err := r.Batch(first)
		if err != nil { // retention removed it meanwhile: count from its end
			return last - first.End
		}
		start = first.End - uint64(len(b))
	}
	return last - start
}

// Refs returns up to max batch references of q from offset on (offset <
// next), and the earliest visible offset; see Queue.Find.
func (r *Reader) Refs(t *Topic, q *Queue, offset uint64, max int) ([]BatchRef, uint64) {
	return q.Find(offset, r.Horizon(t), max)
}

// OffsetForTime returns the offset of the first visible batch of q whose
// newest record is at or after ms (Unix milliseconds), or next if none.
func (r *Reader) OffsetForTime(t *Topic, q *Queue, ms int64) uint64 {
	return q.FindTime(ms, r.Horizon(t))
}
