package client

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

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
		ts.queues[i] = newQueue(ts, i)
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
	if len(r.msg.Headers) > wire.MaxHeaders {
		ts.p.fail(r, -1, clientError(wire.CodeMessageTooLarge, "message has %d headers; at most %d are allowed", len(r.msg.Headers), wire.MaxHeaders))
		return
	}
	if max := ts.maxMessageBytes; max > 0 && r.msg.LimitSize() > max {
		ts.p.fail(r, -1, clientError(wire.CodeMessageTooLarge, "message is %d bytes (%d per header counted on top); topic %s allows %d",
			r.msg.LimitSize(), wire.HeaderOverhead, ts.name, max))
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
