package topics

import (
	"errors"
	"testing"

	"github.com/ledgermq/ledgermq/wire"
)

func idemBatch(t *testing.T, pid, seq uint64, n int) []byte {
	t.Helper()
	return wireBatch(t, wire.Producer{ID: pid, Sequence: seq}, n, 1000)
}

func produceOne(s *State, index uint64, timeMs int64, batch []byte) ProduceResult {
	return s.Produce(index, ProduceCmd{TimeMs: timeMs, Parts: []Part{{Topic: "t", Queue: 0, Batch: batch}}})[0]
}

func TestIdempotentProduce(t *testing.T) {
	s := New()
	mustCreate(t, s, 1, Config{Name: "t", Queues: 1})
	pid := mustInit(t, s, 2, 1000)
	if pid == 0 {
		t.Fatal("producer id 0")
	}
	if r := produceOne(s, 3, 1000, idemBatch(t, pid, 0, 3)); r.Err != nil || r.BaseOffset != 0 || r.Duplicate {
		t.Fatalf("first batch: %+v", r)
	}
	if r := produceOne(s, 4, 1000, idemBatch(t, pid, 3, 2)); r.Err != nil || r.BaseOffset != 3 {
		t.Fatalf("second batch: %+v", r)
	}
	// A resend of the first batch is answered with its original offsets
	// and not stored again.
	if r := produceOne(s, 5, 1000, idemBatch(t, pid, 0, 3)); r.Err != nil || !r.Duplicate || r.BaseOffset != 0 {
		t.Fatalf("resend: %+v", r)
	}
	top, _ := s.Lookup("t")
	q, _ := top.Queue(0)
	if next, _ := q.Bounds(); next != 5 {
		t.Fatalf("queue holds %d records, want 5", next)
	}
	if r := produceOne(s, 6, 1000, idemBatch(t, pid, 9, 1)); !errors.Is(r.Err, ErrOutOfOrderSeq) {
		t.Fatalf("gap: %+v", r)
	}
	if r := produceOne(s, 7, 1000, idemBatch(t, 999, 0, 1)); !errors.Is(r.Err, ErrUnknownProducer) {
		t.Fatalf("unknown producer: %+v", r)
	}
	// Non-idempotent batches are never de-duplicated.
	plain := idemBatch(t, 0, 0, 1)
	produceOne(s, 8, 1000, plain)
	if r := produceOne(s, 9, 1000, plain); r.Duplicate || r.BaseOffset != 6 {
		t.Fatalf("plain resend: %+v", r)
	}

	// The de-duplication state survives a snapshot.
	r2 := roundTrip(t, s)
	if r := produceOne(r2, 10, 1000, idemBatch(t, pid, 3, 2)); !r.Duplicate || r.BaseOffset != 3 {
		t.Fatalf("resend after restore: %+v", r)
	}
	if next := mustInit(t, r2, 11, 1000); next != pid+1 {
		t.Fatalf("producer ids after restore: %d, want %d", next, pid+1)
	}

	// An idle producer expires when another is created after the TTL.
	mustInit(t, s, 12, 1000+ProducerTTL+1)
	if r := produceOne(s, 13, 1000+ProducerTTL+1, idemBatch(t, pid, 5, 1)); !errors.Is(r.Err, ErrUnknownProducer) {
		t.Fatalf("expired producer: %+v", r)
	}
}
