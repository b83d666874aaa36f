package service

import (
	"context"
	"fmt"
	"sync"

	"github.com/ledgermq/ledgermq/consumer"
	"github.com/ledgermq/ledgermq/fsm"
	"github.com/ledgermq/ledgermq/topics"
	"github.com/ledgermq/ledgermq/wire"
)

// groupClaims records the consumer groups whose membership another
// front-end keeps (the Kafka listener's classic groups live in its
// coordinator on the leader, as in Kafka). A claimed group cannot be joined
// through the service's own protocol, and a group with members of that
// protocol cannot be claimed: one group, one protocol at a time.
type groupClaims struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *groupClaims) held(group string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[group] > 0
}

// ClaimGroup marks group as used by another front-end's members until
// release is called (once). It fails with GROUP_ACTIVE while members of the
// service's own protocol are in the group.
func (s *Service) ClaimGroup(group string) (release func(), err error) {
	if err := topics.CheckNewName("group", group); err != nil {
		return nil, err
	}
	s.claims.mu.Lock()
	defer s.claims.mu.Unlock()
	if n, _ := s.groups.Exists(group); n > 0 {
		return nil, Errorf(wire.CodeGroupActive, "group %s has %d members of the LedgerMQ protocol; a group is joined through one protocol at a time", group, n)
	}
	if s.claims.n == nil {
		s.claims.n = map[string]int{}
	}
	s.claims.n[group]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.claims.mu.Lock()
			defer s.claims.mu.Unlock()
			if s.claims.n[group]--; s.claims.n[group] <= 0 {
				delete(s.claims.n, group)
			}
		})
	}, nil
}

// StoreGroupOffsets commits offsets for a group whose membership another
// front-end checks (the Kafka coordinator has validated the member and
// generation): consume on the group and on every topic, the group must
// have no members of the service's own protocol, and the offsets are
// replicated like every commit. Queues not named keep their offsets.
func (s *Service) StoreGroupOffsets(ctx context.Context, group string, offsets []consumer.Offset) error {
	if err := s.Authorize(ctx, wire.OpConsume, wire.ResourceGroup, group); err != nil {
		return err
	}
	for _, o := range offsets {
		if err := s.Authorize(ctx, wire.OpConsume, wire.ResourceTopic, o.Topic); err != nil {
			return err
		}
		t, err := s.topics.Lookup(o.Topic)
		if err != nil {
			return err
		}
		if _, err := t.Queue(o.Queue); err != nil {
			return err
		}
	}
	if err := s.RequireLeader(); err != nil {
		return err
	}
	n, exists := s.groups.Exists(group)
	if !exists {
		if err := topics.CheckNewName("group", group); err != nil {
			return err
		}
	} else if n > 0 {
		return fmt.Errorf("%w: %s has %d members of the LedgerMQ protocol", consumer.ErrGroupActive, group, n)
	}
	if len(offsets) == 0 {
		return nil
	}
	if !exists {
		release, err := s.reserveGroup(s.quotas())
		if err != nil {
			return err
		}
		defer release()
	}
	c := consumer.ResetCmd{Group: group, Offsets: lastOffsets(offsets)}
	if err := checkSize(s, fsm.ResetOffsets, c); err != nil {
		return err
	}
	_, err := propose(s, ctx, fsm.ResetOffsets, c)
	return err
}

// GroupID is the broker group stamped in the batches this service builds
// for front-ends that convert records (the Kafka listener).
func (s *Service) GroupID() uint32 { return s.cfg.GroupID }
