package service

import (
	"sync"
	"time"

	"github.com/ledgermq/ledgermq/consumer"
)

// sessions are the leader's record of member heartbeats. They are not
// replicated: a new leader starts every member's session afresh.
type sessions struct {
	mu   sync.Mutex
	last map[string]time.Time // group + "\x00" + member
}

func newSessions() *sessions { return &sessions{last: map[string]time.Time{}} }

func sessionKey(group, member string) string { return group + "\x00" + member }

func (s *sessions) beat(group, member string, now time.Time) {
	s.mu.Lock()
	s.last[sessionKey(group, member)] = now
	s.mu.Unlock()
}

func (s *sessions) clear() {
	s.mu.Lock()
	clear(s.last)
	s.mu.Unlock()
}

// expired returns the members whose last heartbeat (or, for a member not
// heard from yet, the first time expired saw it) is older than their
// session timeout, and forgets them and members no longer in the group.
func (s *sessions) expired(members []consumer.MemberRef, now time.Time) []consumer.MemberRef {
	current := make(map[string]bool, len(members))
	for _, r := range members {
		current[sessionKey(r.Group, r.MemberID)] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.last { // members that left or were never joined
		if !current[k] {
			delete(s.last, k)
		}
	}
	var out []consumer.MemberRef
	for _, r := range members {
		k := sessionKey(r.Group, r.MemberID)
		last, ok := s.last[k]
		if !ok {
			s.last[k] = now
			continue
		}
		if now.Sub(last) > time.Duration(r.SessionTimeoutMs)*time.Millisecond {
			out = append(out, r)
			delete(s.last, k)
		}
	}
	return out
}
