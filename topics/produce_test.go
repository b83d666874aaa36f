package topics

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/ledgermq/ledgermq/wire"
)

// part is a produce part in a table: n plain records to topic/queue.
type part struct {
	topic string
	queue int
	n     int
}

func TestProduceDenseOffsets(t *testing.T) {
	for _, tc := range []struct {
		name   string
		topics map[string]int // name -> queues
		cmds   [][]part
		want   [][]uint64 // base offset of each part
	}{
		{
			name:   "one queue, one part per command",
			topics: map[string]int{"a": 1},
			cmds:   [][]part{{{"a", 0, 3}}, {{"a", 0, 2}}, {{"a", 0, 1}}},
			want:   [][]uint64{{0}, {3}, {5}},
		},
		{
			name:   "parts to one queue in one command follow part order",
			topics: map[string]int{"a": 1},
			cmds:   [][]part{{{"a", 0, 2}, {"a", 0, 3}, {"a", 0, 1}}, {{"a", 0, 4}}},
			want:   [][]uint64{{0, 2, 5}, {6}},
		},
		{
			name:   "queues count independently",
			topics: map[string]int{"a": 3},
			cmds:   [][]part{{{"a", 0, 2}, {"a", 1, 1}, {"a", 2, 4}}, {{"a", 1, 3}, {"a", 0, 1}}, {{"a", 2, 1}}},
			want:   [][]uint64{{0, 0, 0}, {1, 2}, {4}},
		},
		{
			name:   "topics count independently",
			topics: map[string]int{"a": 2, "b": 2},
			cmds:   [][]part{{{"b", 1, 5}, {"a", 1, 2}}, {{"a", 1, 1}, {"b", 1, 1}, {"b", 0, 2}}},
			want:   [][]uint64{{0, 0}, {2, 5, 0}},
		},
		{
			name:   "a part skipping a queue leaves it at zero",
			topics: map[string]int{"a": 4},
			cmds:   [][]part{{{"a", 3, 1}}, {{"a", 3, 1}, {"a", 3, 1}}},
			want:   [][]uint64{{0}, {1, 2}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			idx := uint64(1)
			for _, name := range sortedKeys(tc.topics) {
				mustCreate(t, s, idx, Config{Name: name, Queues: tc.topics[name]})
				idx++
			}
			wantRefs := map[string][]stored{}
			for ci, cmd := range tc.cmds {
				c := ProduceCmd{TimeMs: int64(ci)}
				for _, p := range cmd {
					c.Parts = append(c.Parts, Part{Topic: p.topic, Queue: p.queue, Batch: wireBatch(t, wire.Producer{}, p.n, 1000)})
				}
				res := s.Produce(idx, c)
				for pi, p := range cmd {
					if r := res[pi]; r.Err != nil || r.BaseOffset != tc.want[ci][pi] || r.Count != uint32(p.n) || r.Duplicate {
						t.Fatalf("command %d part %d: %+v, want base %d count %d", ci, pi, r, tc.want[ci][pi], p.n)
					}
					k := fmt.Sprintf("%s/%d", p.topic, p.queue)
					wantRefs[k] = append(wantRefs[k], stored{BatchRef{BaseOffset: tc.want[ci][pi], Count: uint32(p.n), Part: uint16(pi), Index: idx, MaxTime: 1000}, len(c.Parts[pi].Batch)})
				}
				idx++
			}
			r := restored(t, s)
			for _, st := range []*State{s, r} {
				for name, nq := range tc.topics {
					for q := range nq {
						checkQueue(t, queueOf(t, st, name, q), wantRefs[fmt.Sprintf("%s/%d", name, q)])
					}
				}
			}
		})
	}
}

// stored is a batch a test expects in a queue: its reference (End
// aside) and its size.
type stored struct {
	ref  BatchRef
	size int
}

// checkQueue compares a queue's refs with the wanted ones, computing the
// byte ends from their sizes, and its next offset with theirs.
func checkQueue(t *testing.T, q *Queue, want []stored) {
	t.Helper()
	got := allRefs(q)
	if len(got) != len(want) {
		t.Fatalf("queue holds %d batches, want %d: %+v", len(got), len(want), got)
	}
	var end, next uint64
	for i, w := range want {
		end += uint64(w.size)
		ref := w.ref
		ref.End = end
		if got[i] != ref {
			t.Fatalf("batch %d: %+v, want %+v", i, got[i], ref)
		}
		next = ref.BaseOffset + uint64(ref.Count)
	}
	if n, _ := q.Bounds(); n != next {
		t.Fatalf("next offset %d, want %d", n, next)
	}
}

func TestProducePartErrors(t *testing.T) {
	// setup: topic a with 2 queues holding one batch each (a/1's from an
	// idempotent producer), and a deleted topic.
	setup := func(t *testing.T) (*State, uint64) {
		s := New()
		mustCreate(t, s, 1, Config{Name: "a", Queues: 2})
		mustCreate(t, s, 2, Config{Name: "gone", Queues: 1})
		if err := s.Delete("gone"); err != nil {
			t.Fatal(err)
		}
		pid := mustInit(t, s, 3, 0)
		res := s.Produce(4, ProduceCmd{Parts: []Part{
			{Topic: "a", Queue: 0, Batch: wireBatch(t, wire.Producer{}, 1, 1000)},
			{Topic: "a", Queue: 1, Batch: wireBatch(t, wire.Producer{ID: pid}, 2, 1000)},
		}})
		for _, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
		return s, pid
	}
	good := wireBatch(t, wire.Producer{}, 1, 1000)
	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)-1] ^= 0xff
	badMagic := append([]byte("XXXX"), good[4:]...)
	for _, tc := range []struct {
		name string
		bad  func(pid uint64) Part
		want []error
	}{
		{"unknown topic", func(uint64) Part { return Part{Topic: "nope", Batch: good} }, []error{ErrTopicNotFound}},
		{"deleted topic", func(uint64) Part { return Part{Topic: "gone", Batch: good} }, []error{ErrTopicNotFound}},
		{"negative queue", func(uint64) Part { return Part{Topic: "a", Queue: -1, Batch: good} }, []error{ErrQueueNotFound}},
		{"queue past the last", func(uint64) Part { return Part{Topic: "a", Queue: 2, Batch: good} }, []error{ErrQueueNotFound}},
		{"empty batch", func(uint64) Part { return Part{Topic: "a"} }, []error{ErrInvalidArgument, wire.ErrMalformed}},
		{"junk batch", func(uint64) Part { return Part{Topic: "a", Batch: []byte("junk")} }, []error{ErrInvalidArgument, wire.ErrMalformed}},
		{"truncated batch", func(uint64) Part { return Part{Topic: "a", Batch: good[:len(good)-1]} }, []error{ErrInvalidArgument, wire.ErrMalformed}},
		{"corrupt batch", func(uint64) Part { return Part{Topic: "a", Batch: corrupt} }, []error{ErrInvalidArgument, wire.ErrMalformed}},
		{"bad magic", func(uint64) Part { return Part{Topic: "a", Batch: badMagic} }, []error{ErrInvalidArgument, wire.ErrMalformed}},
		{"unknown producer", func(pid uint64) Part {
			return Part{Topic: "a", Batch: wireBatch(t, wire.Producer{ID: pid + 1}, 1, 1000)}
		}, []error{ErrUnknownProducer, ErrInvalidArgument}},
		{"sequence gap", func(pid uint64) Part {
			return Part{Topic: "a", Queue: 1, Batch: wireBatch(t, wire.Producer{ID: pid, Sequence: 5}, 1, 1000)}
		}, []error{ErrOutOfOrderSeq, ErrInvalidArgument}},
		{"first batch to a queue not at sequence 0", func(pid uint64) Part {
			return Part{Topic: "a", Batch: wireBatch(t, wire.Producer{ID: pid, Sequence: 3}, 1, 1000)}
		}, []error{ErrOutOfOrderSeq}},
		{"old sequence with another count", func(pid uint64) Part {
			return Part{Topic: "a", Queue: 1, Batch: wireBatch(t, wire.Producer{ID: pid}, 1, 1000)}
		}, []error{ErrDuplicateSequence}},
	} {
		t.Run(tc.name+"/alone", func(t *testing.T) {
			s, pid := setup(t)
			before := encoded(s)
			res := s.Produce(5, ProduceCmd{Parts: []Part{tc.bad(pid)}})
			checkErr(t, res[0].Err, tc.want)
			if after := encoded(s); !bytes.Equal(before, after) {
				t.Fatalf("a refused part changed the state")
			}
			restored(t, s)
		})
		t.Run(tc.name+"/between good parts", func(t *testing.T) {
			s, pid := setup(t)
			ok1, ok2 := wireBatch(t, wire.Producer{}, 1, 1000), wireBatch(t, wire.Producer{}, 3, 1000)
			res := s.Produce(5, ProduceCmd{Parts: []Part{{Topic: "a", Queue: 0, Batch: ok1}, tc.bad(pid), {Topic: "a", Queue: 1, Batch: ok2}}})
			checkErr(t, res[1].Err, tc.want)
			if res[0] != (ProduceResult{BaseOffset: 1, Count: 1}) || res[2] != (ProduceResult{BaseOffset: 2, Count: 3}) {
				t.Fatalf("good parts: %+v, %+v", res[0], res[2])
			}
			for _, st := range []*State{s, restored(t, s)} {
				checkQueue(t, queueOf(t, st, "a", 0), []stored{
					{BatchRef{BaseOffset: 0, Count: 1, Index: 4, MaxTime: 1000}, len(good)},
					{BatchRef{BaseOffset: 1, Count: 1, Index: 5, MaxTime: 1000}, len(ok1)},
				})
				checkQueue(t, queueOf(t, st, "a", 1), []stored{
					{BatchRef{BaseOffset: 0, Count: 2, Part: 1, Index: 4, MaxTime: 1000}, len(wireBatch(t, wire.Producer{ID: pid}, 2, 1000))},
					{BatchRef{BaseOffset: 2, Count: 3, Part: 2, Index: 5, MaxTime: 1000}, len(ok2)},
				})
			}
		})
	}
}

// checkErr fails unless err is each of want.
func checkErr(t *testing.T, err error, want []error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", want)
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Fatalf("error %v, want %v", err, w)
		}
	}
}
