package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// TopicQueue names one queue of one topic.
type TopicQueue = wire.TopicQueue

// Record is one consumed message.
type Record struct {
	Topic  string
	Queue  int
	Offset uint64
	Key    []byte // nil: the message has no key
	Value  []byte
	// Headers in the order they were produced.
	Headers   []wire.Header
	Timestamp time.Time
}

// Errors of the consumer.
var (
	// ErrConsumerClosed: Poll or Seek after Close, or Poll interrupted by
	// Close.
	ErrConsumerClosed = errors.New("ledgermq: consumer closed")
	// ErrNoGroup: Commit or CommitOffsets on a consumer without a group
	// (WithAssignment), which has nowhere to commit.
	ErrNoGroup = errors.New("ledgermq: the consumer is not in a group")
)

// Consumer reads queues of topics, either the ones it is given
// (WithAssignment) or, as a member of a consumer group (WithGroup), the
// ones the group assigns to it. It is safe for concurrent use; records of
// one queue are returned in offset order.
//
// Reads (GET .../batches, long-polled) go to the leader when it is known,
// whose state is the newest, and to the other brokers when it cannot be
// reached: any broker serves reads. Failures resending may cure are
// resent without end (see WithRetryBackoff), so Poll simply waits while
// no broker answers; the log shows the retries at Debug. A read of an
// offset outside the queue's stored range (deleted by retention, or past
// the end) restarts the queue at its earliest offset with a Warn log.
//
// # Groups
//
// A member joins when it is created and keeps its session alive with
// heartbeats that are long polls: each names the group generation the
// member knows, and the group's leader answers as soon as the group
// changes (or after a third of the session timeout), so a member learns
// of a rebalance within milliseconds. A member the group removed (its
// session expired, or a static member of its instance id replaced it)
// joins again as a new member. Group writes go to the leader and follow
// its changes; the committed offsets are replicated, so a new leader has
// them all.
//
// # Rebalances
//
// A queue moves from one member to another in two steps, never being
// delivered by both (like Kafka's cooperative incremental protocol). The
// group first lists it as revoked at its owner, which at once stops
// fetching it and discards what it fetched ahead; Poll returns no record
// of it from then on. When the application has processed what Poll
// returned of the queue — at the start of the next Poll call, or at once
// when nothing of the queue was returned since the latest Poll call began
// (Poll is waiting, say) — the owner calls OnRevoked
// (WithRebalanceCallbacks), commits the position after the last record
// Poll returned (with auto-commit) and releases the queue, in one
// request. Only then does the group assign it to its next owner, which
// starts at that committed offset (WithStartWhenNoCommit when there is
// none) and calls OnAssigned. Queues that stay with a member keep flowing
// untouched. A member that does not release a revoked queue within its
// session timeout (its application does not call Poll) is removed from
// the group.
//
// Delivery is at least once, and exactly once while no member fails: a
// member that crashes has its queues given to others after its session
// timeout, from the last committed offsets, so the records it returned
// but had not committed are returned again. The group accepts a commit
// only from the current owner of every queue in it. Commit after
// processing (Commit, or auto-commit, which counts records as processed
// once Poll is called again).
//
// Close commits (with auto-commit) what Poll returned, releases revoked
// queues and leaves the group, whose other members get its queues at
// once; a static member (WithInstanceID) does not leave, and its restart
// within the session timeout takes its queues back without moving any
// other.
//
// Each assigned queue has a goroutine that fetches ahead of Poll
// (WithPrefetch); a group member has one more for heartbeats, and one for
// auto-commit. All belong to the Consumer: they stop when their queue is
// revoked or sought, and in Close. Logs (WithLogger): joins, leaves and
// rebalances at Info; failed fetches, heartbeats and commits, and offset
// resets at Warn.
type Consumer struct {
	cfg  consumerConfig
	conn *conn
	log  *slog.Logger

	// ctx ends in Close: every goroutine of the consumer returns then.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	wakeCh  chan struct{} // a fetcher handed Poll something (capacity 1)
	closing chan struct{} // closed when Close starts

	group *member // nil without WithGroup

	commitMu sync.Mutex // one commit at a time, so that offsets never go back

	closeOnce sync.Once
	closeErr  error

	// testHang stops heartbeats and auto-commits, as if the process hung
	// (tests).
	testHang atomic.Bool

	mu     sync.Mutex
	closed bool
	queues map[TopicQueue]*queueState // the queues Poll delivers
	// revoking: queues the group takes away that are not handed over yet
	// (see member.handover). Poll no longer delivers them; they may still
	// be committed.
	revoking map[TopicQueue]*queueState
	order    []TopicQueue // the keys of queues, sorted
	rr       int          // where Poll starts in order
}

// queueState is an assigned queue's delivery state. Guarded by
// Consumer.mu.
type queueState struct {
	f *fetcher
	// next is the offset of the next record Poll returns (once known: the
	// fetcher resolves its start, Poll moves it).
	next  uint64
	known bool
	// delivered: Poll returned records since the queue was (re)started, so
	// next may be committed.
	delivered bool
	// polled is next as of the latest Poll call: what auto-commit commits.
	polled    uint64
	hasPolled bool
	// committed is the group's committed offset as last known.
	committed    uint64
	hasCommitted bool
	// Revoked queues: pending while records Poll returned of the queue
	// are not processed yet (Poll has not been called since); told once
	// OnRevoked was called for it.
	pending, told bool
}

// NewConsumer returns a consumer for the broker group reachable at
// brokers (host:port or http(s)://host:port; any subset of the group
// works). It needs WithAssignment or WithGroup. With a group it joins
// before it returns (bounded by the request timeout) and reports why it
// could not; without one it does not contact the brokers, and errors of
// reaching them or of the queues are reported by Poll.
func NewConsumer(brokers []string, opts ...ConsumerOpt) (*Consumer, error) {
	cfg := defaultConsumerConfig()
	for _, o := range opts {
		switch o := o.(type) {
		case nil:
			return nil, errors.New("ledgermq: NewConsumer: nil option")
		case consumerOpt:
			o.fn(&cfg)
		default:
			o.applyConn(&cfg.conn)
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("ledgermq: NewConsumer: %w", err)
	}
	cn, err := newConn(brokers, cfg.conn)
	if err != nil {
		return nil, fmt.Errorf("ledgermq: NewConsumer: %w", err)
	}
	c := &Consumer{cfg: cfg, conn: cn, log: cfg.conn.logger, wakeCh: make(chan struct{}, 1),
		closing: make(chan struct{}), queues: map[TopicQueue]*queueState{}, revoking: map[TopicQueue]*queueState{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if cfg.group == "" {
		c.mu.Lock()
		for tq, s := range cfg.assignment {
			c.queues[tq] = &queueState{f: c.startFetcher(tq, s)}
		}
		c.sortQueues()
		c.mu.Unlock()
		return c, nil
	}
	c.group = newMember(c)
	ctx, cancel := context.WithTimeout(c.ctx, cn.reqTimeout)
	defer cancel()
	if err := c.group.start(ctx); err != nil {
		c.cancel()
		c.wg.Wait()
		cn.close()
		return nil, fmt.Errorf("ledgermq: NewConsumer: join group %s: %w", cfg.group, err)
	}
	if cfg.autoCommit > 0 {
		c.wg.Go(c.autoCommit)
	}
	return c, nil
}

// Poll returns the next records of the assigned queues: whatever the
// fetchers have buffered, at most one fetched answer per queue, waiting
// until there is something, ctx ends or the consumer is closed. A queue
// whose fetches fail for a cause resending does not cure (its topic or
// queue is gone, a malformed answer) is retried after a pause; the failure
// is returned, wrapped, alongside the records of the other queues.
//
// Calling Poll again marks the records returned before as processed, for
// auto-commit (WithAutoCommit) and for the hand-over of revoked queues: a
// queue the group took away while the application processed those
// records is handed over (OnRevoked, commit, release) first, before Poll
// returns anything.
func (c *Consumer) Poll(ctx context.Context) ([]Record, error) {
	if c.markPolled() && c.group != nil {
		if !c.group.opMu.lockOr(ctx, c.closing) {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, ErrConsumerClosed
		}
		c.group.handover(ctx)
		c.group.opMu.unlock()
	}
	for {
		recs, err, closed := c.take()
		switch {
		case closed:
			return nil, ErrConsumerClosed
		case len(recs) > 0 || err != nil:
			return recs, err
		}
		select {
		case <-c.wakeCh:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.closing:
			return nil, ErrConsumerClosed
		}
	}
}

// markPolled marks the records Poll returned as processed. It reports
// whether a revoked queue can be handed over now that could not before.
func (c *Consumer) markPolled() (handover bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, qs := range c.queues {
		if qs.delivered {
			qs.polled, qs.hasPolled = qs.next, true
		}
	}
	for _, qs := range c.revoking {
		if qs.delivered {
			qs.polled, qs.hasPolled = qs.next, true
		}
		handover = handover || qs.pending
		qs.pending = false
	}
	return handover
}

// take collects what the fetchers buffered: one answer per queue, queues
// in turn starting one further each call.
func (c *Consumer) take() (recs []Record, err error, closed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, nil, true
	}
	var errs []error
	n := len(c.order)
	for i := range n {
		tq := c.order[(c.rr+i)%n]
		qs := c.queues[tq]
		select {
		case ch := <-qs.f.out:
			if ch.err != nil {
				errs = append(errs, ch.err)
				continue
			}
			recs = append(recs, ch.records...)
			qs.next, qs.known, qs.delivered = ch.records[len(ch.records)-1].Offset+1, true, true
		default:
		}
	}
	c.rr++
	return recs, errors.Join(errs...), false
}

// wake tells a waiting Poll that a fetcher handed it something.
func (c *Consumer) wake() {
	select {
	case c.wakeCh <- struct{}{}:
	default:
	}
}

// setPosition records where fetcher f resolved its start, for Lag, unless
// Poll has returned records of its queue already.
func (c *Consumer) setPosition(f *fetcher, offset uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if qs := c.queues[f.tq]; qs != nil && qs.f == f && !qs.delivered {
		qs.next, qs.known = offset, true
	}
}

// sortQueues rebuilds order from queues; the caller holds c.mu.
func (c *Consumer) sortQueues() {
	c.order = c.order[:0]
	for tq := range c.queues {
		c.order = append(c.order, tq)
	}
	sort.Slice(c.order, func(i, j int) bool {
		a, b := c.order[i], c.order[j]
		return a.Topic < b.Topic || a.Topic == b.Topic && a.Queue < b.Queue
	})
}

// Assignment returns the queues the consumer delivers now, sorted.
func (c *Consumer) Assignment() []TopicQueue {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]TopicQueue(nil), c.order...)
}

// Seek makes the next records Poll returns of an assigned queue start at
// s. Records of the queue fetched before are discarded. The queue's
// committed offset does not move until the next commit after a Poll
// returned records of it.
func (c *Consumer) Seek(topic string, queue int, s Start) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrConsumerClosed
	}
	tq := TopicQueue{Topic: topic, Queue: queue}
	qs := c.queues[tq]
	if qs == nil {
		return clientError(wire.CodeNotAssigned, "queue %s/%d is not assigned to this consumer", topic, queue)
	}
	qs.f.cancel()
	c.queues[tq] = &queueState{f: c.startFetcher(tq, s), committed: qs.committed, hasCommitted: qs.hasCommitted}
	return nil
}

// Lag returns, for every assigned queue whose position is known, how many
// messages it has after the consumer's position (the offset of the next
// record Poll returns). A queue just assigned has no known position until
// its fetcher has resolved where to start.
func (c *Consumer) Lag(ctx context.Context) (map[TopicQueue]uint64, error) {
	pos := map[TopicQueue]uint64{}
	topics := map[string]bool{}
	c.mu.Lock()
	for tq, qs := range c.queues {
		if qs.known {
			pos[tq] = qs.next
			topics[tq.Topic] = true
		}
	}
	c.mu.Unlock()
	out := make(map[TopicQueue]uint64, len(pos))
	for t := range topics {
		var info wire.TopicInfo
		if err := c.conn.getJSON(ctx, "/v1/topics/"+url.PathEscape(t), minIndexQuery(nil, c.cfg.minIndex), &info); err != nil {
			return nil, fmt.Errorf("ledgermq: lag of topic %s: %w", t, err)
		}
		for _, qi := range info.QueueInfo {
			if p, ok := pos[TopicQueue{Topic: t, Queue: qi.Queue}]; ok {
				out[TopicQueue{Topic: t, Queue: qi.Queue}] = qi.Next - min(p, qi.Next)
			}
		}
	}
	return out, nil
}

// Commit commits, for every assigned queue, the offset after the last
// record Poll returned: call it once those records are processed. Queues
// with nothing new are left out; with nothing to commit it does nothing.
//
// The group refuses the commit when the consumer no longer owns a queue
// in it (ILLEGAL_GENERATION, NOT_ASSIGNED: the group rebalanced) or is no
// longer a member (UNKNOWN_MEMBER: its session expired). Commit then
// brings the consumer up to date before it returns the refusal, wrapped:
// queues it lost are no longer delivered, queues it still owns are, and
// after an expiry it has joined again.
func (c *Consumer) Commit(ctx context.Context) error {
	return c.commit(ctx, false)
}

// CommitOffsets commits the given offsets (each the offset of the next
// record to consume) of queues assigned to the consumer. See Commit for
// refusals.
func (c *Consumer) CommitOffsets(ctx context.Context, offsets map[TopicQueue]uint64) error {
	if c.group == nil {
		return ErrNoGroup
	}
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	c.mu.Lock()
	fs := map[TopicQueue]*fetcher{}
	for tq := range offsets {
		qs := c.queues[tq]
		if qs == nil {
			qs = c.revoking[tq]
		}
		if qs == nil {
			c.mu.Unlock()
			return clientError(wire.CodeNotAssigned, "queue %s/%d is not assigned to this consumer", tq.Topic, tq.Queue)
		}
		fs[tq] = qs.f
	}
	c.mu.Unlock()
	return c.group.commit(ctx, offsets, fs)
}

// commit commits the delivered positions (auto: those of before the
// latest Poll).
func (c *Consumer) commit(ctx context.Context, auto bool) error {
	if c.group == nil {
		return ErrNoGroup
	}
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	offsets := map[TopicQueue]uint64{}
	fs := map[TopicQueue]*fetcher{}
	c.mu.Lock()
	add := func(tq TopicQueue, qs *queueState) {
		pos, ok := qs.next, qs.delivered
		if auto {
			pos, ok = qs.polled, qs.hasPolled
		}
		if ok && (!qs.hasCommitted || pos != qs.committed) {
			offsets[tq], fs[tq] = pos, qs.f
		}
	}
	for tq, qs := range c.queues {
		add(tq, qs)
	}
	if !auto { // the hand-over commits revoked queues with auto-commit
		for tq, qs := range c.revoking {
			add(tq, qs)
		}
	}
	c.mu.Unlock()
	if len(offsets) == 0 {
		return nil
	}
	return c.group.commit(ctx, offsets, fs)
}

// committed records offsets the group accepted, for the queues still read
// by the same fetchers.
func (c *Consumer) committed(offsets map[TopicQueue]uint64, fs map[TopicQueue]*fetcher) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for tq, off := range offsets {
		qs := c.queues[tq]
		if qs == nil {
			qs = c.revoking[tq]
		}
		if qs != nil && qs.f == fs[tq] {
			qs.committed, qs.hasCommitted = off, true
		}
	}
}

func (c *Consumer) autoCommit() {
	t := time.NewTicker(c.cfg.autoCommit)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if c.testHang.Load() {
			continue
		}
		if err := c.commit(c.ctx, true); err != nil && c.ctx.Err() == nil {
			c.log.Warn("ledgermq: auto-commit failed", "group", c.cfg.group, "err", err)
		}
	}
}

// Close stops the consumer: Poll returns ErrConsumerClosed and the
// goroutines stop. In a group, it then calls OnRevoked
// (WithRebalanceCallbacks) with every queue the consumer still owns,
// commits — with auto-commit — the offsets after every record Poll
// returned (Close counts them as processed), hands over the queues the
// group was taking away, and leaves the group, whose other members get its
// queues at once; a static member (WithInstanceID) does not leave: its
// queues wait for its restart. Without auto-commit nothing is committed
// (commit in OnRevoked, or before Close). It returns the failures of the
// commit, the hand-over and of leaving. Later calls return the same.
func (c *Consumer) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		close(c.closing)
		var errs []error
		ctx, cancel := context.WithTimeout(context.Background(), c.conn.reqTimeout)
		defer cancel()
		// Wait for a membership change under way (a hand-over), so that
		// what the group has is known; then stop everything.
		locked := c.group != nil && c.group.opMu.lock(ctx)
		c.cancel()
		c.wg.Wait()
		if c.group != nil {
			errs = append(errs, c.group.close(ctx)...)
		}
		if locked {
			c.group.opMu.unlock()
		}
		c.conn.close()
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}
