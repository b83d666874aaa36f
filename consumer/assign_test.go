package consumer

import (
	"bytes"
	"fmt"
	"reflect"
	"sort"
	"testing"

	"github.com/ledgermq/ledgermq/internal/enc"
)

// settle releases every queue every member is revoking, as members do
// once they stopped delivering them, until nothing moves.
func settle(t *testing.T, s *State, group string) {
	t.Helper()
	for range 10 {
		g, err := s.Describe(group)
		if err != nil {
			t.Fatal(err)
		}
		if len(g.Revoking) == 0 {
			return
		}
		for id, qs := range g.Revoking {
			if _, err := s.Release(ReleaseCmd{Group: group, MemberID: id, Queues: qs}); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Fatal("releases did not settle the group")
}

// checkOwners fails unless every queue of every existing topic a member
// of g subscribes to has exactly one owner (delivering or revoking it),
// subscribed to its topic, and nothing else is owned.
func checkOwners(t *testing.T, g GroupView, topics map[string]int) {
	t.Helper()
	subs := map[string]map[string]bool{} // topic -> subscribed members
	for _, m := range g.Members {
		for _, tp := range m.Topics {
			if subs[tp] == nil {
				subs[tp] = map[string]bool{}
			}
			subs[tp][m.ID] = true
		}
	}
	owners := map[TQ]string{}
	owned := map[string][]TQ{}
	for id, qs := range g.Assignment {
		owned[id] = append(owned[id], qs...)
	}
	for id, qs := range g.Revoking {
		owned[id] = append(owned[id], qs...)
	}
	for id, qs := range owned {
		for _, q := range qs {
			if prev, dup := owners[q]; dup {
				t.Fatalf("group %s: %v owned by %s and %s", g.Name, q, prev, id)
			}
			if !subs[q.Topic][id] && !containsTQ(g.Revoking[id], q) { // a revoking owner may have unsubscribed
				t.Fatalf("group %s: %v owned by %s, not subscribed to it", g.Name, q, id)
			}
			if n, ok := topics[q.Topic]; !ok || q.Queue < 0 || q.Queue >= n {
				t.Fatalf("group %s: %v does not exist", g.Name, q)
			}
			owners[q] = id
		}
	}
	for tp := range subs {
		for q := range topics[tp] {
			if _, ok := owners[TQ{tp, q}]; !ok {
				t.Fatalf("group %s: %s/%d has no owner", g.Name, tp, q)
			}
		}
	}
}

func containsTQ(qs []TQ, q TQ) bool {
	for _, x := range qs {
		if x == q {
			return true
		}
	}
	return false
}

// restoredCopy decodes s's snapshot into a new state over the same topics.
func restoredCopy(t *testing.T, s *State) *State {
	t.Helper()
	r := New(s.queues)
	if err := r.Decode(enc.NewReader(encoded(s))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encoded(s), encoded(r)) {
		t.Fatal("snapshot round trip changed the state")
	}
	return r
}

func TestAssignment(t *testing.T) {
	type tcase struct {
		name     string
		topics   map[string]int
		members  [][]string      // each member's topics, in join order (ids m1, m2, ...)
		want     map[string][]TQ // nil: check the properties only
		balanced bool            // member loads differ by at most one
	}
	cases := []tcase{
		{name: "one member takes all", topics: map[string]int{"a": 3}, members: [][]string{{"a"}},
			want: map[string][]TQ{"m1": {{"a", 0}, {"a", 1}, {"a", 2}}}},
		{name: "the earlier member keeps what it can", topics: map[string]int{"a": 3}, members: [][]string{{"a"}, {"a"}},
			want: map[string][]TQ{"m1": {{"a", 0}, {"a", 1}}, "m2": {{"a", 2}}}},
		{name: "more members than queues", topics: map[string]int{"a": 2}, members: [][]string{{"a"}, {"a"}, {"a"}},
			want: map[string][]TQ{"m1": {{"a", 0}}, "m2": {{"a", 1}}}},
		{name: "odd queues go to the least loaded", topics: map[string]int{"a": 3, "b": 3}, members: [][]string{{"b", "a"}, {"a", "b"}},
			want: map[string][]TQ{"m1": {{"a", 0}, {"a", 1}, {"b", 0}}, "m2": {{"a", 2}, {"b", 1}, {"b", 2}}}},
		{name: "disjoint subscriptions", topics: map[string]int{"a": 2, "b": 2}, members: [][]string{{"a"}, {"b"}},
			want: map[string][]TQ{"m1": {{"a", 0}, {"a", 1}}, "m2": {{"b", 0}, {"b", 1}}}},
		{name: "overlapping subscriptions", topics: map[string]int{"a": 1, "b": 3}, members: [][]string{{"a", "b"}, {"b"}},
			want: map[string][]TQ{"m1": {{"a", 0}, {"b", 0}}, "m2": {{"b", 1}, {"b", 2}}}},
		{name: "a topic that does not exist is skipped", topics: map[string]int{"a": 2}, members: [][]string{{"a", "missing"}, {"missing"}},
			want: map[string][]TQ{"m1": {{"a", 0}, {"a", 1}}}},
	}
	for n := 1; n <= 7; n++ {
		for _, qs := range [][2]int{{1, 1}, {4, 3}, {7, 12}} {
			subs := make([][]string, n)
			for i := range subs {
				subs[i] = []string{"a", "b"}
			}
			cases = append(cases, tcase{name: fmt.Sprintf("%d members on a:%d b:%d", n, qs[0], qs[1]),
				topics: map[string]int{"a": qs[0], "b": qs[1]}, members: subs, balanced: true})
			mixed := make([][]string, n)
			for i := range mixed {
				mixed[i] = [][]string{{"a"}, {"b"}, {"a", "b"}, {"c"}}[i%4]
			}
			cases = append(cases, tcase{name: fmt.Sprintf("%d members, mixed subscriptions, on a:%d b:%d c:5", n, qs[0], qs[1]),
				topics: map[string]int{"a": qs[0], "b": qs[1], "c": 5}, members: mixed})
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var encs [][]byte
			for range 2 { // two replicas
				s := New(counter(tc.topics))
				for i, topics := range tc.members {
					if m := join(t, s, 0, "g", "", topics...); m.MemberID != fmt.Sprintf("m%d", i+1) {
						t.Fatalf("join %d: %+v", i, m)
					}
				}
				settle(t, s, "g")
				g, err := s.Describe("g")
				if err != nil {
					t.Fatal(err)
				}
				checkOwners(t, g, tc.topics)
				if tc.want != nil && !reflect.DeepEqual(g.Assignment, tc.want) {
					t.Fatalf("assignment %v, want %v", g.Assignment, tc.want)
				}
				if tc.balanced {
					var loads []int
					for _, m := range g.Members {
						loads = append(loads, len(g.Assignment[m.ID]))
					}
					sort.Ints(loads)
					if loads[len(loads)-1]-loads[0] > 1 {
						t.Fatalf("unbalanced loads %v", loads)
					}
				}
				for _, m := range g.Members {
					got, err := s.Membership("g", m.ID)
					if err != nil || got.Generation != g.Generation || !reflect.DeepEqual(got.Assignment, append([]TQ(nil), g.Assignment[m.ID]...)) {
						t.Fatalf("Membership(%s) = %+v, %v", m.ID, got, err)
					}
				}
				encs = append(encs, encoded(restoredCopy(t, s)))
			}
			if !bytes.Equal(encs[0], encs[1]) {
				t.Fatal("two replicas differ")
			}
		})
	}
}
