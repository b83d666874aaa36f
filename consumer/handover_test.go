package consumer

import (
	"reflect"
	"testing"
)

// TestHandoverTwoSteps: a queue moves only after its owner releases it;
// the release commits the owner's offsets in the same step and is
// idempotent; queues that do not move stay put; a join moves only the
// newcomer's share.
func TestHandoverTwoSteps(t *testing.T) {
	s := New(counter(map[string]int{"a": 6}))
	m1 := join(t, s, 0, "g", "", "a")
	m2 := join(t, s, 0, "g", "", "a")
	settle(t, s, "g")
	before, _ := s.Describe("g")
	m3 := join(t, s, 0, "g", "", "a")
	g, _ := s.Describe("g")
	// m3's share (2 queues) is taken one from each, and is still owned by them.
	var moving []TQ
	for _, id := range []string{m1.MemberID, m2.MemberID} {
		if len(g.Revoking[id]) != 1 || len(g.Assignment[id]) != 2 {
			t.Fatalf("%s after the join: delivers %v, revoking %v", id, g.Assignment[id], g.Revoking[id])
		}
		for _, q := range g.Assignment[id] {
			if !containsTQ(before.Assignment[id], q) {
				t.Fatalf("%s was given %v in the join: only the newcomer's share may move", id, q)
			}
		}
		moving = append(moving, g.Revoking[id]...)
	}
	if got, _ := s.Membership("g", m3.MemberID); len(got.Assignment) != 0 {
		t.Fatalf("the newcomer delivers %v before anyone released", got.Assignment)
	}
	// m1 releases its moving queue with its offset: m3 gets it, with the offset.
	q := g.Revoking[m1.MemberID][0]
	rel := ReleaseCmd{Group: "g", MemberID: m1.MemberID, Queues: []TQ{q}, Offsets: []Offset{{q.Topic, q.Queue, 42}}}
	got, err := s.Release(rel)
	if err != nil || len(got.Revoking) != 0 || len(got.Assignment) != 2 {
		t.Fatalf("release: %+v, %v", got, err)
	}
	n3, _ := s.Membership("g", m3.MemberID)
	if !reflect.DeepEqual(n3.Assignment, []TQ{q}) {
		t.Fatalf("newcomer after one release: %v, want %v", n3.Assignment, []TQ{q})
	}
	// The same release again (an answer lost) changes nothing, and its
	// offset no longer applies: the queue is m3's now.
	if err := s.Commit(CommitCmd{Group: "g", MemberID: m3.MemberID, Generation: n3.Generation, Offsets: []Offset{{q.Topic, q.Queue, 50}}}); err != nil {
		t.Fatal(err)
	}
	enc := encoded(s)
	rel.Offsets[0].Offset = 1
	if _, err := s.Release(rel); err != nil || string(enc) != string(encoded(s)) {
		t.Fatalf("a resent release changed the state (%v)", err)
	}
	if g, _ := s.Describe("g"); g.Offsets[q] != 50 {
		t.Fatalf("offset of the moved queue %d, want 50", g.Offsets[q])
	}
	// Releasing a queue that is not moving does nothing.
	keep := got.Assignment[0]
	if _, err := s.Release(ReleaseCmd{Group: "g", MemberID: m1.MemberID, Queues: []TQ{keep}}); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.Describe("g"); !containsTQ(g.Assignment[m1.MemberID], keep) {
		t.Fatalf("a queue that was not moving left on release: %v", g.Assignment)
	}
	// m2 leaves instead of releasing: its queues, the moving one too, go
	// to their next owners at once.
	if err := s.Leave(LeaveCmd{Group: "g", MemberID: m2.MemberID}); err != nil {
		t.Fatal(err)
	}
	settle(t, s, "g")
	g, _ = s.Describe("g")
	checkOwners(t, g, map[string]int{"a": 6})
	if len(g.Assignment[m1.MemberID])+len(g.Assignment[m3.MemberID]) != 6 || !containsTQ(append(g.Assignment[m1.MemberID], g.Assignment[m3.MemberID]...), moving[1]) {
		t.Fatalf("after m2 left: %v", g.Assignment)
	}
}

// TestStaticMemberReplaced: a join with a current member's instance id
// replaces it: a new id, the old member's queues exactly (delivering and
// revoking), nobody else's queues move, and the old id is fenced.
func TestStaticMemberReplaced(t *testing.T) {
	s := New(counter(map[string]int{"a": 4}))
	a, err := s.Join(JoinCmd{Group: "g", InstanceID: "web-1", Topics: []string{"a"}, SessionTimeoutMs: 1000})
	if err != nil {
		t.Fatal(err)
	}
	b := join(t, s, 0, "g", "", "a")
	settle(t, s, "g")
	before, _ := s.Describe("g")
	a2, err := s.Join(JoinCmd{Group: "g", InstanceID: "web-1", Topics: []string{"a"}, SessionTimeoutMs: 1000})
	if err != nil || a2.MemberID == a.MemberID {
		t.Fatalf("rejoin of the instance: %+v, %v", a2, err)
	}
	after, _ := s.Describe("g")
	if !reflect.DeepEqual(after.Assignment[a2.MemberID], before.Assignment[a.MemberID]) ||
		!reflect.DeepEqual(after.Assignment[b.MemberID], before.Assignment[b.MemberID]) || len(after.Members) != 2 {
		t.Fatalf("before %v, after %v", before.Assignment, after.Assignment)
	}
	if len(after.Revoking) != 0 {
		t.Fatalf("a restart moved queues: %v", after.Revoking)
	}
	q := after.Assignment[a2.MemberID][0]
	if err := s.Commit(CommitCmd{Group: "g", MemberID: a.MemberID, Generation: after.Generation, Offsets: []Offset{{q.Topic, q.Queue, 1}}}); err == nil {
		t.Fatal("the replaced member could still commit")
	}
}

// TestFirstProtocolReplays: commands of the first group protocol (written
// by earlier versions) apply with its rules: round-robin assignment, queues
// handed over at once, commits fenced by exact generation; the group keeps
// them through a snapshot, and moves to the two-step protocol at its next
// membership change of this version.
func TestFirstProtocolReplays(t *testing.T) {
	s := New(counter(map[string]int{"a": 3}))
	for range 2 {
		if _, err := s.JoinV1(JoinCmd{Group: "g", Topics: []string{"a"}, SessionTimeoutMs: 1000}); err != nil {
			t.Fatal(err)
		}
	}
	g, _ := s.Describe("g")
	want := map[string][]TQ{"m1": {{"a", 0}, {"a", 2}}, "m2": {{"a", 1}}}
	if !reflect.DeepEqual(g.Assignment, want) || len(g.Revoking) != 0 || g.Generation != 2 {
		t.Fatalf("after two first-protocol joins: %v, revoking %v, generation %d", g.Assignment, g.Revoking, g.Generation)
	}
	if err := s.CommitV1(CommitCmd{Group: "g", MemberID: "m1", Generation: 1, Offsets: []Offset{{"a", 0, 3}}}); err == nil {
		t.Fatal("a first-protocol commit with a stale generation was accepted")
	}
	if err := s.CommitV1(CommitCmd{Group: "g", MemberID: "m2", Generation: 2, Offsets: []Offset{{"a", 1, 3}}}); err != nil {
		t.Fatal(err)
	}
	r := restoredCopy(t, s)
	if err := r.LeaveV1(LeaveCmd{Group: "g", MemberID: "m1"}); err != nil {
		t.Fatal(err)
	}
	if g, _ := r.Describe("g"); len(g.Assignment["m2"]) != 3 || len(g.Revoking) != 0 {
		t.Fatalf("a first-protocol leave after a snapshot: %v, revoking %v", g.Assignment, g.Revoking)
	}
	// This version's join: the two-step protocol from now on.
	join(t, s, 0, "g", "", "a")
	if g, _ := s.Describe("g"); len(g.Revoking) == 0 {
		t.Fatalf("a join of this version moved queues at once: %v", g.Assignment)
	}
}
