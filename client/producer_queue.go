package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// batch is a sealed group of records for one queue: the records and their
// encoding, which the queue's loop owns, and the sequencing state, which
// its sequencer owns.
type batch struct {
	recs    []*record
	bytes   int
	created time.Time
	// enc is the batch encoded with producer id encPID and sequence
	// encSeq; nil when it must be (re)encoded.
	enc            []byte
	encPID, encSeq uint64

	seqState
}

// count is the number of records, the sequence numbers the batch takes.
func (b *batch) count() int { return len(b.recs) }

// messages are the batch's messages, to encode.
func (b *batch) messages() []wire.Message {
	msgs := make([]wire.Message, len(b.recs))
	for i, r := range b.recs {
		msgs[i] = r.msg
	}
	return msgs
}

// attemptResult is the outcome of one attempt to send a batch.
type attemptResult struct {
	b    *batch
	resp *response
	// parsed is the batch's answer when it was one part of a produce
	// request (resp is then that request's answer).
	parsed *wire.BatchProduceResponse
	err    error
}

// queue batches and sends the records of one (topic, queue). Producers
// append to the open batch under mu; the loop goroutine takes the sealed
// batches and drives the queue's sequencer: it feeds it events (time, new
// batches, outcomes of attempts) and carries out its actions (send a
// batch, get a producer id, report a batch) with the shared transport.
type queue struct {
	p       *Producer
	ts      *topicState
	idx     int
	path    string
	start   sync.Once
	wake    chan struct{}
	results chan attemptResult

	mu      sync.Mutex
	open    *batch   // accumulating records
	sealed  []*batch // full batches the loop has not taken yet
	stopped bool

	sequencer *sequencer // owned by the loop goroutine
}

func newQueue(ts *topicState, idx int) *queue {
	p := ts.p
	return &queue{p: p, ts: ts, idx: idx, wake: make(chan struct{}, 1),
		results: make(chan attemptResult, MaxInFlightLimit),
		path:    "/v1/topics/" + url.PathEscape(ts.name) + "/queues/" + strconv.Itoa(idx) + "/batches",
		sequencer: newSequencer(seqConfig{topic: ts.name, queue: idx, idempotent: p.cfg.idempotent,
			maxInFlight: p.cfg.maxInFlight, deliveryTimeout: p.cfg.deliveryTimeout,
			backoff: p.conn.backoff, log: p.log}),
	}
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// append adds a record to the open batch, sealing it when full.
func (q *queue) append(r *record) {
	q.start.Do(func() {
		if !q.p.goRun(q.loop) {
			q.mu.Lock()
			q.stopped = true
			q.mu.Unlock()
		}
	})
	max := q.p.cfg.batchBytes
	q.mu.Lock()
	if q.stopped {
		q.mu.Unlock()
		q.p.fail(r, q.idx, ErrClosed)
		return
	}
	wake := false
	if q.open != nil && (q.open.bytes+r.size > max || len(q.open.recs) >= wire.MaxRecords) {
		q.sealLocked()
		wake = true
	}
	if q.open == nil {
		q.open = &batch{created: time.Now(), seqState: seqState{deadline: r.deadline}}
		wake = true // starts the linger
	}
	q.open.recs = append(q.open.recs, r)
	q.open.bytes += r.size
	if q.open.bytes >= max {
		q.sealLocked()
		wake = true
	}
	q.mu.Unlock()
	if wake {
		q.signal()
	}
}

// sealLocked closes the open batch; q.mu must be held. Round-robin moves
// on to the next queue.
func (q *queue) sealLocked() {
	q.sealed = append(q.sealed, q.open)
	q.open = nil
	n := uint32(len(q.ts.queues))
	q.ts.sticky.CompareAndSwap(uint32(q.idx), (uint32(q.idx)+1)%n)
}

func (q *queue) loop() {
	defer q.shutdown()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		at := q.step(time.Now())
		d := time.Hour
		if !at.IsZero() {
			d = max(time.Until(at), 0)
		}
		timer.Reset(d)
		select {
		case <-q.p.ctx.Done():
			return
		case <-q.wake:
		case r := <-q.results:
			q.onResult(r)
		case <-timer.C:
		}
	}
}

// step does what can be done now and returns when to look again (zero:
// only when woken).
func (q *queue) step(now time.Time) time.Time {
	q.run(event{kind: evTick, now: now})
	q.collect(now)
	return q.nextWake(now)
}

// run feeds ev to the sequencer and carries out its actions in order; the
// actions an outcome leads to come before the ones still waiting.
func (q *queue) run(ev event) {
	acts := q.sequencer.step(ev)
	for len(acts) > 0 {
		a := acts[0]
		acts = acts[1:]
		if next, ok := q.do(a); ok {
			acts = append(q.sequencer.step(next), acts...)
		}
	}
}

// do carries out an action; ok reports an outcome to feed back.
func (q *queue) do(a action) (next event, ok bool) {
	switch a.kind {
	case actSend:
		return q.send(a)
	case actProducerID:
		return q.producerID(a)
	case actComplete:
		q.deliver(a.batch)
	case actDropTopic:
		q.p.dropTopic(q.ts)
	}
	return event{}, false
}

// collect takes the sealed batches, and seals the open one when its linger
// is over (or a flush asks) and it could be sent now: while the window is
// full it keeps growing instead.
func (q *queue) collect(now time.Time) {
	q.mu.Lock()
	if o := q.open; o != nil && q.sequencer.hasRoom(now, len(q.sealed)) &&
		(q.p.flushing.Load() > 0 || now.Sub(o.created) >= q.p.cfg.linger) {
		q.sealLocked()
	}
	sealed := q.sealed
	q.sealed = nil
	q.mu.Unlock()
	q.run(event{kind: evAppend, now: now, batches: sealed})
}

func (q *queue) nextWake(now time.Time) time.Time {
	at := q.sequencer.nextWake(now)
	q.mu.Lock()
	if o := q.open; o != nil && q.sequencer.hasRoom(now, 0) {
		if t := o.created.Add(q.p.cfg.linger); at.IsZero() || t.Before(at) {
			at = t
		}
	}
	q.mu.Unlock()
	return at
}

// send encodes a batch (unless it is encoded with the action's producer id
// and sequence already) and starts an attempt.
func (q *queue) send(a action) (event, bool) {
	p := q.p
	b := a.batch
	now := time.Now()
	if b.enc == nil || b.encPID != a.pid || b.encSeq != a.seq {
		ctx, cancel := context.WithDeadline(p.ctx, b.deadline)
		group, err := p.conn.group(ctx)
		cancel()
		if err != nil {
			if p.ctx.Err() != nil {
				return event{}, false
			}
			return event{kind: evPrepareFailed, now: now, batch: b, err: err}, true
		}
		enc, err := wire.Encode(b.messages(), p.cfg.codec, wire.Producer{ID: a.pid, Sequence: a.seq}, group, now)
		if err != nil {
			return event{kind: evInvalid, now: now, batch: b, err: err}, true
		}
		b.enc, b.encPID, b.encSeq = enc, a.pid, a.seq
	}
	if !p.sender.submit(attempt{q: q, b: b, enc: b.enc}) {
		return event{}, false // stopping
	}
	return event{kind: evSent, now: now, batch: b}, true
}

// producerID gets the producer id the sequencer asks for.
func (q *queue) producerID(a action) (event, bool) {
	p := q.p
	now := time.Now()
	ctx, cancel := context.WithDeadline(p.ctx, a.deadline)
	pid, err := p.producerID(ctx, a.stale)
	cancel()
	if err != nil && p.ctx.Err() != nil {
		return event{}, false // stopping
	}
	return event{kind: evProducerID, now: now, batch: a.batch, pid: pid, err: err}, true
}

// onResult decodes the outcome of an attempt for the sequencer.
func (q *queue) onResult(r attemptResult) {
	ev := event{kind: evResult, now: time.Now(), batch: r.b, err: r.err, abandoned: q.p.ctx.Err() != nil}
	if r.err == nil {
		var br wire.BatchProduceResponse
		var err error
		if r.parsed != nil {
			br = *r.parsed
		} else {
			err = json.Unmarshal(r.resp.body, &br)
		}
		if err != nil || br.Count != uint32(r.b.count()) || br.Queue != q.idx {
			ev.err = fmt.Errorf("ledgermq: unexpected answer from %s: %.200q", r.resp.addr, r.resp.body)
		} else {
			ev.resp = br
			r.b.enc = nil
		}
	}
	q.run(ev)
}

// deliver calls a done batch's callbacks.
func (q *queue) deliver(b *batch) {
	p := q.p
	p.release(int64(b.bytes), 0)
	if b.state == stateFailed {
		p.log.Warn("ledgermq: messages not delivered", "topic", q.ts.name, "queue", q.idx,
			"messages", len(b.recs), "attempts", b.attempts, "err", b.err)
	}
	for i, r := range b.recs {
		if b.state == stateAcked {
			r.cb(Result{Topic: q.ts.name, Queue: q.idx, Offset: b.resp.BaseOffset + uint64(i), Duplicate: b.resp.Duplicate,
				Index: b.resp.Index}, nil)
		} else {
			r.cb(Result{Topic: q.ts.name, Queue: q.idx}, b.err)
		}
	}
	p.release(0, int64(len(b.recs)))
}

// shutdown runs when the producer stops: every record still held fails
// with ErrClosed (and ErrUnknownOutcome if it may have been stored).
func (q *queue) shutdown() {
	q.mu.Lock()
	q.stopped = true
	more := q.sealed
	if q.open != nil {
		more = append(more, q.open)
	}
	q.sealed, q.open = nil, nil
	q.mu.Unlock()
	q.run(event{kind: evClose, now: time.Now(), batches: more})
}
