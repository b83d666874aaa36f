package service

import (
	"sync"

	"github.com/ledgermq/ledgermq/fsm"
	"github.com/ledgermq/ledgermq/topics"
	"github.com/ledgermq/ledgermq/wire"
)

// Quotas bound the replicated state and the size of the commands that
// change it (docs/api.md §1.5). Zero fields take the defaults below. They
// are checked by the leader before it proposes a command, against its
// applied state plus the commands it has admitted and not yet applied, so
// concurrent requests cannot overshoot them; a command refused by a quota
// is never logged.
type Quotas struct {
	MaxTopics          int // topics [DefaultMaxTopics]
	MaxQueuesPerTopic  int // queues of one topic; at most topics.MaxQueues [topics.MaxQueues]
	MaxGroups          int // consumer groups [DefaultMaxGroups]
	MaxMembersPerGroup int // members of one group [DefaultMaxMembersPerGroup]
	// MaxCommandBytes bounds the encoded size of one topic or group
	// command, far below the commit log's entry limit, so that no request
	// can make an entry the log refuses [DefaultMaxCommandBytes].
	MaxCommandBytes int
}

// Quota defaults: generous for real deployments, finite for abuse.
const (
	DefaultMaxTopics          = 10_000
	DefaultMaxQueuesPerTopic  = topics.MaxQueues
	DefaultMaxGroups          = 10_000
	DefaultMaxMembersPerGroup = 1_000
	DefaultMaxCommandBytes    = 1 << 20
)

// quotas returns the configured quotas with defaults filled in.
func (s *Service) quotas() Quotas {
	q := s.cfg.Quotas
	if q.MaxTopics <= 0 {
		q.MaxTopics = DefaultMaxTopics
	}
	if q.MaxQueuesPerTopic <= 0 || q.MaxQueuesPerTopic > topics.MaxQueues {
		q.MaxQueuesPerTopic = topics.MaxQueues
	}
	if q.MaxGroups <= 0 {
		q.MaxGroups = DefaultMaxGroups
	}
	if q.MaxMembersPerGroup <= 0 {
		q.MaxMembersPerGroup = DefaultMaxMembersPerGroup
	}
	if q.MaxCommandBytes <= 0 {
		q.MaxCommandBytes = DefaultMaxCommandBytes
	}
	return q
}

// admission counts, per counted thing ("topics", "groups", "members/g"),
// the commands admitted under a quota and not yet applied.
type admission struct {
	mu      sync.Mutex
	pending map[string]int
}

// reserve admits one more: current (from the applied state, read by
// count under the admission lock) plus the pending ones must stay below
// limit. The returned release is called once the command is applied (or
// failed).
func (a *admission) reserve(key string, count func() int, limit int) (release func(), ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if count()+a.pending[key] >= limit {
		return nil, false
	}
	if a.pending == nil {
		a.pending = map[string]int{}
	}
	a.pending[key]++
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.pending[key]--; a.pending[key] <= 0 {
			delete(a.pending, key)
		}
	}, true
}

// checkSize refuses a command whose encoding is over MaxCommandBytes.
func checkSize[Req, Res any](s *Service, op fsm.Op[Req, Res], req Req) error {
	limit := s.quotas().MaxCommandBytes
	if n := len(op.Encode(req)); n > limit {
		return Errorf(wire.CodeCommandTooLarge, "the %s command would be %d bytes, over the limit of %d bytes (max command bytes); send fewer entries per request",
			op.Name(), n, limit)
	}
	return nil
}
