package broker

import (
	"encoding/base64"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ledgermq/ledgermq/topics"
	"github.com/ledgermq/ledgermq/wire"
)

// KeyQueue is wire.KeyQueue, the documented key-to-queue hash.
func KeyQueue(key []byte, queues int) int { return wire.KeyQueue(key, queues) }

// produceJSON handles POST /v1/topics/{t}/messages: the messages are
// grouped by queue into one batch per queue, all proposed as one Raft
// entry, and acknowledged only once it is committed.
func (b *Broker) produceJSON(ctx *fasthttp.RequestCtx, topic string) {
	if !b.node.IsLeader() {
		b.writeError(ctx, b.notLeader())
		return
	}
	t, err := b.topics.Lookup(topic)
	if err != nil {
		b.writeError(ctx, err)
		return
	}
	plan, err := planProduce(t, ctx.PostBody(), b.cfg.GroupID, time.Now(), b.nextRoundRobin)
	if err != nil {
		b.writeError(ctx, err)
		return
	}
	res, err := b.proposeProduce(plan.parts)
	if err != nil {
		b.writeError(ctx, err)
		return
	}
	out := wire.ProduceResponse{Results: make([]wire.ProduceResult, plan.count)}
	for pi, p := range plan.parts {
		for k, i := range plan.members[pi] {
			out.Results[i] = wire.ProduceResult{Queue: p.Queue, Offset: res[pi].BaseOffset + uint64(k)}
		}
	}
	b.m.produced(plan.count, len(ctx.PostBody()))
	b.writeJSON(ctx, http.StatusOK, out)
}

// producePlan is a JSON produce request turned into one batch per queue.
type producePlan struct {
	parts   []topics.Part
	members [][]int // for each part, the request positions of its messages
	count   int
}

// planProduce decodes and validates a JSON produce body for topic t and
// groups the messages into one batch per queue, in first-appearance order;
// messages keep their request order within a queue. It is pure apart from
// rr, which picks round-robin queues; fuzzed by FuzzPlanProduce.
func planProduce(t *topics.Topic, body []byte, groupID uint32, now time.Time, rr func(string, int) int) (*producePlan, error) {
	var req wire.ProduceRequest
	if err := decodeStrict(body, &req); err != nil {
		return nil, err
	}
	if len(req.Messages) == 0 {
		return nil, newAPIError(http.StatusBadRequest, wire.CodeInvalidArgument, "no messages")
	}
	plan := &producePlan{count: len(req.Messages)}
	msgs := make([]wire.Message, len(req.Messages))
	slot := map[int]int{} // queue -> part
	for i := range req.Messages {
		m, q, aerr := toMessage(t, &req.Messages[i], i, now, rr)
		if aerr != nil {
			return nil, aerr
		}
		msgs[i] = m
		pi, ok := slot[q]
		if !ok {
			pi = len(plan.parts)
			slot[q] = pi
			plan.parts = append(plan.parts, topics.Part{Topic: t.Name, Queue: q})
			plan.members = append(plan.members, nil)
		}
		plan.members[pi] = append(plan.members[pi], i)
	}
	for pi := range plan.parts {
		batch := make([]wire.Message, len(plan.members[pi]))
		for k, i := range plan.members[pi] {
			batch[k] = msgs[i]
		}
		enc, err := wire.Encode(batch, wire.CodecNone, wire.Producer{}, groupID, now)
		if err != nil {
			return nil, err
		}
		plan.parts[pi].Batch = enc
	}
	return plan, nil
}

func toMessage(t *topics.Topic, pm *wire.ProduceMessage, i int, now time.Time, rr func(string, int) int) (wire.Message, int, *apiError) {
	var m wire.Message
	switch {
	case pm.Value != nil && pm.ValueBase64 != nil:
		return m, 0, newAPIError(http.StatusBadRequest, wire.CodeInvalidArgument, "message %d has both value and value_base64", i)
	case pm.Value != nil:
		m.Value = []byte(*pm.Value)
	case pm.ValueBase64 != nil:
		v, err := base64.StdEncoding.DecodeString(*pm.ValueBase64)
		if err != nil {
			return m, 0, newAPIError(http.StatusBadRequest, wire.CodeInvalidArgument, "message %d: value_base64: %v", i, err)
		}
		m.Value = v
	default:
		m.Value = []byte{}
	}
	if pm.Key != nil {
		m.Key = []byte(*pm.Key)
	}
	for k, v := range pm.Headers {
		m.Headers = append(m.Headers, wire.Header{Key: k, Value: []byte(v)})
	}
	wire.SortHeaders(m.Headers)
	m.Timestamp = now
	if m.Size() > t.MaxMessageBytes {
		return m, 0, newAPIError(http.StatusRequestEntityTooLarge, wire.CodeMessageTooLarge,
			"message %d is %d bytes; topic %s allows %d", i, m.Size(), t.Name, t.MaxMessageBytes)
	}
	var q int
	switch {
	case pm.Queue != nil:
		q = *pm.Queue
		if q < 0 || q >= t.Queues {
			return m, 0, newAPIError(http.StatusNotFound, wire.CodeQueueNotFound, "message %d: topic %s has queues 0..%d, not %d", i, t.Name, t.Queues-1, q)
		}
	case m.Key != nil:
		q = KeyQueue(m.Key, t.Queues)
	default:
		q = rr(t.Name, t.Queues)
	}
	return m, q, nil
}

func (b *Broker) nextRoundRobin(topic string, queues int) int {
	v, _ := b.rr.LoadOrStore(topic, new(atomic.Uint64))
	return int(v.(*atomic.Uint64).Add(1) % uint64(queues))
}

// produceBatch handles POST /v1/topics/{t}/queues/{q}/batches: one
// binary batch, validated and stored exactly as received.
func (b *Broker) produceBatch(ctx *fasthttp.RequestCtx, topic string, queue int) {
	if !b.node.IsLeader() {
		b.writeError(ctx, b.notLeader())
		return
	}
	ct, _, _ := strings.Cut(string(ctx.Request.Header.ContentType()), ";")
	if ct = strings.TrimSpace(ct); ct != wire.ContentType {
		b.writeError(ctx, newAPIError(http.StatusUnsupportedMediaType, wire.CodeUnsupportedMedia, "content type must be %s, got %q", wire.ContentType, ct))
		return
	}
	t, err := b.topics.Lookup(topic)
	if err != nil {
		b.writeError(ctx, err)
		return
	}
	if _, err := t.Queue(queue); err != nil {
		b.writeError(ctx, err)
		return
	}
	body := ctx.PostBody()
	h, _, err := wire.Decode(body, b.cfg.MaxRequestBytes*4, t.MaxMessageBytes)
	if err != nil {
		b.writeError(ctx, err)
		return
	}
	batch := append([]byte(nil), body...) // the request buffer is reused after the handler
	res, err := b.proposeProduce([]topics.Part{{Topic: topic, Queue: queue, Batch: batch}})
	if err != nil {
		b.writeError(ctx, err)
		return
	}
	b.m.produced(int(h.Count), len(body))
	b.writeJSON(ctx, http.StatusOK, wire.BatchProduceResponse{Queue: queue, BaseOffset: res[0].BaseOffset, Count: res[0].Count, Duplicate: res[0].Duplicate})
}

// initProducer handles POST /v1/producers: a new idempotent producer id.
func (b *Broker) initProducer(ctx *fasthttp.RequestCtx) {
	res, err := b.propose(topics.EncodeInitProducer(time.Now().UnixMilli()))
	if err != nil {
		b.writeError(ctx, err)
		return
	}
	b.writeJSON(ctx, http.StatusOK, wire.InitProducerResponse{ProducerID: res.(uint64)})
}

// proposeProduce proposes the parts as one entry and returns each part's
// result, failing if any part failed.
func (b *Broker) proposeProduce(parts []topics.Part) ([]topics.ProduceResult, error) {
	start := time.Now()
	res, err := b.propose(topics.EncodeProduce(time.Now().UnixMilli(), parts))
	if err != nil {
		return nil, err
	}
	b.m.commitLatency.observe(time.Since(start))
	out := res.([]topics.ProduceResult)
	for _, r := range out {
		if r.Err != nil {
			return nil, r.Err
		}
	}
	return out, nil
}

func (b *Broker) notLeader() error { return b.notLeaderError(b.node.Leader().ID) }
