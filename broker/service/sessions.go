package service

import (
	"sync"
	"time"

	"github.com/ledgermq/ledgermq/consumer"
)

// sessions are the leader's record of member heartbeats. They are not
// replicated: a new leader starts every member's session afresh.
type sessions struct {
	mu       sync.Mutex
	last     map[string]time.Time // group + "\x00" + member
	revoking map[string]time.Time // since when a member has had queues to release
}

func newSessions() *sessions {
	return &sessions{last: map[string]time.Time{}, revoking: map[string]time.Time{}}
}

func sessionKey(group, member string) string { return group + "\x00" + member }

func (s *sessions) beat(group, member string, now time.Time) {
	s.mu.Lock()
	s.last[sessionKey(group, member)] = now
	s.mu.Unlock()
}

func (s *sessions) clear() {
	s.mu.Lock()
	clear(s.last)
	clear(s.revoking)
	s.mu.Unlock()
}

// released restarts a member's count in stuck: it is releasing, if
// perhaps never done (rebalances may keep giving it queues to let go).
func (s *sessions) released(group, member string) {
	s.mu.Lock()
	delete(s.revoking, sessionKey(group, member))
	s.mu.Unlock()
}

// stuck returns the members that have had queues to release for longer
// than their session timeout (counted from the first time stuck saw
// them so on this leader, or from their last release): a member that stops delivering a queue only
// once it is asked cannot keep it from its next owner for longer.
func (s *sessions) stuck(members []consumer.MemberRef, now time.Time) []consumer.MemberRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	current := map[string]bool{}
	var out []consumer.MemberRef
	for _, r := range members {
		if !r.Revoking {
			continue
		}
		k := sessionKey(r.Group, r.MemberID)
		current[k] = true
		since, ok := s.revoking[k]
		switch {
		case !ok:
			s.revoking[k] = now
		case now.Sub(since) > time.Duration(r.SessionTimeoutMs)*time.Millisecond:
			out = append(out, r)
			delete(s.revoking, k)
		}
	}
	for k := range s.revoking {
		if !current[k] {
			delete(s.revoking, k)
		}
	}
	return out
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
