package service

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/ledgermq/ledgermq/fsm"
	"github.com/ledgermq/ledgermq/topics"
	"github.com/ledgermq/ledgermq/wire"
)

// Message is one message of a produce request before the broker batches
// it. Queue picks the queue; otherwise a key hashes to one
// (wire.KeyQueue), and a message without either goes round-robin.
type Message struct {
	wire.Message
	Queue *int
}

// Stored is where a produced message or batch was stored.
type Stored struct {
	Queue      int
	BaseOffset uint64 // offset of the (first) message
	Count      uint32 // messages in the batch
	Duplicate  bool   // a resend of a stored batch: not stored again
	// Index is the log index at which the write committed: a position
	// token. A node that has applied it shows the write (see MinIndex).
	Index uint64
}

// Produce stores msgs in topic: grouped by queue into one batch per queue
// (request order kept within a queue), all proposed as one log entry, and
// acknowledged once committed. It returns each message's queue and offset,
// in request order. Messages get the broker's clock as timestamp.
func (s *Service) Produce(ctx context.Context, topic string, msgs []Message) ([]Stored, error) {
	start := time.Now()
	if err := s.Authorize(ctx, wire.OpProduce, wire.ResourceTopic, topic); err != nil {
		return nil, err
	}
	if err := s.RequireLeader(); err != nil {
		return nil, err
	}
	t, err := s.topics.Lookup(topic)
	if err != nil {
		return nil, err
	}
	plan, err := PlanProduce(t, msgs, s.cfg.GroupID, s.cfg.Clock(), s.nextRoundRobin)
	if err != nil {
		return nil, err
	}
	res, index, err := s.proposeProduce(ctx, plan.Parts)
	if err != nil {
		return nil, err
	}
	out := make([]Stored, len(msgs))
	for pi, p := range plan.Parts {
		for k, i := range plan.Members[pi] {
			out[i] = Stored{Queue: p.Queue, BaseOffset: res[pi].BaseOffset + uint64(k), Count: 1, Index: index}
		}
	}
	s.Metrics.produced(len(msgs), plan.Bytes)
	s.Metrics.ProduceLatency.Observe(time.Since(start))
	return out, nil
}

// MaxProduceMessages bounds the messages of one JSON produce request
// (issue 11: batch bounds); more are REQUEST_TOO_LARGE. Larger volumes go
// in several requests or as binary batches.
const MaxProduceMessages = 10000

// ProducePlan is a produce request turned into one batch per queue.
type ProducePlan struct {
	Parts   []topics.Part
	Members [][]int // for each part, the request positions of its messages
	Bytes   int     // encoded batch bytes
}

// PlanProduce validates msgs for topic t and groups them into one batch
// per queue, in first-appearance order; messages keep their request order
// within a queue and get now as timestamp. It is pure apart from rr,
// which picks round-robin queues.
func PlanProduce(t *topics.Topic, msgs []Message, groupID uint32, now time.Time, rr func(string, int) int) (*ProducePlan, error) {
	if len(msgs) == 0 {
		return nil, Errorf(wire.CodeInvalidArgument, "no messages")
	}
	if len(msgs) > MaxProduceMessages {
		return nil, Errorf(wire.CodeRequestTooLarge, "%d messages in one request; the limit is %d", len(msgs), MaxProduceMessages)
	}
	plan := &ProducePlan{}
	slot := map[int]int{} // queue -> part
	for i := range msgs {
		q, err := admit(t, &msgs[i], i, rr)
		if err != nil {
			return nil, err
		}
		pi, ok := slot[q]
		if !ok {
			pi = len(plan.Parts)
			slot[q] = pi
			plan.Parts = append(plan.Parts, topics.Part{Topic: t.Name, Queue: q})
			plan.Members = append(plan.Members, nil)
		}
		plan.Members[pi] = append(plan.Members[pi], i)
	}
	for pi := range plan.Parts {
		batch := make([]wire.Message, len(plan.Members[pi]))
		for k, i := range plan.Members[pi] {
			batch[k] = msgs[i].Message
			batch[k].Timestamp = now
		}
		enc, err := wire.Encode(batch, wire.CodecNone, wire.Producer{}, groupID, now)
		if err != nil {
			return nil, err
		}
		plan.Parts[pi].Batch = enc
		plan.Bytes += len(enc)
	}
	return plan, nil
}

// admit checks message i against t and picks its queue.
func admit(t *topics.Topic, m *Message, i int, rr func(string, int) int) (int, error) {
	wire.SortHeaders(m.Headers)
	if len(m.Headers) > wire.MaxHeaders {
		return 0, Errorf(wire.CodeMessageTooLarge, "message %d has %d headers; the limit is %d", i, len(m.Headers), wire.MaxHeaders)
	}
	if size := m.LimitSize(); size > t.MaxMessageBytes {
		return 0, Errorf(wire.CodeMessageTooLarge, "message %d is %d bytes (%d per header on top of its bytes); topic %s allows %d", i, size, wire.HeaderOverhead, t.Name, t.MaxMessageBytes)
	}
	switch {
	case m.Queue != nil:
		if q := *m.Queue; q < 0 || q >= t.Queues {
			return 0, Errorf(wire.CodeQueueNotFound, "message %d: topic %s has queues 0..%d, not %d", i, t.Name, t.Queues-1, q)
		}
		return *m.Queue, nil
	case m.Key != nil:
		return wire.KeyQueue(m.Key, t.Queues), nil
	}
	return rr(t.Name, t.Queues), nil
}

func (s *Service) nextRoundRobin(topic string, queues int) int {
	v, _ := s.rr.LoadOrStore(topic, new(atomic.Uint64))
	return int(v.(*atomic.Uint64).Add(1) % uint64(queues))
}

// ProduceBatch stores one binary batch (wire format) in a queue exactly
// as received, after validating it whole: header, CRC, every record, the
// topic's message size limit. batch must not be modified afterwards.
func (s *Service) ProduceBatch(ctx context.Context, topic string, queue int, batch []byte) (Stored, error) {
	start := time.Now()
	if err := s.Authorize(ctx, wire.OpProduce, wire.ResourceTopic, topic); err != nil {
		return Stored{}, err
	}
	if err := s.RequireLeader(); err != nil {
		return Stored{}, err
	}
	h, err := s.checkBatch(topic, queue, batch)
	if err != nil {
		return Stored{}, err
	}
	res, index, err := s.proposeProduce(ctx, []topics.Part{{Topic: topic, Queue: queue, Batch: batch}})
	if err != nil {
		return Stored{}, err
	}
	s.Metrics.produced(int(h.Count), len(batch))
	s.Metrics.ProduceLatency.Observe(time.Since(start))
	return Stored{Queue: queue, BaseOffset: res[0].BaseOffset, Count: res[0].Count, Duplicate: res[0].Duplicate, Index: index}, nil
}

// checkBatch validates a binary batch for a queue of topic before it is
// proposed.
func (s *Service) checkBatch(topic string, queue int, batch []byte) (wire.BatchHeader, error) {
	t, err := s.topics.Lookup(topic)
	if err != nil {
		return wire.BatchHeader{}, err
	}
	if _, err := t.Queue(queue); err != nil {
		return wire.BatchHeader{}, err
	}
	// Validate keeps no records: the leader allocates the decompressed
	// records (at most BatchRecordsLimit) and little else, however the
	// records are shaped (issue 11: header bomb).
	return wire.Validate(batch, s.BatchRecordsLimit(), t.MaxMessageBytes)
}

// PartResult is the outcome of one part of ProduceBatches: where it was
// stored, or why not.
type PartResult struct {
	Stored Stored
	Err    error
}

// ProduceBatches stores binary batches for several queues, of one topic or
// many, as one log entry (POST /v1/produce). Parts succeed or fail on
// their own, as Kafka's partitions of one ProduceRequest do: a part that
// is not authorized, names an unknown topic or queue, or whose batch is
// invalid, out of sequence or too large is refused with its own error and
// the others are stored. The error return is for what fails the request
// as a whole: not the leader, not authenticated, a proposal whose commit
// could not be confirmed (every part's outcome is then unknown).
func (s *Service) ProduceBatches(ctx context.Context, parts []wire.ProducePart) ([]PartResult, error) {
	start := time.Now()
	if len(parts) > wire.MaxProduceParts {
		return nil, Errorf(wire.CodeRequestTooLarge, "%d parts in one produce request (at most %d)", len(parts), wire.MaxProduceParts)
	}
	if err := s.RequireLeader(); err != nil {
		return nil, err
	}
	out := make([]PartResult, len(parts))
	prop := make([]topics.Part, 0, len(parts))
	at := make([]int, 0, len(parts))
	authz := map[string]error{}
	for i, p := range parts {
		err, seen := authz[p.Topic]
		if !seen {
			err = s.Authorize(ctx, wire.OpProduce, wire.ResourceTopic, p.Topic)
			if err != nil && s.AsError(err).Code == wire.CodeUnauthenticated {
				return nil, err // who is asking is unknown: no part can be answered
			}
			authz[p.Topic] = err
		}
		if err == nil {
			_, err = s.checkBatch(p.Topic, p.Queue, p.Batch)
		}
		if err != nil {
			out[i].Err = err
			continue
		}
		prop = append(prop, topics.Part{Topic: p.Topic, Queue: p.Queue, Batch: p.Batch})
		at = append(at, i)
	}
	if len(prop) == 0 {
		return out, nil
	}
	res, index, err := s.proposeParts(ctx, prop)
	if err != nil {
		return nil, err
	}
	for k, r := range res {
		i := at[k]
		if r.Err != nil {
			out[i].Err = r.Err
			continue
		}
		out[i].Stored = Stored{Queue: prop[k].Queue, BaseOffset: r.BaseOffset, Count: r.Count, Duplicate: r.Duplicate, Index: index}
		s.Metrics.produced(int(r.Count), len(prop[k].Batch))
	}
	s.Metrics.ProduceLatency.Observe(time.Since(start))
	return out, nil
}

// BatchRecordsLimit bounds a batch's decompressed records and their
// charged size (wire.Message.ChargedSize): 4× MaxRequestBytes. Produce
// refuses batches over it and every decode of a stored batch uses it.
func (s *Service) BatchRecordsLimit() int { return s.cfg.MaxRequestBytes * 4 }

// InitProducer hands out a new idempotent producer id.
func (s *Service) InitProducer(ctx context.Context) (uint64, error) {
	if err := s.requireIdentity(ctx); err != nil {
		return 0, err
	}
	return propose(s, ctx, fsm.InitProducer, s.cfg.Clock().UnixMilli())
}

// proposeProduce proposes the parts as one entry and returns each part's
// result and the entry's index, failing if any part failed.
func (s *Service) proposeProduce(ctx context.Context, parts []topics.Part) ([]topics.ProduceResult, uint64, error) {
	res, index, err := s.proposeParts(ctx, parts)
	if err != nil {
		return nil, 0, err
	}
	for _, r := range res {
		if r.Err != nil {
			return nil, 0, r.Err
		}
	}
	return res, index, nil
}

// proposeParts proposes parts as one produce entry and returns each
// part's result as the state machine applied it, and the entry's index.
func (s *Service) proposeParts(ctx context.Context, parts []topics.Part) ([]topics.ProduceResult, uint64, error) {
	start := time.Now()
	res, index, err := proposeIndexed(s, ctx, fsm.Produce, topics.ProduceCmd{TimeMs: s.cfg.Clock().UnixMilli(), Parts: parts})
	if err != nil {
		return nil, 0, err
	}
	s.Metrics.CommitLatency.Observe(time.Since(start))
	return res, index, nil
}

// proposeIndexed is propose that also returns the index at which the
// command committed.
func proposeIndexed[Req, Res any](s *Service, ctx context.Context, op fsm.Op[Req, Res], req Req) (Res, uint64, error) {
	if err := s.RequireLeader(); err != nil {
		var zero Res
		return zero, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ProposeTimeout)
	defer cancel()
	return fsm.ProposeIndexed(ctx, s.node, op, req)
}
