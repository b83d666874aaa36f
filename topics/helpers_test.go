package topics

import (
	"bytes"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/internal/enc"
	"github.com/ledgermq/ledgermq/wire"
)

func mustCreate(t testing.TB, s *State, index uint64, c Config) *Topic {
	t.Helper()
	top, err := s.Create(index, c)
	if err != nil {
		t.Fatalf("create %s: %v", c.Name, err)
	}
	return top
}

func mustInit(t testing.TB, s *State, _ uint64, timeMs int64) uint64 {
	t.Helper()
	id, err := s.InitProducer(timeMs)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// roundTrip encodes s's snapshot and decodes it into a new state.
func roundTrip(t testing.TB, s *State) *State {
	t.Helper()
	r := New()
	if err := r.Decode(enc.NewReader(encoded(s))); err != nil {
		t.Fatal(err)
	}
	return r
}

// encoded is s's snapshot in its binary form.
func encoded(s *State) []byte {
	var w enc.Writer
	s.Snapshot().Encode(&w)
	return w.B
}

// restored round-trips s's snapshot, checks that the restored state
// encodes to the same bytes, and returns it.
func restored(t testing.TB, s *State) *State {
	t.Helper()
	r := roundTrip(t, s)
	if a, b := encoded(s), encoded(r); !bytes.Equal(a, b) {
		t.Fatalf("snapshot round trip changed the state:\n%x\n%x", a, b)
	}
	return r
}

// wireBatch encodes n records stamped atMs for producer p (a zero p for a
// plain batch).
func wireBatch(t testing.TB, p wire.Producer, n int, atMs int64) []byte {
	t.Helper()
	at := time.UnixMilli(atMs)
	msgs := make([]wire.Message, n)
	for i := range msgs {
		msgs[i] = wire.Message{Value: []byte{byte(i)}, Timestamp: at}
	}
	b, err := wire.Encode(msgs, wire.CodecNone, p, 1, at)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// queueOf returns queue q of topic name.
func queueOf(t testing.TB, s *State, name string, q int) *Queue {
	t.Helper()
	top, err := s.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	qu, err := top.Queue(q)
	if err != nil {
		t.Fatal(err)
	}
	return qu
}

// allRefs returns every stored batch reference of a queue.
func allRefs(q *Queue) []BatchRef {
	refs, _ := q.Find(0, Horizon{}, 1<<30)
	return refs
}
