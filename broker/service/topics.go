package service

import (
	"context"

	"github.com/ledgermq/ledgermq/fsm"
	"github.com/ledgermq/ledgermq/topics"
	"github.com/ledgermq/ledgermq/wire"
)

// CreateTopic creates a topic; zero fields of c take the defaults. The
// config is validated on any node; only the leader proposes it.
func (s *Service) CreateTopic(ctx context.Context, c topics.Config) (wire.TopicInfo, error) {
	if err := c.Normalize(); err != nil {
		return wire.TopicInfo{}, err
	}
	t, err := propose(s, ctx, fsm.CreateTopic, c)
	if err != nil {
		return wire.TopicInfo{}, err
	}
	return s.topicInfo(t, false), nil
}

// DeleteTopic deletes a topic, its messages (for readers at once; on disk
// by retention) and the groups' offsets for it.
func (s *Service) DeleteTopic(ctx context.Context, name string) error {
	if err := s.RequireLeader(); err != nil {
		return err
	}
	if _, err := s.topics.Lookup(name); err != nil {
		return err
	}
	_, err := propose(s, ctx, fsm.DeleteTopic, name)
	return err
}

// ListTopics returns every topic by name, without queue details.
func (s *Service) ListTopics() []wire.TopicInfo {
	out := []wire.TopicInfo{}
	for _, t := range s.topics.List() {
		out = append(out, s.topicInfo(t, false))
	}
	return out
}

// DescribeTopic returns a topic with each queue's readable range.
func (s *Service) DescribeTopic(name string) (wire.TopicInfo, error) {
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
		info.QueueInfo = append(info.QueueInfo, wire.QueueInfo{Queue: i, Earliest: r.Earliest, Next: r.Next})
	}
	return info
}
