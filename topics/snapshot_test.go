package topics

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/ledgermq/ledgermq/internal/enc"
	"github.com/ledgermq/ledgermq/wire"
)

// richState has a bit of everything a snapshot carries: topics with
// multi-part batches, a deleted topic, producers with windows on several
// queues, an idle producer, and a clock.
func richState(t *testing.T) *State {
	t.Helper()
	s := New()
	mustCreate(t, s, 1, Config{Name: "a", Queues: 3, RetentionMs: 5000, RetentionBytes: 1 << 20})
	mustCreate(t, s, 2, Config{Name: "b.c-d_e", Queues: 1, MaxMessageBytes: 4096})
	mustCreate(t, s, 3, Config{Name: "gone", Queues: 2})
	p1 := mustInit(t, s, 4, 1000)
	mustInit(t, s, 5, 2000)
	for i := range 12 {
		idx := uint64(6 + i)
		s.Produce(idx, ProduceCmd{TimeMs: 3000 + int64(i), Parts: []Part{
			{Topic: "a", Queue: i % 3, Batch: wireBatch(t, wire.Producer{ID: p1, Sequence: uint64(i / 3 * 2)}, 2, int64(i))},
			{Topic: "b.c-d_e", Batch: wireBatch(t, wire.Producer{}, i%4+1, 5000-int64(i))},
			{Topic: "gone", Queue: 1, Batch: wireBatch(t, wire.Producer{ID: p1, Sequence: uint64(i)}, 1, 0)},
		}})
	}
	if err := s.Delete("gone"); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSnapshotRestoresBitIdentically(t *testing.T) {
	s := richState(t)
	r := restored(t, s)
	// The restored state goes on exactly as the original.
	pa, pr := mustInit(t, s, 30, 500), mustInit(t, r, 30, 500)
	cmd := ProduceCmd{TimeMs: 9000, Parts: []Part{
		{Topic: "a", Queue: 1, Batch: wireBatch(t, wire.Producer{ID: 1, Sequence: 8}, 2, 9000)},
		{Topic: "a", Queue: 2, Batch: wireBatch(t, wire.Producer{ID: 1, Sequence: 4}, 2, 9000)},
		{Topic: "b.c-d_e", Batch: wireBatch(t, wire.Producer{ID: pa, Sequence: 0}, 1, 9000)},
	}}
	if ra, rr := s.Produce(31, cmd), r.Produce(31, cmd); pa != pr || !sameResults(ra, rr) {
		t.Fatalf("after restore: %d %+v; original: %d %+v", pr, rr, pa, ra)
	}
	if !bytes.Equal(encoded(s), encoded(r)) {
		t.Fatal("restored state diverged")
	}
}

func TestDecodeReplacesTheState(t *testing.T) {
	s := New()
	mustCreate(t, s, 1, Config{Name: "old", Queues: 1})
	mustInit(t, s, 2, 99)
	want := encoded(richState(t))
	if err := s.Decode(enc.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup("old"); err == nil {
		t.Fatal("a topic not in the snapshot survived")
	}
	if got := encoded(s); !bytes.Equal(got, want) {
		t.Fatal("decoded state encodes differently")
	}
}

// craft encodes a hand-made snapshot.
func craft(sn *Snap) []byte {
	var w enc.Writer
	sn.Encode(&w)
	return w.B
}

func TestDecodeRefusesBadInput(t *testing.T) {
	good := encoded(richState(t))
	topic := snapTopic{config: Config{Name: "x", Queues: 1}, queues: []snapQueue{{}}}
	var huge enc.Writer
	huge.Varint(0)
	huge.Uvarint(0)
	huge.Uvarint(1 << 60)
	for _, tc := range []struct {
		name  string
		input []byte
	}{
		{"empty", nil},
		{"one byte", good[:1]},
		{"all but the last byte", good[:len(good)-1]},
		{"a trailing byte", append(append([]byte(nil), good...), 0)},
		{"an unending varint", bytes.Repeat([]byte{0xff}, 20)},
		{"a topic twice", craft(&Snap{topics: []snapTopic{topic, topic}})},
		{"fewer queues than the config says", craft(&Snap{topics: []snapTopic{{config: Config{Name: "x", Queues: 2}, queues: []snapQueue{{}}}}})},
		{"more queues than the config says", craft(&Snap{topics: []snapTopic{{config: Config{Name: "x", Queues: 1}, queues: []snapQueue{{}, {}}}}})},
		{"more than MaxQueues", craft(&Snap{topics: []snapTopic{{config: Config{Name: "x", Queues: MaxQueues + 1}, queues: make([]snapQueue, MaxQueues+1)}}})},
		{"a count larger than the input", huge.B},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkRefused(t, tc.input)
		})
	}
	t.Run("every truncation", func(t *testing.T) {
		for n := range len(good) {
			checkRefused(t, good[:n])
		}
	})
}

// checkRefused decodes input into a non-empty state and fails unless
// Decode returns an error and leaves the state as it was.
func checkRefused(t *testing.T, input []byte) {
	t.Helper()
	s := New()
	mustCreate(t, s, 1, Config{Name: "keep", Queues: 2})
	s.Produce(2, ProduceCmd{TimeMs: 7, Parts: []Part{{Topic: "keep", Queue: 1, Batch: wireBatch(t, wire.Producer{}, 1, 7)}}})
	before := encoded(s)
	if err := s.Decode(enc.NewReader(input)); err == nil {
		t.Fatalf("Decode accepted %d bytes %x", len(input), input)
	}
	if !bytes.Equal(before, encoded(s)) {
		t.Fatal("a refused snapshot changed the state")
	}
	if _, err := s.Lookup("keep"); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeGarbage(t *testing.T) {
	// Random bytes and random corruptions of a good snapshot: Decode never
	// panics, and what it refuses leaves the state unchanged; what it
	// accepts encodes again to a snapshot it accepts.
	seed := uint64(rand.Int64())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	good := encoded(richState(t))
	for i := range 300 {
		var in []byte
		if i%2 == 0 {
			in = make([]byte, rng.IntN(64))
			for j := range in {
				in[j] = byte(rng.UintN(256))
			}
		} else {
			in = append([]byte(nil), good...)
			for range rng.IntN(4) + 1 {
				in[rng.IntN(len(in))] = byte(rng.UintN(256))
			}
		}
		s := richState(t)
		before := encoded(s)
		if err := s.Decode(enc.NewReader(in)); err != nil {
			if !bytes.Equal(before, encoded(s)) {
				t.Fatalf("input %x: refused, but the state changed", in)
			}
			continue
		}
		restored(t, s)
	}
}
