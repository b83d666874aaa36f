package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// Index is the group's log index at which the message's batch
	// committed: a position token. Reads given an index at least this
	// high (WithMinIndex, Admin.DescribeTopicAt) show the message on any
	// broker, followers included. Indexes only grow: the highest of
	// several results covers them all.
	Index uint64
}

// KeyQueue is the queue a key maps to in a topic of queues queues: FNV-1a
// (32-bit) of the key modulo the queue count, as the brokers compute it.
func KeyQueue(key []byte, queues int) int { return wire.KeyQueue(key, queues) }

// Producer sends messages to a broker group, batching them per topic and
// queue. It is safe for concurrent use. See the package documentation for
// delivery guarantees and ordering.
type Producer struct {
	cfg    producerConfig
	conn   *conn
	sender *sender
	log    *slog.Logger

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
	p := &Producer{cfg: cfg, conn: c, log: cfg.conn.logger, ctx: ctx, cancel: cancel,
		closing: make(chan struct{}), topics: map[string]*topicState{}, bufChanged: make(chan struct{})}
	p.sender = newSender(p)
	return p, nil
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
	rec.size = rec.msg.ChargedSize() // as the brokers charge it against batch limits
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
