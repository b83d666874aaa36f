package service

import (
	"reflect"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/consumer"
)

func TestSessions(t *testing.T) {
	// A script of calls at times after t0; "expired" lists the members
	// (group/member with a session timeout) and the refs it must return.
	type step struct {
		op      string // "beat", "expired", "clear"
		at      time.Duration
		group   string // for beat
		member  string
		members []consumer.MemberRef // for expired
		want    []consumer.MemberRef
	}
	m1 := consumer.MemberRef{Group: "g", MemberID: "m1", SessionTimeoutMs: 1000}
	m2 := consumer.MemberRef{Group: "g", MemberID: "m2", SessionTimeoutMs: 3000}
	h1 := consumer.MemberRef{Group: "h", MemberID: "m1", SessionTimeoutMs: 1000}
	zero := consumer.MemberRef{Group: "g", MemberID: "z", SessionTimeoutMs: 0}
	refs := func(r ...consumer.MemberRef) []consumer.MemberRef { return r }
	const ms = time.Millisecond
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"a member not seen before starts its session at the first expired call", []step{
			{op: "expired", at: 500 * ms, members: refs(m1)},
			{op: "expired", at: 1500 * ms, members: refs(m1)},
			{op: "expired", at: 1500*ms + 1, members: refs(m1), want: refs(m1)},
		}},
		{"expiry exactly after the timeout, not at it", []step{
			{op: "beat", at: 0, group: "g", member: "m1"},
			{op: "expired", at: 1000 * ms, members: refs(m1)},
			{op: "expired", at: 1000*ms + 1, members: refs(m1), want: refs(m1)},
		}},
		{"a beat restarts the session", []step{
			{op: "beat", at: 0, group: "g", member: "m1"},
			{op: "beat", at: 900 * ms, group: "g", member: "m1"},
			{op: "expired", at: 1800 * ms, members: refs(m1)},
			{op: "expired", at: 1900*ms + 1, members: refs(m1), want: refs(m1)},
		}},
		{"an expired member is forgotten: its session starts again", []step{
			{op: "beat", at: 0, group: "g", member: "m1"},
			{op: "expired", at: 2000 * ms, members: refs(m1), want: refs(m1)},
			{op: "expired", at: 2000 * ms, members: refs(m1)},
			{op: "expired", at: 3000 * ms, members: refs(m1)},
			{op: "expired", at: 3001 * ms, members: refs(m1), want: refs(m1)},
		}},
		{"each member has its own timeout", []step{
			{op: "beat", at: 0, group: "g", member: "m1"},
			{op: "beat", at: 0, group: "g", member: "m2"},
			{op: "expired", at: 2000 * ms, members: refs(m1, m2), want: refs(m1)},
			{op: "expired", at: 3001 * ms, members: refs(m1, m2), want: refs(m2)},
		}},
		{"the result follows the members' order", []step{
			{op: "beat", at: 0, group: "g", member: "m2"},
			{op: "beat", at: 0, group: "g", member: "m1"},
			{op: "expired", at: 5000 * ms, members: refs(m2, m1), want: refs(m2, m1)},
		}},
		{"the same member id in two groups", []step{
			{op: "beat", at: 0, group: "g", member: "m1"},
			{op: "beat", at: 800 * ms, group: "h", member: "m1"},
			{op: "expired", at: 1500 * ms, members: refs(m1, h1), want: refs(m1)},
			{op: "expired", at: 1801 * ms, members: refs(m1, h1), want: refs(h1)},
		}},
		{"a member no longer in the group is forgotten", []step{
			{op: "beat", at: 0, group: "g", member: "m1"},
			{op: "expired", at: 100 * ms, members: refs(m2)},
			{op: "expired", at: 5000 * ms, members: refs(m1, m2), want: refs(m2)},
			{op: "expired", at: 6000 * ms, members: refs(m1)},
			{op: "expired", at: 6001 * ms, members: refs(m1), want: refs(m1)},
		}},
		{"a beat of a member not in the group is dropped at the next expired call", []step{
			{op: "beat", at: 0, group: "g", member: "ghost"},
			{op: "expired", at: time.Hour, members: nil},
			{op: "expired", at: time.Hour, members: refs(consumer.MemberRef{Group: "g", MemberID: "ghost", SessionTimeoutMs: 1})},
		}},
		{"clear starts every session afresh", []step{
			{op: "beat", at: 0, group: "g", member: "m1"},
			{op: "beat", at: 0, group: "g", member: "m2"},
			{op: "clear", at: 500 * ms},
			{op: "expired", at: 10 * time.Second, members: refs(m1, m2)},
			{op: "expired", at: 11 * time.Second, members: refs(m1, m2)},
			{op: "expired", at: 11*time.Second + 1, members: refs(m1, m2), want: refs(m1)},
		}},
		{"a zero timeout expires at the next instant", []step{
			{op: "expired", at: 0, members: refs(zero)},
			{op: "expired", at: 0, members: refs(zero)},
			{op: "expired", at: 1, members: refs(zero), want: refs(zero)},
		}},
		{"a clock that goes back expires nothing", []step{
			{op: "beat", at: 5 * time.Second, group: "g", member: "m1"},
			{op: "expired", at: 0, members: refs(m1)},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
			s := newSessions()
			for i, st := range tc.steps {
				now := t0.Add(st.at)
				switch st.op {
				case "beat":
					s.beat(st.group, st.member, now)
				case "clear":
					s.clear()
				case "expired":
					if got := s.expired(st.members, now); !reflect.DeepEqual(got, st.want) {
						t.Fatalf("step %d: expired at +%v = %v, want %v", i, st.at, got, st.want)
					}
				default:
					t.Fatalf("step %d: unknown op %q", i, st.op)
				}
			}
		})
	}
}

// TestStuckReleases: a member that has had queues to release for longer
// than its session timeout is reported once; one that released (no longer
// revoking) is forgotten; clear starts the count afresh.
func TestStuckReleases(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	const ms = time.Millisecond
	m1 := consumer.MemberRef{Group: "g", MemberID: "m1", SessionTimeoutMs: 1000, Revoking: true}
	m2 := consumer.MemberRef{Group: "g", MemberID: "m2", SessionTimeoutMs: 1000, Revoking: true}
	m2done := m2
	m2done.Revoking = false
	s := newSessions()
	steps := []struct {
		at      time.Duration
		members []consumer.MemberRef
		want    []consumer.MemberRef
	}{
		{0, []consumer.MemberRef{m1, m2}, nil},
		{600 * ms, []consumer.MemberRef{m1, m2done}, nil}, // m2 released
		{900 * ms, []consumer.MemberRef{m1, m2}, nil},     // m2 revoking again: a new count
		{1001 * ms, []consumer.MemberRef{m1, m2}, []consumer.MemberRef{m1}},
		{1500 * ms, []consumer.MemberRef{m2}, nil},
		{1901 * ms, []consumer.MemberRef{m2}, []consumer.MemberRef{m2}},
	}
	for i, st := range steps {
		if got := s.stuck(st.members, t0.Add(st.at)); !reflect.DeepEqual(got, st.want) {
			t.Fatalf("step %d at +%v: stuck %v, want %v", i, st.at, got, st.want)
		}
	}
	// A release restarts the count, though the member is revoking again.
	s.stuck([]consumer.MemberRef{m1}, t0)
	s.released("g", "m1")
	if got := s.stuck([]consumer.MemberRef{m1}, t0.Add(1500*ms)); got != nil {
		t.Fatalf("right after a release: %v", got)
	}
	if got := s.stuck([]consumer.MemberRef{m1}, t0.Add(2501*ms)); len(got) != 1 {
		t.Fatalf("a session timeout after the release: %v", got)
	}
	s.stuck([]consumer.MemberRef{m1}, t0)
	s.clear()
	if got := s.stuck([]consumer.MemberRef{m1}, t0.Add(time.Hour)); got != nil {
		t.Fatalf("after clear: %v", got)
	}
}
