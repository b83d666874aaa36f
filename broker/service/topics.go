package service

import (
	"context"
	"fmt"
	"time"

	"github.com/ledgermq/ledgermq/fsm"
	"github.com/ledgermq/ledgermq/topics"
	"github.com/ledgermq/ledgermq/wire"
)

// CreateTopic creates a topic; zero fields of c take the defaults. The
// config is validated on any node; only the leader proposes it. The
// answer's Index is the log index at which the topic was created.
func (s *Service) CreateTopic(ctx context.Context, c topics.Config) (info wire.TopicInfo, err error) {
	if err := s.authorizeAny(ctx, perm{wire.OpCreate, wire.ResourceTopic, c.Name}, perm{wire.OpCreate, wire.ResourceCluster, ""}); err != nil {
		return wire.TopicInfo{}, err
	}
	defer func() { s.audited(ctx, "topic_create", perm{rtype: wire.ResourceTopic, name: c.Name}, "", err) }()
	if err := topics.CheckNewName("topic", c.Name); err != nil {
		return wire.TopicInfo{}, err
	}
	if c.Queues < 0 {
		return wire.TopicInfo{}, Errorf(wire.CodeInvalidArgument, "queues must be 1..%d, got %d", topics.MaxQueues, c.Queues)
	}
	if err := c.Normalize(); err != nil {
		return wire.TopicInfo{}, err
	}
	q := s.quotas()
	if c.Queues > q.MaxQueuesPerTopic {
		return wire.TopicInfo{}, Errorf(wire.CodeTooManyQueues, "topic %s asks for %d queues, over the limit of %d queues per topic (max queues per topic)",
			c.Name, c.Queues, q.MaxQueuesPerTopic)
	}
	if err := s.RequireLeader(); err != nil {
		return wire.TopicInfo{}, err
	}
	if _, err := s.topics.Lookup(c.Name); err == nil {
		return wire.TopicInfo{}, fmt.Errorf("%w: %s", topics.ErrTopicExists, c.Name)
	}
	release, ok := s.admit.reserve("topics", func() int { return len(s.topics.List()) }, q.MaxTopics)
	if !ok {
		return wire.TopicInfo{}, Errorf(wire.CodeTooManyTopics, "the broker has the maximum of %d topics (max topics); delete unused topics first", q.MaxTopics)
	}
	defer release()
	t, index, err := proposeIndexed(s, ctx, fsm.CreateTopic, c)
	if err != nil {
		return wire.TopicInfo{}, err
	}
	info = s.topicInfo(t, false)
	info.Index = index
	return info, nil
}

// DeleteTopic deletes a topic, its messages (for readers at once; on disk
// by retention) and the groups' offsets for it.
func (s *Service) DeleteTopic(ctx context.Context, name string) (err error) {
	if err := s.Authorize(ctx, wire.OpDelete, wire.ResourceTopic, name); err != nil {
		return err
	}
	defer func() { s.audited(ctx, "topic_delete", perm{rtype: wire.ResourceTopic, name: name}, "", err) }()
	if err := s.RequireLeader(); err != nil {
		return err
	}
	if _, err := s.topics.Lookup(name); err != nil {
		return err
	}
	_, err = propose(s, ctx, fsm.DeleteTopic, name)
	return err
}

// ListTopics returns every topic the request may describe by name,
// without queue details.
func (s *Service) ListTopics(ctx context.Context) []wire.TopicInfo {
	return s.ListTopicsQueues(ctx, false)
}

// ListTopicsQueues is ListTopics, with each topic's queue offsets and
// sizes when queues is set (GET /v1/topics?queues=true).
func (s *Service) ListTopicsQueues(ctx context.Context, queues bool) []wire.TopicInfo {
	out := []wire.TopicInfo{}
	for _, t := range s.topics.List() {
		if !s.mayDescribe(ctx, wire.ResourceTopic, t.Name) {
			continue
		}
		out = append(out, s.topicInfo(t, queues))
	}
	return out
}

// DescribeTopic returns a topic with each queue's readable range.
func (s *Service) DescribeTopic(name string) (wire.TopicInfo, error) {
	return s.DescribeTopicAt(context.Background(), name, 0, 0)
}

// DescribeTopicAt is DescribeTopic once this node has applied minIndex (a
// position token; 0: at once), waiting for it at most wait
// (DefaultMinIndexWait if 0); UNAVAILABLE, not applied, if it does not.
func (s *Service) DescribeTopicAt(ctx context.Context, name string, minIndex uint64, wait time.Duration) (wire.TopicInfo, error) {
	if err := s.Authorize(ctx, wire.OpDescribe, wire.ResourceTopic, name); err != nil {
		return wire.TopicInfo{}, err
	}
	if err := s.readableAt(ctx, minIndex, min(wait, s.cfg.MaxWait)); err != nil {
		return wire.TopicInfo{}, err
	}
	t, err := s.topics.Lookup(name)
	if err != nil {
		return wire.TopicInfo{}, err
	}
	return s.topicInfo(t, true), nil
}

func (s *Service) topicInfo(t *topics.Topic, queues bool) wire.TopicInfo {
	info := wire.TopicInfo{Name: t.Name, Queues: t.Queues, RetentionMs: t.RetentionMs,
		RetentionBytes: t.RetentionBytes, MaxMessageBytes: t.MaxMessageBytes}
	if !queues {
		return info
	}
	for i := 0; i < t.Queues; i++ {
		q, _ := t.Queue(i)
		r := s.reader.Range(t, q)
		info.QueueInfo = append(info.QueueInfo, wire.QueueInfo{Queue: i, Earliest: r.Earliest, Next: r.Next, Bytes: s.reader.Bytes(t, q)})
	}
	return info
}
