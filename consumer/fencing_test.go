package consumer

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ledgermq/ledgermq/internal/enc"
)

// fencingFixture: group g with m1 (a/0, a/1) and m2 (a/2, a/3) at
// generation 3 (two joins and m1's release of a/2 and a/3), m1 having
// committed a/0 at 5; group h with m1 on b.
func fencingFixture(t *testing.T) *State {
	t.Helper()
	s := New(counter(map[string]int{"a": 4, "b": 1}))
	join(t, s, 0, "g", "", "a")
	join(t, s, 0, "g", "", "a")
	settle(t, s, "g")
	join(t, s, 0, "h", "", "b")
	if err := s.Commit(CommitCmd{Group: "g", MemberID: "m1", Generation: 3, Offsets: []Offset{{"a", 0, 5}}}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCommitFencing(t *testing.T) {
	for _, tc := range []struct {
		name string
		prep func(t *testing.T, s *State)
		cmd  CommitCmd
		err  error
		want map[TQ]uint64 // g's offsets after
	}{
		{name: "own queues at the current generation", cmd: CommitCmd{Group: "g", MemberID: "m1", Generation: 3, Offsets: []Offset{{"a", 0, 9}, {"a", 1, 3}}},
			want: map[TQ]uint64{{"a", 0}: 9, {"a", 1}: 3}},
		{name: "an offset may move back", cmd: CommitCmd{Group: "g", MemberID: "m1", Generation: 3, Offsets: []Offset{{"a", 0, 1}}},
			want: map[TQ]uint64{{"a", 0}: 1}},
		{name: "nothing to commit", cmd: CommitCmd{Group: "g", MemberID: "m2", Generation: 3}},
		{name: "an older generation, the queue still owned", cmd: CommitCmd{Group: "g", MemberID: "m1", Generation: 1, Offsets: []Offset{{"a", 0, 9}}},
			want: map[TQ]uint64{{"a", 0}: 9}},
		{name: "generation zero", cmd: CommitCmd{Group: "g", MemberID: "m1", Offsets: []Offset{{"a", 0, 9}}}, err: ErrIllegalGeneration},
		{name: "a future generation", cmd: CommitCmd{Group: "g", MemberID: "m1", Generation: 4, Offsets: []Offset{{"a", 0, 9}}}, err: ErrIllegalGeneration},
		{name: "another member's queue", cmd: CommitCmd{Group: "g", MemberID: "m1", Generation: 3, Offsets: []Offset{{"a", 2, 9}}}, err: ErrNotAssigned},
		{name: "own and foreign queues: none is committed", cmd: CommitCmd{Group: "g", MemberID: "m1", Generation: 3, Offsets: []Offset{{"a", 0, 9}, {"a", 3, 9}}}, err: ErrNotAssigned},
		{name: "a queue that does not exist", cmd: CommitCmd{Group: "g", MemberID: "m1", Generation: 3, Offsets: []Offset{{"a", 4, 9}}}, err: ErrNotAssigned},
		{name: "a topic the member does not read", cmd: CommitCmd{Group: "g", MemberID: "m1", Generation: 3, Offsets: []Offset{{"b", 0, 9}}}, err: ErrNotAssigned},
		{name: "a member of another group", cmd: CommitCmd{Group: "g", MemberID: "m3", Generation: 3, Offsets: []Offset{{"a", 0, 9}}}, err: ErrUnknownMember},
		{name: "an unknown group", cmd: CommitCmd{Group: "nope", MemberID: "m1", Generation: 3, Offsets: []Offset{{"a", 0, 9}}}, err: ErrGroupNotFound},
		{name: "a member that left", prep: func(t *testing.T, s *State) {
			if err := s.Leave(LeaveCmd{Group: "g", MemberID: "m2"}); err != nil {
				t.Fatal(err)
			}
		}, cmd: CommitCmd{Group: "g", MemberID: "m2", Generation: 4, Offsets: []Offset{{"a", 2, 9}}}, err: ErrUnknownMember},
		{name: "a queue moving away: its owner commits until it releases it", prep: func(t *testing.T, s *State) {
			join(t, s, 0, "g", "", "a") // m3's share is a/3, which m2 must release first
		}, cmd: CommitCmd{Group: "g", MemberID: "m2", Generation: 4, Offsets: []Offset{{"a", 3, 9}}}, want: map[TQ]uint64{{"a", 3}: 9}},
		{name: "a queue moving away: its next owner cannot commit it yet", prep: func(t *testing.T, s *State) {
			join(t, s, 0, "g", "", "a")
		}, cmd: CommitCmd{Group: "g", MemberID: "m3", Generation: 4, Offsets: []Offset{{"a", 3, 9}}}, err: ErrNotAssigned},
		{name: "a queue released: its old owner cannot commit it", prep: func(t *testing.T, s *State) {
			join(t, s, 0, "g", "", "a")
			settle(t, s, "g")
		}, cmd: CommitCmd{Group: "g", MemberID: "m2", Generation: 5, Offsets: []Offset{{"a", 3, 9}}}, err: ErrNotAssigned},
		{name: "a queue gained in a rebalance", prep: func(t *testing.T, s *State) {
			if err := s.Leave(LeaveCmd{Group: "g", MemberID: "m2"}); err != nil {
				t.Fatal(err)
			}
		}, cmd: CommitCmd{Group: "g", MemberID: "m1", Generation: 4, Offsets: []Offset{{"a", 3, 9}}}, want: map[TQ]uint64{{"a", 3}: 9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fencingFixture(t)
			if tc.prep != nil {
				tc.prep(t, s)
			}
			before := encoded(s)
			err := s.Commit(tc.cmd)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("commit: %v, want %v", err, tc.err)
			}
			if err != nil && !bytes.Equal(before, encoded(s)) {
				t.Fatal("a refused commit changed the state")
			}
			want := map[TQ]uint64{{"a", 0}: 5}
			for k, v := range tc.want {
				want[k] = v
			}
			if g, _ := s.Describe("g"); !equalOffsets(g.Offsets, want) {
				t.Fatalf("offsets %v, want %v", g.Offsets, want)
			}
			restoredCopy(t, s)
		})
	}
}

func equalOffsets(a, b map[TQ]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestJoinLeaveErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(s *State) error
		err  error
	}{
		{"join without a group", func(s *State) error { _, err := s.Join(JoinCmd{Topics: []string{"a"}}); return err }, ErrInvalid},
		{"join without topics", func(s *State) error { _, err := s.Join(JoinCmd{Group: "g"}); return err }, ErrInvalid},
		{"rejoin with an unknown id", func(s *State) error {
			_, err := s.Join(JoinCmd{Group: "g", MemberID: "m9", Topics: []string{"a"}})
			return err
		}, ErrUnknownMember},
		{"leave of an unknown member", func(s *State) error { return s.Leave(LeaveCmd{Group: "g", MemberID: "m9"}) }, ErrUnknownMember},
		{"leave of an unknown group", func(s *State) error { return s.Leave(LeaveCmd{Group: "nope", MemberID: "m1"}) }, ErrGroupNotFound},
		{"reset of an active group", func(s *State) error { return s.Reset(ResetCmd{Group: "g", Offsets: []Offset{{"a", 0, 1}}}) }, ErrGroupActive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fencingFixture(t)
			before := encoded(s)
			if err := tc.do(s); !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if !bytes.Equal(before, encoded(s)) {
				t.Fatal("a refused command changed the state")
			}
		})
	}
}

// TestRefusedRejoinKeepsReplayBehaviour: a rejoin with an unknown member
// id is refused and, as in every earlier version, leaves its (empty)
// group behind, so logs written before replay to the same state on every
// node. (The broker refuses such a join before proposing it: see
// broker/service TestRejoinUnknownMember.)
func TestRefusedRejoinKeepsReplayBehaviour(t *testing.T) {
	s := New(counter(map[string]int{"a": 1}))
	if _, err := s.Join(JoinCmd{Group: "typo", MemberID: "m1", Topics: []string{"a"}}); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("join: %v", err)
	}
	g, err := s.Describe("typo")
	if err != nil || g.Generation != 0 || len(g.Members) != 0 {
		t.Fatalf("Describe after a refused rejoin: %+v, %v; want the empty group earlier versions leave", g, err)
	}
}

func TestReset(t *testing.T) {
	for _, tc := range []struct {
		name  string
		group string
		prep  func(t *testing.T, s *State)
		err   error
		want  map[TQ]uint64
	}{
		{name: "a group that does not exist is created", group: "new", want: map[TQ]uint64{{"a", 1}: 7, {"b", 0}: 2}},
		{name: "a group whose members all left", group: "g", prep: func(t *testing.T, s *State) {
			for _, m := range []string{"m1", "m2"} {
				if err := s.Leave(LeaveCmd{Group: "g", MemberID: m}); err != nil {
					t.Fatal(err)
				}
			}
		}, want: map[TQ]uint64{{"a", 0}: 5, {"a", 1}: 7, {"b", 0}: 2}},
		{name: "a group with members", group: "g", err: ErrGroupActive, want: map[TQ]uint64{{"a", 0}: 5}},
		{name: "a group with one member left", group: "g", prep: func(t *testing.T, s *State) {
			if err := s.Leave(LeaveCmd{Group: "g", MemberID: "m1"}); err != nil {
				t.Fatal(err)
			}
		}, err: ErrGroupActive, want: map[TQ]uint64{{"a", 0}: 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fencingFixture(t)
			if tc.prep != nil {
				tc.prep(t, s)
			}
			before := encoded(s)
			err := s.Reset(ResetCmd{Group: tc.group, Offsets: []Offset{{"a", 1, 7}, {"b", 0, 2}}})
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("reset: %v, want %v", err, tc.err)
			}
			if err != nil && !bytes.Equal(before, encoded(s)) {
				t.Fatal("a refused reset changed the state")
			}
			if g, _ := s.Describe(tc.group); !equalOffsets(g.Offsets, tc.want) {
				t.Fatalf("offsets %v, want %v", g.Offsets, tc.want)
			}
			restoredCopy(t, s)
		})
	}
}

func TestTopicChanged(t *testing.T) {
	// Groups: g reads a, b and a.x (m1) and a, b (m2), h reads b, k reads
	// c (not created yet), z has no members; g has offsets on a, a.x and b,
	// h on b, z (by a reset) on a and b.
	setup := func(t *testing.T) (*State, map[string]int) {
		topics := map[string]int{"a": 2, "a.x": 1, "b": 2}
		s := New(counter(topics))
		join(t, s, 0, "g", "", "a", "b", "a.x")
		join(t, s, 0, "g", "", "a", "b")
		settle(t, s, "g")
		join(t, s, 0, "h", "", "b")
		join(t, s, 0, "k", "", "c")
		if err := s.Reset(ResetCmd{Group: "z", Offsets: []Offset{{"a", 0, 4}, {"b", 1, 4}}}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []CommitCmd{
			{Group: "g", MemberID: "m1", Generation: 3, Offsets: []Offset{{"a", 0, 1}, {"a.x", 0, 1}}},
			{Group: "g", MemberID: "m2", Generation: 3, Offsets: []Offset{{"a", 1, 1}, {"b", 1, 1}}},
			{Group: "h", MemberID: "m1", Generation: 1, Offsets: []Offset{{"b", 0, 3}, {"b", 1, 3}}},
		} {
			if err := s.Commit(c); err != nil {
				t.Fatal(err)
			}
		}
		return s, topics
	}
	for _, tc := range []struct {
		name    string
		change  func(topics map[string]int)
		topic   string
		bumped  []string // groups whose generation goes up by one
		offsets map[string]map[TQ]uint64
	}{
		{name: "a topic created that g and h read", change: func(m map[string]int) { m["b"] = 2 }, topic: "b", bumped: []string{"g", "h"}},
		{name: "a topic created that k reads", change: func(m map[string]int) { m["c"] = 3 }, topic: "c", bumped: []string{"k"}},
		{name: "a topic created that nobody reads", change: func(m map[string]int) { m["d"] = 3 }, topic: "d"},
		{name: "a deleted topic's offsets are forgotten", change: func(m map[string]int) { delete(m, "a") }, topic: "a", bumped: []string{"g"},
			offsets: map[string]map[TQ]uint64{"g": {{"a.x", 0}: 1, {"b", 1}: 1}, "z": {{"b", 1}: 4}}},
		{name: "a deleted topic no member reads", change: func(m map[string]int) { delete(m, "a.x") }, topic: "a.x", bumped: []string{"g"},
			offsets: map[string]map[TQ]uint64{"g": {{"a", 0}: 1, {"a", 1}: 1, {"b", 1}: 1}}},
		{name: "a topic deleted that two groups read", change: func(m map[string]int) { delete(m, "b") }, topic: "b", bumped: []string{"g", "h"},
			offsets: map[string]map[TQ]uint64{"g": {{"a", 0}: 1, {"a", 1}: 1, {"a.x", 0}: 1}, "h": {}, "z": {{"a", 0}: 4}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, topics := setup(t)
			before := map[string]GroupView{}
			for _, g := range s.List() {
				before[g.Name] = g
			}
			tc.change(topics)
			s.TopicChanged(tc.topic)
			bumped := map[string]bool{}
			for _, g := range tc.bumped {
				bumped[g] = true
			}
			for _, g := range s.List() {
				want := before[g.Name].Generation
				if bumped[g.Name] {
					want++
				}
				if g.Generation != want {
					t.Errorf("group %s at generation %d, want %d", g.Name, g.Generation, want)
				}
				checkOwners(t, g, topics)
				wantOff := before[g.Name].Offsets
				if o, ok := tc.offsets[g.Name]; ok {
					wantOff = o
				}
				if !equalOffsets(g.Offsets, wantOff) {
					t.Errorf("group %s offsets %v, want %v", g.Name, g.Offsets, wantOff)
				}
			}
			restoredCopy(t, s)
		})
	}
}

func TestDecodeRefusesBadInput(t *testing.T) {
	good := encoded(fencingFixture(t))
	for n := range len(good) + 1 {
		input := good[:n]
		if n == len(good) {
			input = append(append([]byte(nil), good...), 0)
		}
		s := New(counter(map[string]int{"a": 1}))
		join(t, s, 0, "keep", "", "a")
		before := encoded(s)
		if err := s.Decode(enc.NewReader(input)); err == nil {
			t.Fatalf("Decode accepted %d of %d bytes", n, len(good))
		} else if err != nil && !bytes.Equal(before, encoded(s)) {
			t.Fatalf("a refused snapshot (%d bytes) changed the state", n)
		}
	}
}
