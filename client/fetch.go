package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// fetcher reads one queue ahead of Poll: it long-polls the brokers for
// the queue's batches from its position, decodes them and hands them to
// Poll through out, at most prefetch answers ahead. Its position is its
// own: a Seek or a rebalance replaces the fetcher rather than moving it.
// It stops when its context ends (the consumer's Close, the queue's
// revocation or a Seek).
type fetcher struct {
	c      *Consumer
	tq     TopicQueue
	start  Start
	out    chan chunk
	cancel context.CancelFunc
	log    *slog.Logger
}

// chunk is one fetch's records, or a failure Poll reports.
type chunk struct {
	records []Record
	err     error
}

// Reads of an offset past the queue's end are resent this many times
// before the consumer restarts the queue at its earliest offset: a
// follower that has not applied the newest entries answers so for a
// moment, a queue whose offsets went back (deleted and re-created) for
// good.
const beyondEndRetries = 10

// startFetcher starts a fetcher of tq from s; the caller holds c.mu.
func (c *Consumer) startFetcher(tq TopicQueue, s Start) *fetcher {
	ctx, cancel := context.WithCancel(c.ctx)
	f := &fetcher{c: c, tq: tq, start: s, out: make(chan chunk, c.cfg.prefetch), cancel: cancel,
		log: c.log.With("topic", tq.Topic, "queue", tq.Queue)}
	c.wg.Go(func() { f.run(ctx) })
	return f
}

func (f *fetcher) run(ctx context.Context) {
	// Learn the leader, whose reads are the freshest; best effort.
	gctx, cancel := context.WithTimeout(ctx, f.c.conn.reqTimeout)
	_, _ = f.c.conn.group(gctx)
	cancel()
	byTime := f.start.kind == startTime // the first fetch asks by time
	var offset uint64
	for failures := 1; !byTime; failures++ {
		var err error
		if offset, err = f.resolve(ctx); err == nil {
			break
		}
		if !f.report(ctx, err, failures) {
			return
		}
	}
	f.loop(ctx, offset, byTime)
}

// loop fetches from offset (byTime: at the time of f.start) until ctx
// ends.
func (f *fetcher) loop(ctx context.Context, offset uint64, byTime bool) {
	var since time.Time // skip records older than this until one is not
	if byTime {
		since = f.start.time
	}
	failures, beyond := 0, 0
	for ctx.Err() == nil {
		recs, next, err := f.fetch(ctx, offset, byTime, since)
		var ae *Error
		outOfRange := errors.As(err, &ae) && ae.Code == wire.CodeOffsetOutOfRange && ae.Earliest != nil && ae.Latest != nil
		switch {
		case ctx.Err() != nil:
			return
		case outOfRange && offset > *ae.Latest && beyond < beyondEndRetries:
			beyond++
			if sleep(ctx, f.c.conn.backoff(beyond)) != nil {
				return
			}
			continue
		case outOfRange:
			f.log.Warn("ledgermq: offset out of range: restarting at the earliest stored offset",
				"offset", offset, "earliest", *ae.Earliest, "latest", *ae.Latest)
			offset, byTime, beyond = *ae.Earliest, false, 0
			f.c.setPosition(f, offset)
			continue
		case err != nil:
			failures++
			if !f.report(ctx, fmt.Errorf("ledgermq: fetch %s/%d at offset %d: %w", f.tq.Topic, f.tq.Queue, offset, err), failures) {
				return
			}
			continue
		}
		failures, beyond = 0, 0
		if byTime {
			byTime = false
			pos := next
			if len(recs) > 0 {
				pos = recs[0].Offset
			}
			f.c.setPosition(f, pos)
		}
		offset = next
		if len(recs) > 0 {
			since = time.Time{}
			if !f.send(ctx, chunk{records: recs}) {
				return
			}
		}
	}
}

// report hands a failure to Poll and pauses before the next attempt. It
// returns false when the fetcher is to stop.
func (f *fetcher) report(ctx context.Context, err error, failures int) bool {
	f.log.Warn("ledgermq: fetch failed", "err", err)
	return f.send(ctx, chunk{err: err}) && sleep(ctx, f.c.conn.backoff(failures)) == nil
}

// send hands a chunk to Poll, waiting while the prefetch buffer is full.
func (f *fetcher) send(ctx context.Context, ch chunk) bool {
	select {
	case f.out <- ch:
		f.c.wake()
		return true
	case <-ctx.Done():
		return false
	}
}

// resolve turns the fetcher's Start into an offset; AtTime is resolved by
// the first fetch instead.
func (f *fetcher) resolve(ctx context.Context) (uint64, error) {
	if f.start.kind == startOffset {
		f.c.setPosition(f, f.start.offset)
		return f.start.offset, nil
	}
	var info wire.TopicInfo
	if err := f.c.conn.getJSON(ctx, "/v1/topics/"+url.PathEscape(f.tq.Topic), minIndexQuery(nil, f.c.cfg.minIndex), &info); err != nil {
		return 0, fmt.Errorf("ledgermq: start of %s/%d: %w", f.tq.Topic, f.tq.Queue, err)
	}
	for _, qi := range info.QueueInfo {
		if qi.Queue != f.tq.Queue {
			continue
		}
		off := qi.Earliest
		if f.start.kind == startLatest {
			off = qi.Next
		}
		f.c.setPosition(f, off)
		return off, nil
	}
	return 0, clientError(wire.CodeQueueNotFound, "topic %s has %d queues, not %d", f.tq.Topic, info.Queues, f.tq.Queue)
}

// fetch reads the batches at offset (byTime: at the time of f.start) and
// returns the records from offset on, without those older than since, and
// the offset to fetch next.
func (f *fetcher) fetch(ctx context.Context, offset uint64, byTime bool, since time.Time) ([]Record, uint64, error) {
	q := minIndexQuery(url.Values{
		"max_bytes": {strconv.Itoa(f.c.cfg.fetchMaxBytes)},
		"wait_ms":   {strconv.FormatInt(f.c.cfg.maxWait.Milliseconds(), 10)},
	}, f.c.cfg.minIndex)
	if byTime {
		q.Set("timestamp", f.start.time.UTC().Format(time.RFC3339Nano))
		offset = 0
	} else {
		q.Set("offset", strconv.FormatUint(offset, 10))
	}
	resp, err := f.c.conn.do(ctx, &request{method: http.MethodGet, query: q, retry: retryAll,
		path:    fmt.Sprintf("/v1/topics/%s/queues/%d/batches", url.PathEscape(f.tq.Topic), f.tq.Queue),
		timeout: f.c.conn.reqTimeout + f.c.cfg.maxWait, expect: f.c.cfg.maxWait})
	if err != nil {
		return nil, 0, err
	}
	next, err := strconv.ParseUint(resp.header.Get("X-Next-Offset"), 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("ledgermq: %s answered a fetch without a valid X-Next-Offset: %q", resp.addr, resp.header.Get("X-Next-Offset"))
	}
	recs, err := decodeFramesLimit(resp.body, f.tq, offset, since, batchDecodeLimit(f.c.cfg.fetchMaxBytes))
	if err != nil {
		return nil, 0, fmt.Errorf("ledgermq: fetch answer from %s: %w", resp.addr, err)
	}
	return recs, next, nil
}

// defaultBatchDecodeLimit bounds the decompressed records of one fetched
// batch and their charged size (wire.Decode's maxRecordsBytes): what a
// broker with default settings (4× its 16 MiB request limit) stores.
const defaultBatchDecodeLimit = 64 << 20

// batchDecodeLimit is the decode bound for a consumer fetching up to
// recordsIn estimates the records of a fetch answer from its batches
// headers (unverified: it only sizes the result, at most one record per 8
// bytes of answer), so that decoding does not grow the result step by step.
func recordsIn(b []byte) int {
	n, bound := 0, len(b)/8+16
	for len(b) >= wire.FetchFrameHeader+wire.HeaderSize {
		size := int64(binary.LittleEndian.Uint32(b[8:]))
		n += int(binary.LittleEndian.Uint32(b[wire.FetchFrameHeader+16:]))
		if size > int64(len(b)-wire.FetchFrameHeader) {
			break
		}
		b = b[wire.FetchFrameHeader+int(size):]
	}
	return min(n, bound)
}

// fetchMaxBytes: the default, or 4× fetchMaxBytes if larger (issue 11:
// batch bounds). Decoding a batch allocates at most about twice it.
func batchDecodeLimit(fetchMaxBytes int) int {
	return max(defaultBatchDecodeLimit, 4*fetchMaxBytes)
}

// decodeFrames is decodeFramesLimit with the default decode bound.
func decodeFrames(b []byte, tq TopicQueue, offset uint64, since time.Time) ([]Record, error) {
	return decodeFramesLimit(b, tq, offset, since, defaultBatchDecodeLimit)
}

// decodeFramesLimit decodes a binary fetch body (frames of baseOffset u64
// | length u32 | batch) into records, skipping those before offset and,
// until the first one that is not, those older than since. limit bounds
// each batch's decompressed records and their charged size.
func decodeFramesLimit(b []byte, tq TopicQueue, offset uint64, since time.Time, limit int) ([]Record, error) {
	out := make([]Record, 0, recordsIn(b))
	for len(b) > 0 {
		if len(b) < wire.FetchFrameHeader {
			return nil, fmt.Errorf("%w: truncated frame header", wire.ErrMalformed)
		}
		base := binary.LittleEndian.Uint64(b)
		n := binary.LittleEndian.Uint32(b[8:])
		if uint64(n) > uint64(len(b)-wire.FetchFrameHeader) {
			return nil, fmt.Errorf("%w: frame of %d bytes, %d left", wire.ErrMalformed, n, len(b)-wire.FetchFrameHeader)
		}
		batch := b[wire.FetchFrameHeader : wire.FetchFrameHeader+int(n)]
		_, msgs, err := wire.Decode(batch, limit, 0)
		if err != nil {
			be := &BatchError{Topic: tq.Topic, Queue: tq.Queue, Offset: base, Err: err}
			if h, herr := wire.ParseHeader(batch); herr == nil && h.Count > 0 {
				be.Next = base + uint64(h.Count)
			}
			return nil, be
		}
		b = b[wire.FetchFrameHeader+int(n):]
		for i := range msgs {
			m := &msgs[i]
			off := base + uint64(i)
			if off < offset || !since.IsZero() && m.Timestamp.Before(since) {
				continue
			}
			since = time.Time{}
			out = append(out, Record{Topic: tq.Topic, Queue: tq.Queue, Offset: off, Key: m.Key, Value: m.Value,
				Headers: m.Headers, Timestamp: m.Timestamp})
		}
	}
	return out, nil
}
