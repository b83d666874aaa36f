package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// Message is one message to produce.
//
// The producer keeps Key, Value and the Headers' values until the
// message's result is reported: do not modify them before then.
type Message struct {
	// Topic is required.
	Topic string
	// Key, when not nil, chooses the queue (see Queue) and is stored with
	// the message. An empty, non-nil key is a key.
	Key   []byte
	Value []byte
	// Headers are stored in this order.
	Headers []wire.Header
	// Queue chooses the queue explicitly, e.g. Queue: new(3). When nil, a
	// message with a key goes to KeyQueue(Key, queues), the queue the
	// brokers' JSON produce uses for the key; one without a key goes to a
	// queue chosen round-robin: unkeyed messages fill one queue's batch,
	// then move on to the next queue, which keeps batches large.
	Queue *int
	// Timestamp is the message's time; zero means the time of Produce.
	Timestamp time.Time
}

// Result is where a message was stored. On error, Topic is set and Queue
// is the queue chosen, or -1 if none was chosen yet.
type Result struct {
	Topic  string
	Queue  int
	Offset uint64
	// Duplicate: the message's batch was resent after an unknown outcome
	// and the broker found it already stored; Offset is the original one
	// and the message is stored once.
	Duplicate bool
}

// KeyQueue is the queue a key maps to in a topic of queues queues: FNV-1a
// (32-bit) of the key modulo the queue count, as the brokers compute it.
func KeyQueue(key []byte, queues int) int { return wire.KeyQueue(key, queues) }

// recordOverhead approximates a record's framing in a batch (lengths,
// timestamp delta) for the batch size and buffer accounting.
const recordOverhead = 16

// Producer sends messages to a broker group, batching them per topic and
// queue. It is safe for concurrent use. See the package documentation for
// delivery guarantees and ordering.
type Producer struct {
	cfg  producerConfig
	conn *conn
	log  *slog.Logger

	// ctx ends when Close stops waiting for buffered messages: every
	// goroutine of the producer returns then.
	ctx    context.Context
	cancel context.CancelFunc

	goMu    sync.Mutex
	stopped bool // no goroutine may start any more
	wg      sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
	closing   chan struct{} // closed when Close starts

	mu     sync.Mutex
	topics map[string]*topicState

	bufMu      sync.Mutex
	closed     bool
	buffered   int64         // bytes of messages not yet completed
	records    int64         // messages not yet completed (callbacks included)
	bufChanged chan struct{} // closed and replaced when buffered or records fall

	flushing atomic.Int32

	pidMu   sync.Mutex
	pid     uint64
	pidWait chan struct{} // non-nil while a producer id is being fetched
}

// NewProducer returns a producer for the broker group reachable at brokers
// (host:port or http(s)://host:port; any subset of the group works, the
// leader is found from there). It does not contact the brokers: errors of
// reaching them are reported with the messages.
func NewProducer(brokers []string, opts ...ProducerOpt) (*Producer, error) {
	cfg := defaultProducerConfig()
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("ledgermq: new producer: nil option")
		}
		o.applyProducer(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("ledgermq: new producer: %w", err)
	}
	c, err := newConn(brokers, cfg.conn)
	if err != nil {
		return nil, fmt.Errorf("ledgermq: new producer: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Producer{cfg: cfg, conn: c, log: cfg.conn.logger, ctx: ctx, cancel: cancel,
		closing: make(chan struct{}), topics: map[string]*topicState{}, bufChanged: make(chan struct{})}, nil
}

// Produce sends a message and waits for its result. It waits for buffer
// space (see WithBufferedBytes) and for the result until ctx ends; if ctx
// ends after the message was buffered, the message may still be stored.
func (p *Producer) Produce(ctx context.Context, msg *Message) (Result, error) {
	type outcome struct {
		r   Result
		err error
	}
	ch := make(chan outcome, 1)
	if !p.produce(ctx, msg, func(r Result, err error) { ch <- outcome{r, err} }) {
		o := <-ch // refused at once
		return o.r, o.err
	}
	select {
	case o := <-ch:
		return o.r, o.err
	case <-ctx.Done():
		r := Result{Queue: -1}
		if msg != nil {
			r.Topic = msg.Topic
		}
		return r, fmt.Errorf("ledgermq: produce: %w (the message may still be stored)", ctx.Err())
	}
}

// ProduceAsync buffers a message and returns; cb (if not nil) receives its
// result. ProduceAsync blocks while the buffer is full (see
// WithBufferedBytes).
//
// cb is called exactly once: from ProduceAsync itself when the message is
// refused at once (invalid, producer closed), otherwise from a goroutine of
// the producer. Callbacks of one queue are called in the order their
// messages were produced. A callback must not block for long, nor call
// Flush or Close, nor ProduceAsync when the buffer may be full: it holds up
// its queue.
func (p *Producer) ProduceAsync(msg *Message, cb func(Result, error)) {
	if cb == nil {
		cb = func(Result, error) {}
	}
	p.produce(context.Background(), msg, cb)
}

// produce buffers a message. It returns false if the message was refused
// at once (cb has been called).
func (p *Producer) produce(ctx context.Context, m *Message, cb func(Result, error)) bool {
	if m == nil {
		cb(Result{Queue: -1}, clientError(wire.CodeInvalidArgument, "nil message"))
		return false
	}
	if m.Topic == "" {
		cb(Result{Queue: -1}, clientError(wire.CodeInvalidArgument, "message has no topic"))
		return false
	}
	rec := &record{topic: m.Topic, queue: -1, cb: cb,
		msg: wire.Message{Key: m.Key, Value: m.Value, Headers: m.Headers, Timestamp: m.Timestamp}}
	if m.Queue != nil {
		if *m.Queue < 0 {
			cb(Result{Topic: m.Topic, Queue: -1}, clientError(wire.CodeQueueNotFound, "queue %d of topic %s: queues are numbered from 0", *m.Queue, m.Topic))
			return false
		}
		rec.queue = *m.Queue
	}
	rec.size = rec.msg.Size() + recordOverhead
	if err := p.reserve(ctx, int64(rec.size)); err != nil {
		cb(Result{Topic: m.Topic, Queue: -1}, err)
		return false
	}
	now := time.Now()
	if rec.msg.Timestamp.IsZero() {
		rec.msg.Timestamp = now
	}
	rec.deadline = now.Add(p.cfg.deliveryTimeout)
	p.topic(m.Topic).add(rec)
	return true
}

// Flush sends buffered messages without waiting for the linger and waits
// until every message produced before or during the call has its result
// (and its callback has returned), or ctx ends.
func (p *Producer) Flush(ctx context.Context) error {
	p.flushing.Add(1)
	defer p.flushing.Add(-1)
	p.wakeAll()
	for {
		p.bufMu.Lock()
		n, ch := p.records, p.bufChanged
		p.bufMu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("ledgermq: flush: %w with %d messages not yet delivered", ctx.Err(), n)
		}
	}
}

// Close stops accepting messages, waits up to the close timeout (see
// WithCloseTimeout) for buffered messages to be delivered, fails the rest
// with ErrClosed, and stops every goroutine of the producer. It returns an
// error if messages were failed that way. Later calls return the same.
func (p *Producer) Close() error {
	p.closeOnce.Do(func() {
		p.bufMu.Lock()
		p.closed = true
		close(p.closing)
		p.bufMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.closeTimeout)
		ferr := p.Flush(ctx)
		cancel()
		p.cancel()
		p.goMu.Lock()
		p.stopped = true
		p.goMu.Unlock()
		p.wg.Wait()
		p.conn.close()
		if ferr != nil {
			p.closeErr = fmt.Errorf("ledgermq: close: messages failed with ErrClosed: %w", ferr)
		}
	})
	return p.closeErr
}

// goRun runs f in a goroutine the producer owns, unless the producer has
// stopped.
func (p *Producer) goRun(f func()) bool {
	p.goMu.Lock()
	defer p.goMu.Unlock()
	if p.stopped {
		return false
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
	return true
}

// reserve takes n bytes of buffer for a message, waiting while the buffer
// is full.
func (p *Producer) reserve(ctx context.Context, n int64) error {
	for {
		p.bufMu.Lock()
		if p.closed {
			p.bufMu.Unlock()
			return ErrClosed
		}
		if p.buffered == 0 || p.buffered+n <= p.cfg.bufferedBytes {
			p.buffered += n
			p.records++
			p.bufMu.Unlock()
			return nil
		}
		ch := p.bufChanged
		p.bufMu.Unlock()
		select {
		case <-ch:
		case <-p.closing:
		case <-ctx.Done():
			return fmt.Errorf("ledgermq: produce: waiting for buffer space: %w", ctx.Err())
		}
	}
}

// release returns buffer bytes and completed messages.
func (p *Producer) release(bytes int64, records int64) {
	p.bufMu.Lock()
	p.buffered -= bytes
	p.records -= records
	close(p.bufChanged)
	p.bufChanged = make(chan struct{})
	p.bufMu.Unlock()
}

// fail reports an error for a record that never made it into a batch.
func (p *Producer) fail(r *record, queue int, err error) {
	p.release(int64(r.size), 0)
	r.cb(Result{Topic: r.topic, Queue: queue}, err)
	p.release(0, 1)
}

// wakeAll makes every queue look at its batches now (for Flush).
func (p *Producer) wakeAll() {
	p.mu.Lock()
	tss := make([]*topicState, 0, len(p.topics))
	for _, ts := range p.topics {
		tss = append(tss, ts)
	}
	p.mu.Unlock()
	for _, ts := range tss {
		var qs []*queue
		ts.mu.Lock()
		if ts.loaded {
			qs = ts.queues
		}
		ts.mu.Unlock()
		for _, q := range qs {
			q.signal()
		}
	}
}

// producerID returns the producer id to use, fetching a new one when there
// is none yet or the current one is stale (the broker no longer knows it).
func (p *Producer) producerID(ctx context.Context, stale uint64) (uint64, error) {
	for {
		p.pidMu.Lock()
		if p.pid != 0 && p.pid != stale {
			pid := p.pid
			p.pidMu.Unlock()
			return pid, nil
		}
		if w := p.pidWait; w != nil {
			p.pidMu.Unlock()
			select {
			case <-w:
				continue
			case <-ctx.Done():
				return 0, fmt.Errorf("ledgermq: producer id: %w", ctx.Err())
			}
		}
		w := make(chan struct{})
		p.pidWait = w
		p.pidMu.Unlock()
		// An id whose answer was lost is merely unused: resend freely.
		var r wire.InitProducerResponse
		err := p.conn.postJSON(ctx, "/v1/producers", nil, &r, retryAll)
		if err == nil && r.ProducerID == 0 {
			err = errors.New("the broker answered producer id 0")
		}
		p.pidMu.Lock()
		p.pidWait = nil
		close(w)
		if err == nil {
			p.pid = r.ProducerID
		}
		p.pidMu.Unlock()
		if err != nil {
			return 0, fmt.Errorf("ledgermq: producer id: %w", err)
		}
		p.log.Info("ledgermq: producer id", "producer_id", r.ProducerID, "previous", stale)
		return r.ProducerID, nil
	}
}

// record is one buffered message.
type record struct {
	topic    string
	msg      wire.Message
	queue    int // explicit queue, -1: chosen by key or round-robin
	size     int // accounted bytes
	deadline time.Time
	cb       func(Result, error)
}

// topicState is a topic's metadata and queues. Messages produced while its
// metadata loads wait in pending, in produce order.
type topicState struct {
	p    *Producer
	name string

	mu      sync.Mutex
	loaded  bool  // queues are set
	err     error // loading failed; the state was dropped
	pending []*record

	queues          []*queue // immutable once loaded
	maxMessageBytes int
	sticky          atomic.Uint32 // the round-robin queue
}

// topic returns the topic's state, creating it (and loading its metadata)
// on first use.
func (p *Producer) topic(name string) *topicState {
	p.mu.Lock()
	defer p.mu.Unlock()
	ts := p.topics[name]
	if ts == nil {
		ts = &topicState{p: p, name: name}
		p.topics[name] = ts
		if !p.goRun(ts.load) {
			ts.err = ErrClosed
			delete(p.topics, name)
		}
	}
	return ts
}

// dropTopic forgets a topic's state, so that the next message loads its
// metadata afresh (after TOPIC_NOT_FOUND or QUEUE_NOT_FOUND).
func (p *Producer) dropTopic(ts *topicState) {
	p.mu.Lock()
	if p.topics[ts.name] == ts {
		delete(p.topics, ts.name)
	}
	p.mu.Unlock()
}

func (ts *topicState) add(r *record) {
	ts.mu.Lock()
	if ts.err != nil {
		err := ts.err
		ts.mu.Unlock()
		ts.p.fail(r, -1, err)
		return
	}
	if !ts.loaded {
		ts.pending = append(ts.pending, r)
		ts.mu.Unlock()
		return
	}
	ts.mu.Unlock()
	ts.route(r)
}

// load fetches the topic's queue count and message size limit, then routes
// the messages that waited for them.
func (ts *topicState) load() {
	p := ts.p
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.deliveryTimeout)
	defer cancel()
	var info wire.TopicInfo
	var err error
	for attempt := 0; ; attempt++ {
		// Read from the leader: a follower may not have applied a topic
		// created a moment ago.
		leaderKnown := p.conn.knowsLeader()
		if !leaderKnown {
			_ = p.conn.learnLeader(ctx) // best effort: any broker answers the read
		}
		err = p.conn.getJSON(ctx, "/v1/topics/"+url.PathEscape(ts.name), nil, &info)
		if err == nil || leaderKnown || attempt == 2 || ErrorCode(err) != wire.CodeTopicNotFound {
			break
		}
		// Answered by a broker that may lag: ask again once a leader is known.
		if sleep(ctx, p.conn.backoff(attempt+1)) != nil {
			break
		}
	}
	if err == nil && info.Queues < 1 {
		err = fmt.Errorf("the broker reports %d queues", info.Queues)
	}
	if err != nil {
		switch {
		case p.ctx.Err() != nil:
			err = ErrClosed
		case ctx.Err() != nil:
			err = fmt.Errorf("%w: %w", ErrDeliveryTimeout, err)
		}
		err = fmt.Errorf("ledgermq: topic %s: %w", ts.name, err)
		p.log.Warn("ledgermq: cannot load topic metadata", "topic", ts.name, "err", err)
		p.dropTopic(ts)
		ts.mu.Lock()
		ts.err = err
		pending := ts.pending
		ts.pending = nil
		ts.mu.Unlock()
		for _, r := range pending {
			p.fail(r, -1, err)
		}
		return
	}
	ts.maxMessageBytes = info.MaxMessageBytes
	ts.queues = make([]*queue, info.Queues)
	for i := range ts.queues {
		ts.queues[i] = &queue{p: p, ts: ts, idx: i, wake: make(chan struct{}, 1),
			results: make(chan attemptResult, MaxInFlightLimit),
			path:    "/v1/topics/" + url.PathEscape(ts.name) + "/queues/" + strconv.Itoa(i) + "/batches"}
	}
	// Route the waiting messages in order; messages produced meanwhile
	// join the pending list and are routed after them.
	for {
		ts.mu.Lock()
		pending := ts.pending
		ts.pending = nil
		if len(pending) == 0 {
			ts.loaded = true
			ts.mu.Unlock()
			return
		}
		ts.mu.Unlock()
		for _, r := range pending {
			ts.route(r)
		}
	}
}

// route chooses a record's queue and appends it there.
func (ts *topicState) route(r *record) {
	n := len(ts.queues)
	if max := ts.maxMessageBytes; max > 0 && r.msg.Size() > max {
		ts.p.fail(r, -1, clientError(wire.CodeMessageTooLarge, "message is %d bytes; topic %s allows %d", r.msg.Size(), ts.name, max))
		return
	}
	var q int
	switch {
	case r.queue >= 0:
		if r.queue >= n {
			ts.p.fail(r, -1, clientError(wire.CodeQueueNotFound, "topic %s has queues 0..%d, not %d", ts.name, n-1, r.queue))
			return
		}
		q = r.queue
	case r.msg.Key != nil:
		q = KeyQueue(r.msg.Key, n)
	default:
		q = int(ts.sticky.Load()) % n
	}
	ts.queues[q].append(r)
}

// Batch states.
type batchState uint8

const (
	statePending  batchState = iota // to be sent (again)
	stateInFlight                   // an attempt is under way
	stateAcked                      // stored
	stateFailed                     // failed for good
)

// batch is a sealed group of records for one queue.
type batch struct {
	recs     []*record
	bytes    int
	created  time.Time
	deadline time.Time // of its oldest record
	state    batchState

	// Idempotence: the sequence is assigned when the batch is first sent
	// and changes only when the queue resequences.
	assigned    bool
	pid, seq    uint64
	maybeStored bool // an attempt's outcome was unknown

	enc      []byte // the encoded batch, nil when it must be (re)encoded
	attempts int
	lastErr  error
	err      error // stateFailed: the reported error
	resp     wire.BatchProduceResponse
}

// attemptResult is the outcome of one attempt to send a batch.
type attemptResult struct {
	b    *batch
	resp *response
	err  error
	// settled: every earlier batch of the queue was stored when the
	// attempt was sent.
	settled bool
}

// queue batches and sends the records of one (topic, queue). Its loop
// goroutine owns the sealed batches; producers append to the open batch
// under mu.
//
// Batches are sent in sequence order, at most limit() of them unsettled
// at once. Any retriable failure starts a rewind: nothing more is sent
// until every attempt under way has come back; then, after the backoff,
// the unacknowledged batches are resent in order, the first one alone
// until it succeeds. With idempotence a resent batch keeps its producer
// id and sequence, unless a batch before it failed for good (the later
// ones are renumbered to close the gap) or the producer id must change
// (UNKNOWN_PRODUCER, or a failed batch that may have been stored).
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

	// Owned by the loop goroutine.
	batches      []*batch // sealed and not yet reported, in order
	inflight     int
	pid          uint64
	nextSeq      uint64 // the next sequence to assign
	base         uint64 // the sequence following the reported stored batches
	rewind       bool   // wait for attempts under way, then resend in order
	reset        bool   // get a new producer id and renumber from 0
	resequence   bool   // renumber the unsent batches to close gaps
	probe        bool   // after a rewind: one batch at a time until one succeeds
	fails        int    // consecutive failures, for the backoff
	backoffUntil time.Time
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
		q.open = &batch{created: time.Now(), deadline: r.deadline}
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
	q.expire(now)
	q.complete()
	if q.rewind && q.inflight == 0 && !now.Before(q.backoffUntil) {
		q.finishRewind(now)
	}
	q.collect(now)
	q.pump(now)
	q.complete()
	return q.nextWake(now)
}

func (q *queue) limit() int {
	if !q.p.cfg.idempotent || q.probe {
		return 1
	}
	return q.p.cfg.maxInFlight
}

func (q *queue) canSend(now time.Time) bool { return !q.rewind && !now.Before(q.backoffUntil) }

// collect takes the sealed batches, and seals the open one when its linger
// is over (or a flush asks) and it could be sent now: while the window is
// full it keeps growing instead.
func (q *queue) collect(now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if o := q.open; o != nil && len(q.batches)+len(q.sealed) < q.limit() && q.canSend(now) &&
		(q.p.flushing.Load() > 0 || now.Sub(o.created) >= q.p.cfg.linger) {
		q.sealLocked()
	}
	q.batches = append(q.batches, q.sealed...)
	clear(q.sealed)
	q.sealed = q.sealed[:0]
}

func (q *queue) nextWake(now time.Time) time.Time {
	var at time.Time
	consider := func(t time.Time) {
		if at.IsZero() || t.Before(at) {
			at = t
		}
	}
	if now.Before(q.backoffUntil) {
		consider(q.backoffUntil)
	}
	for _, b := range q.batches {
		if b.state == statePending {
			consider(b.deadline.Add(time.Millisecond))
			break
		}
	}
	q.mu.Lock()
	if o := q.open; o != nil && len(q.batches) < q.limit() && q.canSend(now) {
		consider(o.created.Add(q.p.cfg.linger))
	}
	q.mu.Unlock()
	return at
}

// expire fails the batches waiting to be sent whose delivery timeout has
// passed.
func (q *queue) expire(now time.Time) {
	for _, b := range q.batches {
		if b.state == statePending && now.After(b.deadline) {
			q.fail(b, deliveryTimeoutError(b))
		}
	}
}

func deliveryTimeoutError(b *batch) error {
	switch {
	case b.lastErr == nil:
		return fmt.Errorf("%w: not sent in time", ErrDeliveryTimeout)
	case b.maybeStored:
		return fmt.Errorf("%w (%w) after %d attempts; last failure: %w", ErrDeliveryTimeout, ErrUnknownOutcome, b.attempts, b.lastErr)
	}
	return fmt.Errorf("%w after %d attempts; last failure: %w", ErrDeliveryTimeout, b.attempts, b.lastErr)
}

// fail marks a batch failed for good. With idempotence, its sequence
// numbers are then either reused (it was certainly not stored) or the
// queue moves to a new producer id (it may have been stored).
func (q *queue) fail(b *batch, err error) {
	b.state = stateFailed
	b.err = err
	if q.p.cfg.idempotent && b.assigned {
		if b.maybeStored {
			q.reset = true
		} else {
			q.resequence = true
		}
		q.rewind = true
	}
}

// complete reports the batches at the head that are done, in order.
func (q *queue) complete() {
	for len(q.batches) > 0 {
		b := q.batches[0]
		if b.state != stateAcked && b.state != stateFailed {
			return
		}
		q.batches[0] = nil
		q.batches = q.batches[1:]
		if b.state == stateAcked && b.assigned && b.pid == q.pid {
			q.base = b.seq + uint64(len(b.recs))
		}
		q.deliver(b)
	}
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
			r.cb(Result{Topic: q.ts.name, Queue: q.idx, Offset: b.resp.BaseOffset + uint64(i), Duplicate: b.resp.Duplicate}, nil)
		} else {
			r.cb(Result{Topic: q.ts.name, Queue: q.idx}, b.err)
		}
	}
	p.release(0, int64(len(b.recs)))
}

// pump sends the pending batches of the window, in order.
func (q *queue) pump(now time.Time) {
	if !q.canSend(now) {
		return
	}
	lim := q.limit()
	settled := true
	for i := 0; i < len(q.batches) && i < lim && !q.rewind; i++ {
		b := q.batches[i]
		if b.state == statePending && !q.send(b, settled) {
			return
		}
		settled = settled && b.state == stateAcked
	}
}

// send starts an attempt for b. It returns false when nothing more can be
// sent now.
func (q *queue) send(b *batch, settled bool) bool {
	p := q.p
	now := time.Now()
	if p.cfg.idempotent && q.pid == 0 {
		ctx, cancel := context.WithDeadline(p.ctx, b.deadline)
		pid, err := p.producerID(ctx, 0)
		cancel()
		if err != nil {
			q.failedBeforeSend(b, err, now)
			return false
		}
		q.pid = pid
	}
	if p.cfg.idempotent && !b.assigned {
		b.assigned, b.pid, b.seq, b.enc = true, q.pid, q.nextSeq, nil
		q.nextSeq += uint64(len(b.recs))
	}
	if b.enc == nil {
		ctx, cancel := context.WithDeadline(p.ctx, b.deadline)
		group, err := p.conn.group(ctx)
		cancel()
		if err != nil {
			q.failedBeforeSend(b, err, now)
			return false
		}
		msgs := make([]wire.Message, len(b.recs))
		for i, r := range b.recs {
			msgs[i] = r.msg
		}
		enc, err := wire.Encode(msgs, p.cfg.codec, wire.Producer{ID: b.pid, Sequence: b.seq}, group, now)
		if err != nil {
			q.fail(b, fmt.Errorf("ledgermq: produce to %s/%d: encode batch: %w", q.ts.name, q.idx, err))
			return true
		}
		b.enc = enc
	}
	enc := b.enc
	if !p.goRun(func() {
		resp, err := p.conn.do(p.ctx, &request{method: http.MethodPost, path: q.path, body: enc,
			contentType: wire.ContentType, write: true, retry: retryOnce})
		q.results <- attemptResult{b: b, resp: resp, err: err, settled: settled}
	}) {
		return false // stopping
	}
	b.state = stateInFlight
	b.attempts++
	q.inflight++
	return true
}

// failedBeforeSend handles a failure to prepare b (producer id, group id):
// it stays pending and the queue backs off.
func (q *queue) failedBeforeSend(b *batch, err error, now time.Time) {
	if q.p.ctx.Err() != nil {
		return
	}
	b.lastErr = err
	q.fails++
	q.backoffUntil = now.Add(q.p.conn.backoff(q.fails))
	q.p.log.Debug("ledgermq: cannot prepare batch", "topic", q.ts.name, "queue", q.idx, "err", err)
}

// Failure classes of a produce attempt.
type failure uint8

const (
	notApplied      failure = iota // certainly not stored: resend
	unknownOutcome                 // may have been stored
	unknownProducer                // the producer id expired
	final                          // refused: resending cannot help
)

func classify(err error) failure {
	var ae *Error
	var te *transportError
	switch {
	case errors.As(err, &ae):
		switch ae.Code {
		case wire.CodeNotLeader, wire.CodeOutOfOrderSequence:
			return notApplied
		case wire.CodeUnknownProducer:
			return unknownProducer
		case wire.CodeUnavailable:
			return unknownOutcome
		}
		if ae.Status >= 500 {
			return unknownOutcome
		}
		return final
	case errors.As(err, &te) && !te.sent:
		return notApplied
	}
	return unknownOutcome
}

// onResult handles the outcome of an attempt.
func (q *queue) onResult(r attemptResult) {
	p := q.p
	q.inflight--
	b := r.b
	now := time.Now()
	if r.err == nil {
		var br wire.BatchProduceResponse
		if err := json.Unmarshal(r.resp.body, &br); err != nil || br.Count != uint32(len(b.recs)) || br.Queue != q.idx {
			r.err = fmt.Errorf("ledgermq: unexpected answer from %s: %.200q", r.resp.addr, r.resp.body)
		} else {
			b.state, b.resp, b.enc = stateAcked, br, nil
			q.fails, q.probe = 0, false
			if br.Duplicate {
				p.log.Debug("ledgermq: resent batch was already stored", "topic", q.ts.name, "queue", q.idx, "offset", br.BaseOffset)
			}
			return
		}
	}
	b.state = statePending
	b.lastErr = r.err
	if p.ctx.Err() != nil {
		b.maybeStored = true // stopping: the attempt was abandoned
		return
	}
	where := fmt.Sprintf("%s/%d", q.ts.name, q.idx)
	switch classify(r.err) {
	case notApplied:
		if ErrorCode(r.err) != wire.CodeOutOfOrderSequence {
			q.fails++
		} else if r.settled {
			// Every earlier batch was stored, yet the broker expects
			// another sequence: its state for this producer is not ours.
			q.reset = true
		}
		q.retry(b, now)
	case unknownOutcome:
		if !p.cfg.idempotent {
			q.fail(b, fmt.Errorf("ledgermq: produce to %s: %w: %w", where, ErrUnknownOutcome, r.err))
			return
		}
		b.maybeStored = true
		q.fails++
		q.retry(b, now)
	case unknownProducer:
		q.reset = true
		q.retry(b, now)
	case final:
		switch ErrorCode(r.err) {
		case wire.CodeDuplicateSequence:
			// Older than the broker's window: stored long ago, or the
			// broker's state is not ours. Either way, start afresh.
			b.maybeStored = true
		case wire.CodeTopicNotFound, wire.CodeQueueNotFound:
			p.dropTopic(q.ts)
		}
		q.fail(b, fmt.Errorf("ledgermq: produce to %s: %w", where, r.err))
	}
}

// retry schedules b, whose attempt failed retriably, to be resent in order
// after the backoff, unless its delivery timeout has passed.
func (q *queue) retry(b *batch, now time.Time) {
	if now.After(b.deadline) {
		q.fail(b, deliveryTimeoutError(b))
		return
	}
	q.rewind = true
	if q.fails > 0 {
		if until := now.Add(q.p.conn.backoff(q.fails)); until.After(q.backoffUntil) {
			q.backoffUntil = until
		}
	}
	q.p.log.Debug("ledgermq: batch will be resent", "topic", q.ts.name, "queue", q.idx,
		"attempts", b.attempts, "err", b.lastErr)
}

// finishRewind runs once every attempt under way has come back: it renumbers
// what must be renumbered and lets pump resend from the first unacknowledged
// batch.
func (q *queue) finishRewind(now time.Time) {
	p := q.p
	if p.cfg.idempotent && q.reset {
		deadline := now.Add(p.cfg.deliveryTimeout)
		for _, b := range q.batches {
			if b.state == statePending {
				deadline = b.deadline
				break
			}
		}
		ctx, cancel := context.WithDeadline(p.ctx, deadline)
		pid, err := p.producerID(ctx, q.pid)
		cancel()
		if err != nil {
			if p.ctx.Err() == nil {
				q.fails++
				q.backoffUntil = now.Add(p.conn.backoff(q.fails))
				p.log.Debug("ledgermq: cannot get a new producer id", "err", err)
			}
			return
		}
		p.log.Info("ledgermq: queue restarts its sequence under a new producer id; batches sent before are no longer de-duplicated",
			"topic", q.ts.name, "queue", q.idx, "producer_id", pid, "previous", q.pid)
		q.pid, q.base, q.reset, q.resequence = pid, 0, false, true
	}
	if q.resequence {
		expect := q.base
		for _, b := range q.batches {
			if !b.assigned {
				break
			}
			switch b.state {
			case stateAcked:
				if b.pid == q.pid {
					expect = b.seq + uint64(len(b.recs))
				}
			case stateFailed:
				// Not stored (else the queue would have been reset): its
				// sequence numbers are free again.
			default:
				if b.pid != q.pid || b.seq != expect {
					b.pid, b.seq, b.enc, b.maybeStored = q.pid, expect, nil, false
				}
				expect += uint64(len(b.recs))
			}
		}
		q.nextSeq, q.resequence = expect, false
	}
	q.rewind, q.probe = false, true
}

// shutdown runs when the producer stops: every record still held fails
// with ErrClosed (and ErrUnknownOutcome if it may have been stored).
func (q *queue) shutdown() {
	q.mu.Lock()
	q.stopped = true
	all := append(q.batches, q.sealed...)
	if q.open != nil {
		all = append(all, q.open)
	}
	q.batches, q.sealed, q.open = nil, nil, nil
	q.mu.Unlock()
	for _, b := range all {
		if b.state != stateAcked {
			b.err = ErrClosed
			if b.state == stateInFlight || b.maybeStored {
				b.err = fmt.Errorf("%w: %w", ErrClosed, ErrUnknownOutcome)
			}
			b.state = stateFailed
		}
		q.deliver(b)
	}
}
