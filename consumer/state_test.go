package consumer

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ledgermq/ledgermq/internal/enc"
)

// encoded is s's snapshot in its binary form.
func encoded(s *State) []byte {
	var w enc.Writer
	s.Snapshot().Encode(&w)
	return w.B
}

func counter(topics map[string]int) QueueCounter {
	return func(t string) (int, bool) { n, ok := topics[t]; return n, ok }
}

func join(t *testing.T, s *State, idx uint64, group, member string, topics ...string) Membership {
	t.Helper()
	m, err := s.Join(JoinCmd{Group: group, MemberID: member, Topics: topics, SessionTimeoutMs: 10000})
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	return m
}

func TestAssignmentAndFencing(t *testing.T) {
	s := New(counter(map[string]int{"orders": 12}))
	a := join(t, s, 1, "g", "", "orders")
	b := join(t, s, 2, "g", "", "orders")
	// b's share stays with a until a releases it: nothing yet for b.
	if got, _ := s.Membership("g", b.MemberID); len(got.Assignment) != 0 || len(got.Revoking) != 0 {
		t.Fatalf("b before a released: %+v", got)
	}
	if got, _ := s.Membership("g", a.MemberID); len(got.Assignment) != 6 || len(got.Revoking) != 6 {
		t.Fatalf("a after b joined: %+v", got)
	}
	c := join(t, s, 3, "g", "", "orders")
	if a.MemberID == b.MemberID || b.MemberID == c.MemberID {
		t.Fatalf("member ids not unique: %s %s %s", a.MemberID, b.MemberID, c.MemberID)
	}
	settle(t, s, "g")
	g, _ := s.Describe("g")
	owners := map[TQ]string{}
	for id, qs := range g.Assignment {
		if len(qs) != 4 {
			t.Fatalf("%s owns %d queues, want 4", id, len(qs))
		}
		for _, q := range qs {
			if prev, dup := owners[q]; dup {
				t.Fatalf("queue %v owned by %s and %s", q, prev, id)
			}
			owners[q] = id
		}
	}
	if len(owners) != 12 {
		t.Fatalf("%d queues assigned", len(owners))
	}
	// a's commit from its first generation: the queue is still its own.
	first := g.Assignment[a.MemberID][0]
	if err := s.Commit(CommitCmd{Group: "g", MemberID: a.MemberID, Generation: a.Generation,
		Offsets: []Offset{{first.Topic, first.Queue, 5}}}); err != nil {
		t.Fatalf("commit of an owned queue with an older generation: %v", err)
	}
	// A commit for a queue owned by another member is refused.
	other := g.Assignment[b.MemberID][0]
	err := s.Commit(CommitCmd{Group: "g", MemberID: a.MemberID, Generation: g.Generation,
		Offsets: []Offset{{other.Topic, other.Queue, 5}}})
	if !errors.Is(err, ErrNotAssigned) {
		t.Fatalf("foreign commit: %v", err)
	}
	if r := s.Commit(CommitCmd{Group: "g", MemberID: a.MemberID, Generation: g.Generation,
		Offsets: []Offset{{first.Topic, first.Queue, 7}}}); r != nil {
		t.Fatalf("commit: %v", r)
	}
	// c leaves: its queues move to a and b.
	if r := s.Leave(LeaveCmd{Group: "g", MemberID: c.MemberID}); r != nil {
		t.Fatal(r)
	}
	g, _ = s.Describe("g")
	if len(g.Assignment[a.MemberID])+len(g.Assignment[b.MemberID]) != 12 || len(g.Assignment[c.MemberID]) != 0 {
		t.Fatalf("after leave: %v", g.Assignment)
	}
	if g.Offsets[first] != 7 {
		t.Fatalf("committed offset lost: %v", g.Offsets)
	}
	if err := s.Reset(ResetCmd{Group: "g"}); !errors.Is(err, ErrGroupActive) {
		t.Fatalf("reset of an active group: %v", err)
	}
	if _, err := s.Join(JoinCmd{Group: "g", MemberID: "ghost", Topics: []string{"orders"}}); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("rejoin with unknown id: %v", err)
	}

	// The same commands give the same state on another replica, and a
	// snapshot carries it.
	r := New(counter(map[string]int{"orders": 12}))
	r2 := New(counter(map[string]int{"orders": 12}))
	if err := r.Decode(enc.NewReader(encoded(s))); err != nil {
		t.Fatal(err)
	}
	if err := r2.Decode(enc.NewReader(encoded(r))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encoded(s), encoded(r2)) {
		t.Fatal("snapshot round trip changed the state")
	}
	if m := join(t, r, 10, "g", "", "orders"); m.MemberID == a.MemberID || m.MemberID == b.MemberID || m.MemberID == c.MemberID {
		t.Fatalf("restored state reissued member id %s", m.MemberID)
	}
}

func TestTopicCreatedLaterIsAssigned(t *testing.T) {
	topics := map[string]int{}
	s := New(counter(topics))
	m := join(t, s, 1, "g", "", "later")
	if len(m.Assignment) != 0 {
		t.Fatalf("assignment before the topic exists: %v", m.Assignment)
	}
	topics["later"] = 3
	s.TopicChanged("later")
	got, _ := s.Membership("g", m.MemberID)
	if len(got.Assignment) != 3 || got.Generation != m.Generation+1 {
		t.Fatalf("after creation: %+v", got)
	}
}
