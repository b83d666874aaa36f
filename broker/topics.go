package broker

import (
	"context"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ledgermq/ledgermq/topics"
	"github.com/ledgermq/ledgermq/wire"
)

// propose replicates a command and returns the state machine's result.
func (b *Broker) propose(cmd []byte) (any, error) {
	if b.draining.Load() {
		return nil, errShuttingDown()
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.ProposeTimeout)
	defer cancel()
	res, err := b.node.Propose(ctx, cmd)
	if err != nil {
		return nil, err
	}
	if err, ok := res.Response.(error); ok {
		return nil, err
	}
	return res.Response, nil
}

func (b *Broker) createTopic(ctx *fasthttp.RequestCtx) {
	var req wire.CreateTopicRequest
	if !b.decodeJSON(ctx, &req) {
		return
	}
	c := topics.Config{Name: req.Name, Queues: req.Queues, RetentionMs: req.RetentionMs,
		RetentionBytes: req.RetentionBytes, MaxMessageBytes: req.MaxMessageBytes}
	if err := c.Normalize(); err != nil {
		b.writeError(ctx, err)
		return
	}
	res, err := b.propose(topics.EncodeCreate(c))
	if err != nil {
		b.writeError(ctx, err)
		return
	}
	b.writeJSON(ctx, http.StatusCreated, b.topicInfo(res.(*topics.Topic), false))
}

func (b *Broker) deleteTopic(ctx *fasthttp.RequestCtx, name string) {
	if _, err := b.topics.Lookup(name); err != nil && b.node.IsLeader() {
		b.writeError(ctx, err)
		return
	}
	if _, err := b.propose(topics.EncodeDelete(name)); err != nil {
		b.writeError(ctx, err)
		return
	}
	b.writeJSON(ctx, http.StatusOK, map[string]string{"deleted": name})
}

func (b *Broker) listTopics(ctx *fasthttp.RequestCtx) {
	out := wire.TopicList{Topics: []wire.TopicInfo{}}
	for _, t := range b.topics.List() {
		out.Topics = append(out.Topics, b.topicInfo(t, false))
	}
	b.writeJSON(ctx, http.StatusOK, out)
}

func (b *Broker) describeTopic(ctx *fasthttp.RequestCtx, name string) {
	t, err := b.topics.Lookup(name)
	if err != nil {
		b.writeError(ctx, err)
		return
	}
	b.writeJSON(ctx, http.StatusOK, b.topicInfo(t, true))
}

func (b *Broker) topicInfo(t *topics.Topic, queues bool) wire.TopicInfo {
	info := wire.TopicInfo{Name: t.Name, Queues: t.Queues, RetentionMs: t.RetentionMs,
		RetentionBytes: t.RetentionBytes, MaxMessageBytes: t.MaxMessageBytes}
	if !queues {
		return info
	}
	h := b.horizon(t)
	for i := 0; i < t.Queues; i++ {
		q, _ := t.Queue(i)
		next, _ := q.Bounds()
		_, earliest := q.Find(next, h, 0)
		info.QueueInfo = append(info.QueueInfo, wire.QueueInfo{Queue: i, Earliest: min(earliest, next), Next: next})
	}
	return info
}

// horizon is what readers of t may see now: entries still in the log,
// within the topic's retention by time and by bytes.
func (b *Broker) horizon(t *topics.Topic) topics.Horizon {
	h := topics.Horizon{FirstIndex: b.node.Log().FirstIndex(), MaxBytes: t.RetentionBytes}
	if t.RetentionMs > 0 {
		h.MinTimeMs = time.Now().UnixMilli() - t.RetentionMs
	}
	return h
}
