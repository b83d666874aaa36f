package topics

import (
	"testing"
	"unsafe"

	"github.com/ledgermq/ledgermq/internal/enc"
	"github.com/ledgermq/ledgermq/wire"
)

// TestPruneTracksRetention: once the log's first index passes batches,
// Prune drops their references, so the index and the snapshot track the
// retained data, not history; offsets, ends, reads and the next produce
// are unchanged.
func TestPruneTracksRetention(t *testing.T) {
	s := New()
	mustCreate(t, s, 1, Config{Name: "p", Queues: 2})
	for i := range 1000 {
		if r := s.Produce(uint64(2+i), ProduceCmd{TimeMs: t0, Parts: []Part{{Topic: "p", Queue: i % 2, Batch: wireBatch(t, wire.Producer{}, 1, t0)}}}); r[0].Err != nil {
			t.Fatal(r[0].Err)
		}
	}
	snapSize := func() int {
		w := &enc.Writer{}
		s.Snapshot().Encode(w)
		return len(w.B)
	}
	before := snapSize()
	q := queueOf(t, s, "p", 0)
	endBefore := q.batches[len(q.batches)-1].End
	if got := s.Prune(902); got != 900 {
		t.Fatalf("pruned %d references, want 900 (entries 2..901)", got)
	}
	if n := len(q.batches); n != 50 || q.batches[0].BaseOffset != 450 || q.batches[n-1].End != endBefore {
		t.Fatalf("queue 0 after pruning: %d batches from offset %d, end %d (was %d)", n, q.batches[0].BaseOffset, q.batches[n-1].End, endBefore)
	}
	after := snapSize()
	if after*5 > before {
		t.Fatalf("snapshot %d bytes after pruning 90%% of the index, %d before", after, before)
	}
	refs, earliest := q.Find(0, Horizon{FirstIndex: 902}, 10)
	if earliest != 450 || len(refs) != 10 || refs[0].BaseOffset != 450 {
		t.Fatalf("read after pruning: earliest %d, %d refs", earliest, len(refs))
	}
	if r := s.Produce(2000, ProduceCmd{TimeMs: t0, Parts: []Part{{Topic: "p", Batch: wireBatch(t, wire.Producer{}, 1, t0)}}}); r[0].BaseOffset != 500 {
		t.Fatalf("produce after pruning got offset %d, want 500", r[0].BaseOffset)
	}
	restored(t, s) // the pruned state snapshots and restores bit-identically
	if s.Prune(902) != 0 {
		t.Fatal("pruning again dropped more")
	}
	t.Logf("index: %d bytes per retained batch reference; snapshot %d -> %d bytes", unsafe.Sizeof(BatchRef{}), before, after)
}
