package topics

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

func batch(t testing.TB, n int, at time.Time) []byte {
	t.Helper()
	return wireBatch(t, wire.Producer{}, n, at.UnixMilli())
}

func TestApplyAssignsDenseOffsets(t *testing.T) {
	s := New()
	if r, err := s.Create(1, Config{Name: "orders", Queues: 2}); err != nil || r.Queues != 2 {
		t.Fatalf("create: %v, %v", r, err)
	}
	if _, err := s.Create(2, Config{Name: "orders"}); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	if _, err := s.Create(3, Config{Name: "bad name"}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("bad name: %v", err)
	}
	t0 := time.UnixMilli(1_000_000)
	res := s.Produce(4, ProduceCmd{TimeMs: 0, Parts: []Part{
		{Topic: "orders", Queue: 0, Batch: batch(t, 3, t0)},
		{Topic: "orders", Queue: 1, Batch: batch(t, 2, t0)},
		{Topic: "orders", Queue: 5, Batch: batch(t, 1, t0)},
		{Topic: "nope", Queue: 0, Batch: batch(t, 1, t0)},
		{Topic: "orders", Queue: 0, Batch: []byte("junk")},
	}})
	if res[0].BaseOffset != 0 || res[0].Count != 3 || res[1].BaseOffset != 0 || res[1].Count != 2 {
		t.Fatalf("results %+v", res)
	}
	if !errors.Is(res[2].Err, ErrQueueNotFound) || !errors.Is(res[3].Err, ErrTopicNotFound) || !errors.Is(res[4].Err, ErrInvalidArgument) {
		t.Fatalf("errors %+v", res[2:])
	}
	res = s.Produce(5, ProduceCmd{TimeMs: 0, Parts: []Part{{Topic: "orders", Queue: 0, Batch: batch(t, 4, t0.Add(time.Minute))}}})
	if res[0].BaseOffset != 3 {
		t.Fatalf("second batch base %d, want 3", res[0].BaseOffset)
	}
	top, _ := s.Lookup("orders")
	q, _ := top.Queue(0)
	refs, earliest := q.Find(4, Horizon{}, 10)
	if earliest != 0 || len(refs) != 1 || refs[0].BaseOffset != 3 || refs[0].Index != 5 {
		t.Fatalf("Find(4) = %+v, %d", refs, earliest)
	}
	// Retention removed log index 4: queue 0 now starts at offset 3.
	if _, earliest = q.Find(0, Horizon{FirstIndex: 5}, 10); earliest != 3 {
		t.Fatalf("earliest after retention %d", earliest)
	}
	if off := q.FindTime(t0.Add(30*time.Second).UnixMilli(), Horizon{}); off != 3 {
		t.Fatalf("FindTime = %d", off)
	}
	// Topic retention: by time, the first batch (newest record at t0) is
	// out of a horizon starting after t0; by bytes, only the newest batch
	// fits a budget of its own size.
	if _, earliest = q.Find(0, Horizon{MinTimeMs: t0.Add(time.Second).UnixMilli()}, 10); earliest != 3 {
		t.Fatalf("earliest under time retention %d", earliest)
	}
	all, _ := q.Find(0, Horizon{}, 10)
	lastSize := int64(all[1].End - all[0].End)
	if _, earliest = q.Find(0, Horizon{MaxBytes: lastSize}, 10); earliest != 3 {
		t.Fatalf("earliest under byte retention %d", earliest)
	}
	if _, earliest = q.Find(0, Horizon{MaxBytes: lastSize + 1}, 10); earliest != 0 {
		t.Fatalf("earliest under a larger byte budget %d", earliest)
	}
	if err := s.Delete("orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup("orders"); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("lookup after delete: %v", err)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := New()
	mustCreate(t, s, 1, Config{Name: "a", Queues: 3})
	mustCreate(t, s, 2, Config{Name: "b"})
	for i := uint64(3); i < 20; i++ {
		s.Produce(i, ProduceCmd{Parts: []Part{{Topic: "a", Queue: int(i % 3), Batch: batch(t, int(i%4)+1, time.UnixMilli(int64(i)))}}})
	}
	r := roundTrip(t, s)
	if len(r.List()) != 2 {
		t.Fatalf("restored %d topics", len(r.List()))
	}
	ta, _ := s.Lookup("a")
	tb, _ := r.Lookup("a")
	for qi := 0; qi < 3; qi++ {
		q1, _ := ta.Queue(qi)
		q2, _ := tb.Queue(qi)
		n1, _ := q1.Bounds()
		n2, _ := q2.Bounds()
		r1, _ := q1.Find(0, Horizon{}, 100)
		r2, _ := q2.Find(0, Horizon{}, 100)
		if n1 != n2 || len(r1) != len(r2) {
			t.Fatalf("queue %d differs after restore", qi)
		}
		for i := range r1 {
			if r1[i] != r2[i] {
				t.Fatalf("queue %d ref %d differs", qi, i)
			}
		}
	}
}

func FuzzDecodeProduce(f *testing.F) {
	f.Add(AppendProduce(nil, ProduceCmd{Parts: []Part{{Topic: "t", Queue: 1, Batch: []byte("xyz")}}}))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 2, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeProduce(b)
		if err != nil {
			return
		}
		if again := AppendProduce(nil, c); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs")
		}
		for i := range c.Parts {
			if got, err := partAt(b, i); err != nil || !bytes.Equal(got, c.Parts[i].Batch) {
				t.Fatalf("partAt(%d) = %q, %v; want %q", i, got, err, c.Parts[i].Batch)
			}
		}
		New().Produce(1, c) // must not panic
	})
}
