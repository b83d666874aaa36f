package broker

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/ledgermq/ledgermq/topics"
	"github.com/ledgermq/ledgermq/wire"
)

// A fetch is served by any node from its applied (so committed) state.

type fetchParams struct {
	queue    *topics.Queue
	queueID  int
	topic    *topics.Topic
	offset   uint64
	timeMs   int64 // skip records older than this (from ?timestamp)
	wait     time.Duration
	maxMsgs  int
	maxBytes int
}

func (b *Broker) parseFetch(ctx *fasthttp.RequestCtx, topic string, queue int) (*fetchParams, error) {
	t, err := b.topics.Lookup(topic)
	if err != nil {
		return nil, err
	}
	q, err := t.Queue(queue)
	if err != nil {
		return nil, err
	}
	p := &fetchParams{queue: q, queueID: queue, topic: t, timeMs: -1 << 62}
	off, aerr := queryInt(ctx, "offset", 0, 0, 1<<62)
	if aerr != nil {
		return nil, aerr
	}
	p.offset = uint64(off)
	w, aerr := queryInt(ctx, "wait_ms", 0, 0, b.cfg.MaxWait.Milliseconds())
	if aerr != nil {
		return nil, aerr
	}
	p.wait = time.Duration(w) * time.Millisecond
	n, aerr := queryInt(ctx, "max_messages", 100, 1, 10000)
	if aerr != nil {
		return nil, aerr
	}
	p.maxMsgs = int(n)
	mb, aerr := queryInt(ctx, "max_bytes", 1<<20, 1, 64<<20)
	if aerr != nil {
		return nil, aerr
	}
	p.maxBytes = int(mb)
	if ts := ctx.QueryArgs().Peek("timestamp"); ts != nil {
		if ctx.QueryArgs().Has("offset") {
			return nil, newAPIError(http.StatusBadRequest, wire.CodeInvalidArgument, "give offset or timestamp, not both")
		}
		at, err := time.Parse(time.RFC3339Nano, string(ts))
		if err != nil {
			return nil, newAPIError(http.StatusBadRequest, wire.CodeInvalidArgument, "timestamp must be RFC3339: %v", err)
		}
		p.timeMs = at.UnixMilli()
		p.offset = q.FindTime(p.timeMs, b.horizon(t))
	}
	return p, nil
}

// waitForData resolves the start of a fetch: it checks the offset against
// the queue's range and long-polls while the queue has nothing at offset.
func (b *Broker) waitForData(p *fetchParams) ([]topics.BatchRef, error) {
	deadline := time.Now().Add(p.wait)
	for {
		next, wake := p.queue.Bounds()
		if p.offset > next {
			return nil, b.outOfRange(p, next)
		}
		if p.offset < next {
			refs, earliest := p.queue.Find(p.offset, b.horizon(p.topic), 64)
			if p.offset < earliest {
				return nil, b.outOfRange(p, next)
			}
			return refs, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, nil
		}
		timer := time.NewTimer(left)
		select {
		case <-wake:
		case <-timer.C:
		case <-b.stop:
		}
		timer.Stop()
		if _, err := b.topics.Lookup(p.topic.Name); err != nil {
			return nil, err
		}
		select {
		case <-b.stop:
			return nil, nil
		default:
		}
	}
}

func (b *Broker) outOfRange(p *fetchParams, next uint64) error {
	_, earliest := p.queue.Find(next, b.horizon(p.topic), 0)
	earliest = min(earliest, next)
	e := newAPIError(http.StatusRequestedRangeNotSatisfiable, wire.CodeOffsetOutOfRange,
		"offset %d is outside the stored range [%d, %d] of %s/%d", p.offset, earliest, next, p.topic.Name, p.queueID)
	e.body.Earliest, e.body.Latest = &earliest, &next
	return e
}

// startFetch parses a fetch request and waits (long poll) for its data.
func (b *Broker) startFetch(ctx *fasthttp.RequestCtx, topic string, queue int) (*fetchParams, []topics.BatchRef, error) {
	p, err := b.parseFetch(ctx, topic, queue)
	if err != nil {
		return nil, nil, err
	}
	refs, err := b.waitForData(p)
	return p, refs, err
}

// readBatch returns the stored bytes of a batch.
func (b *Broker) readBatch(ref topics.BatchRef) ([]byte, error) {
	e, err := b.node.Log().Read(ref.Index)
	if err != nil {
		return nil, fmt.Errorf("read log entry %d: %w", ref.Index, err)
	}
	_, parts, err := topics.DecodeProduce(e.Data)
	if err != nil || int(ref.Part) >= len(parts) {
		return nil, fmt.Errorf("log entry %d is not the expected produce command: %v", ref.Index, err)
	}
	return parts[ref.Part].Batch, nil
}

func (b *Broker) fetchJSON(ctx *fasthttp.RequestCtx, topic string, queue int) {
	p, refs, err := b.startFetch(ctx, topic, queue)
	if err != nil {
		b.writeError(ctx, err)
		return
	}
	out := wire.FetchResponse{Messages: []wire.FetchedMessage{}, NextOffset: p.offset}
	bytesOut := 0
	for _, ref := range refs {
		raw, err := b.readBatch(ref)
		if err != nil {
			b.writeError(ctx, err)
			return
		}
		_, msgs, err := wire.Decode(raw, 0, 0)
		if err != nil {
			b.writeError(ctx, fmt.Errorf("stored batch at log index %d: %v", ref.Index, err))
			return
		}
		for k := range msgs {
			off := ref.BaseOffset + uint64(k)
			if off < out.NextOffset {
				continue
			}
			out.NextOffset = off + 1
			m := &msgs[k]
			if m.Timestamp.UnixMilli() < p.timeMs {
				continue
			}
			out.Messages = append(out.Messages, toFetched(off, m))
			bytesOut += m.Size()
			if len(out.Messages) >= p.maxMsgs || bytesOut >= p.maxBytes {
				break
			}
		}
		if len(out.Messages) >= p.maxMsgs || bytesOut >= p.maxBytes {
			break
		}
	}
	b.m.fetched(len(out.Messages), bytesOut)
	b.writeJSON(ctx, http.StatusOK, out)
}

func toFetched(off uint64, m *wire.Message) wire.FetchedMessage {
	f := wire.FetchedMessage{Offset: off, Headers: map[string]string{}, Timestamp: m.Timestamp.UTC().Format(time.RFC3339Nano)}
	if m.Key != nil && utf8.Valid(m.Key) {
		k := string(m.Key)
		f.Key = &k
	} else if m.Key != nil {
		k := base64.StdEncoding.EncodeToString(m.Key)
		f.KeyBase64 = &k
	}
	if utf8.Valid(m.Value) {
		v := string(m.Value)
		f.Value = &v
	} else {
		v := base64.StdEncoding.EncodeToString(m.Value)
		f.ValueBase64 = &v
	}
	for _, h := range m.Headers {
		f.Headers[h.Key] = string(h.Value)
	}
	return f
}

// fetchBatches handles GET .../batches: stored batches served as is, each
// framed with its base offset (see wire.FetchFrameHeader).
func (b *Broker) fetchBatches(ctx *fasthttp.RequestCtx, topic string, queue int) {
	p, refs, err := b.startFetch(ctx, topic, queue)
	if err != nil {
		b.writeError(ctx, err)
		return
	}
	var body []byte
	next := p.offset
	count := 0
	for _, ref := range refs {
		raw, err := b.readBatch(ref)
		if err != nil {
			b.writeError(ctx, err)
			return
		}
		if len(body) > 0 && len(body)+wire.FetchFrameHeader+len(raw) > p.maxBytes {
			break
		}
		body = binary.LittleEndian.AppendUint64(body, ref.BaseOffset)
		body = binary.LittleEndian.AppendUint32(body, uint32(len(raw)))
		body = append(body, raw...)
		next = ref.BaseOffset + uint64(ref.Count)
		count += int(ref.Count)
	}
	b.m.fetched(count, len(body))
	ctx.Response.Header.Set("X-Next-Offset", strconv.FormatUint(next, 10))
	ctx.SetContentType(wire.ContentType)
	ctx.SetStatusCode(http.StatusOK)
	ctx.SetBody(body)
}
