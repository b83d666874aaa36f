package topics

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/ledgermq/ledgermq/wire"
)

// sent is an idempotent batch the window fixture stored.
type sent struct {
	seq   uint64
	count uint32
	base  uint64
}

// windowFixture creates topic "t" (2 queues), stores a plain batch of 5
// records in t/0 and then ten batches of producer pid (1, 2, 3, 1, ...
// records: 19 in all), so t/0's next offset is 24 and pid's next sequence
// 19.
func windowFixture(t *testing.T) (s *State, pid uint64, batches []sent) {
	t.Helper()
	s = New()
	mustCreate(t, s, 1, Config{Name: "t", Queues: 2})
	pid = mustInit(t, s, 2, 1000)
	s.Produce(3, ProduceCmd{TimeMs: 1000, Parts: []Part{{Topic: "t", Batch: wireBatch(t, wire.Producer{}, 5, 1000)}}})
	var seq uint64
	for i := range 10 {
		n := i%3 + 1
		r := s.Produce(uint64(4+i), ProduceCmd{TimeMs: 1000, Parts: []Part{{Topic: "t", Batch: wireBatch(t, wire.Producer{ID: pid, Sequence: seq}, n, 1000)}}})
		if r[0].Err != nil || r[0].Duplicate {
			t.Fatalf("fixture batch %d: %+v", i, r[0])
		}
		batches = append(batches, sent{seq, uint32(n), r[0].BaseOffset})
		seq += uint64(n)
	}
	return s, pid, batches
}

func TestIdempotenceWindow(t *testing.T) {
	type want struct {
		res    ProduceResult // Err is compared with errors.Is
		stored bool
	}
	idem := func(t *testing.T, pid, seq uint64, n, queue int) Part {
		return Part{Topic: "t", Queue: queue, Batch: wireBatch(t, wire.Producer{ID: pid, Sequence: seq}, n, 1000)}
	}
	type tcase struct {
		name  string
		prep  func(t *testing.T, s *State)
		parts func(t *testing.T, pid uint64, b []sent) []Part
		want  []want
	}
	cases := []tcase{
		{name: "next in order", parts: func(t *testing.T, pid uint64, b []sent) []Part {
			return []Part{idem(t, pid, 19, 2, 0)}
		}, want: []want{{ProduceResult{BaseOffset: 24, Count: 2}, true}}},
		{name: "two in order in one command", parts: func(t *testing.T, pid uint64, b []sent) []Part {
			return []Part{idem(t, pid, 19, 2, 0), idem(t, pid, 21, 1, 0)}
		}, want: []want{{ProduceResult{BaseOffset: 24, Count: 2}, true}, {ProduceResult{BaseOffset: 26, Count: 1}, true}}},
		{name: "a resend in the command that stored it", parts: func(t *testing.T, pid uint64, b []sent) []Part {
			return []Part{idem(t, pid, 19, 2, 0), idem(t, pid, 19, 2, 0)}
		}, want: []want{{ProduceResult{BaseOffset: 24, Count: 2}, true}, {ProduceResult{BaseOffset: 24, Count: 2, Duplicate: true}, false}}},
		{name: "resend of the batch 9 back, older than the window", parts: func(t *testing.T, pid uint64, b []sent) []Part {
			return []Part{idem(t, pid, b[1].seq, int(b[1].count), 0)}
		}, want: []want{{ProduceResult{Err: ErrDuplicateSequence}, false}}},
		{name: "resend of the first batch", parts: func(t *testing.T, pid uint64, b []sent) []Part {
			return []Part{idem(t, pid, 0, 1, 0)}
		}, want: []want{{ProduceResult{Err: ErrDuplicateSequence}, false}}},
		{name: "resend with another record count", parts: func(t *testing.T, pid uint64, b []sent) []Part {
			return []Part{idem(t, pid, b[9].seq, int(b[9].count)+1, 0)}
		}, want: []want{{ProduceResult{Err: ErrDuplicateSequence}, false}}},
		{name: "sequence inside a remembered batch", parts: func(t *testing.T, pid uint64, b []sent) []Part {
			return []Part{idem(t, pid, b[8].seq+1, 1, 0)}
		}, want: []want{{ProduceResult{Err: ErrDuplicateSequence}, false}}},
		{name: "gap of one", parts: func(t *testing.T, pid uint64, b []sent) []Part {
			return []Part{idem(t, pid, 20, 1, 0)}
		}, want: []want{{ProduceResult{Err: ErrOutOfOrderSeq}, false}}},
		{name: "far ahead", parts: func(t *testing.T, pid uint64, b []sent) []Part {
			return []Part{idem(t, pid, 1<<40, 1, 0)}
		}, want: []want{{ProduceResult{Err: ErrOutOfOrderSeq}, false}}},
		{name: "another queue starts at sequence 0", parts: func(t *testing.T, pid uint64, b []sent) []Part {
			return []Part{idem(t, pid, 0, 3, 1)}
		}, want: []want{{ProduceResult{BaseOffset: 0, Count: 3}, true}}},
		{name: "another queue not at sequence 0", parts: func(t *testing.T, pid uint64, b []sent) []Part {
			return []Part{idem(t, pid, 19, 1, 1)}
		}, want: []want{{ProduceResult{Err: ErrOutOfOrderSeq}, false}}},
		{name: "unknown producer", parts: func(t *testing.T, pid uint64, b []sent) []Part {
			return []Part{idem(t, pid+1, 0, 1, 0)}
		}, want: []want{{ProduceResult{Err: ErrUnknownProducer}, false}}},
		{name: "a recreated topic starts sequences afresh", prep: func(t *testing.T, s *State) {
			if err := s.Delete("t"); err != nil {
				t.Fatal(err)
			}
			mustCreate(t, s, 50, Config{Name: "t", Queues: 2})
		}, parts: func(t *testing.T, pid uint64, b []sent) []Part {
			return []Part{idem(t, pid, 0, 1, 0), idem(t, pid, 19, 1, 1)}
		}, want: []want{{ProduceResult{BaseOffset: 0, Count: 1}, true}, {ProduceResult{Err: ErrOutOfOrderSeq}, false}}},
		{name: "a new producer has its own sequences", prep: func(t *testing.T, s *State) {
			mustInit(t, s, 50, 1000)
		}, parts: func(t *testing.T, pid uint64, b []sent) []Part {
			return []Part{idem(t, pid+1, 0, 1, 0), idem(t, pid, 19, 1, 0)}
		}, want: []want{{ProduceResult{BaseOffset: 24, Count: 1}, true}, {ProduceResult{BaseOffset: 25, Count: 1}, true}}},
	}
	// Each of the last 8 batches resent is answered with its offsets.
	for back := 1; back <= recentBatches; back++ {
		cases = append(cases, tcase{name: fmt.Sprintf("resend of the batch %d back", back),
			parts: func(t *testing.T, pid uint64, b []sent) []Part {
				x := b[len(b)-back]
				return []Part{idem(t, pid, x.seq, int(x.count), 0)}
			}, want: []want{{ProduceResult{Count: 0, Duplicate: true}, false}}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, pid, b := windowFixture(t)
			if tc.prep != nil {
				tc.prep(t, s)
			}
			r := restored(t, s)
			parts := tc.parts(t, pid, b)
			before := encoded(s)
			got := s.Produce(100, ProduceCmd{TimeMs: 1000, Parts: parts})
			if again := r.Produce(100, ProduceCmd{TimeMs: 1000, Parts: parts}); !sameResults(got, again) {
				t.Fatalf("a restored state answered %+v, the original %+v", again, got)
			}
			if !bytes.Equal(encoded(s), encoded(r)) {
				t.Fatal("a restored state differs after the same command")
			}
			anyStored := false
			for i, w := range tc.want {
				g := got[i]
				if w.res.Duplicate && w.res.Count == 0 { // a resend of batch k back: its original result
					hdr, _ := wire.ParseHeader(parts[i].Batch)
					for _, x := range b {
						if x.seq == hdr.Sequence {
							w.res = ProduceResult{BaseOffset: x.base, Count: x.count, Duplicate: true}
						}
					}
				}
				if !errors.Is(g.Err, w.res.Err) || (w.res.Err == nil && g != w.res) {
					t.Fatalf("part %d: %+v, want %+v", i, g, w.res)
				}
				anyStored = anyStored || w.stored
			}
			if after := encoded(s); !anyStored && !bytes.Equal(before, after) {
				t.Fatal("no batch stored, yet the state changed")
			}
			restored(t, s)
		})
	}
}

func sameResults(a, b []ProduceResult) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.BaseOffset != y.BaseOffset || x.Count != y.Count || x.Duplicate != y.Duplicate || (x.Err == nil) != (y.Err == nil) ||
			x.Err != nil && x.Err.Error() != y.Err.Error() {
			return false
		}
	}
	return true
}

func TestProducerExpiry(t *testing.T) {
	// Ops: init a producer (ids 1, 2, ... in order), produce one record
	// (producer 0: a plain batch), or restore the state from its snapshot.
	// Every command carries the leader's clock ms.
	type op struct {
		kind     string // "init", "produce", "restore"
		ms       int64
		producer int
	}
	const ttl = ProducerTTL
	for _, tc := range []struct {
		name  string
		ops   []op
		alive map[int]bool // producer -> still known at the end
	}{
		{"an init one TTL later keeps it",
			[]op{{"init", 1000, 0}, {"init", 1000 + ttl, 0}}, map[int]bool{1: true, 2: true}},
		{"an init one ms past the TTL forgets it",
			[]op{{"init", 1000, 0}, {"init", 1001 + ttl, 0}}, map[int]bool{1: false, 2: true}},
		{"a produce refreshes it",
			[]op{{"init", 1000, 0}, {"produce", 1000 + ttl/2, 1}, {"init", 1001 + ttl, 0}}, map[int]bool{1: true, 2: true}},
		{"idle for a TTL after its last produce",
			[]op{{"init", 1000, 0}, {"produce", 1000 + ttl/2, 1}, {"init", 1001 + ttl/2 + ttl, 0}}, map[int]bool{1: false, 2: true}},
		{"another producer's batch does not refresh it",
			[]op{{"init", 1000, 0}, {"init", 1000, 0}, {"produce", 1000 + ttl/2, 2}, {"init", 1001 + ttl, 0}}, map[int]bool{1: false, 2: true, 3: true}},
		{"expiry waits for the next init",
			[]op{{"init", 1000, 0}, {"produce", 1001 + ttl, 0}}, map[int]bool{1: true}},
		{"a leader whose clock is behind stamps the newest time seen",
			[]op{{"init", 5000, 0}, {"init", 0, 0}, {"init", 5000 + ttl, 0}}, map[int]bool{1: true, 2: true, 3: true}},
		{"a produce's clock counts too",
			[]op{{"init", 1000, 0}, {"produce", 9000, 0}, {"init", 0, 0}, {"init", 9000 + ttl, 0}}, map[int]bool{1: false, 2: true, 3: true}},
		{"a produce with an older clock does not age it",
			[]op{{"init", 5000, 0}, {"produce", 10, 1}, {"init", 5000 + ttl, 0}}, map[int]bool{1: true, 2: true}},
		{"the clock survives a snapshot",
			[]op{{"init", 5000, 0}, {"restore", 0, 0}, {"init", 0, 0}, {"restore", 0, 0}, {"init", 5000 + ttl, 0}}, map[int]bool{1: true, 2: true, 3: true}},
		{"the clock never goes back across leaders",
			[]op{{"init", 1000, 0}, {"init", 1000 + ttl, 0}, {"init", 500, 0}, {"init", 1001 + ttl, 0}}, map[int]bool{1: false, 2: true, 3: true, 4: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			mustCreate(t, s, 1, Config{Name: "t", Queues: 1})
			idx := uint64(2)
			var ids []uint64 // by producer number - 1
			seq := map[uint64]uint64{}
			produce := func(p int, ms int64) ProduceResult {
				var pr wire.Producer
				if p > 0 {
					pr = wire.Producer{ID: ids[p-1], Sequence: seq[ids[p-1]]}
				}
				idx++
				r := s.Produce(idx, ProduceCmd{TimeMs: ms, Parts: []Part{{Topic: "t", Batch: wireBatch(t, pr, 1, 1000)}}})[0]
				if r.Err == nil && p > 0 {
					seq[pr.ID]++
				}
				return r
			}
			for _, o := range tc.ops {
				switch o.kind {
				case "init":
					idx++
					ids = append(ids, mustInit(t, s, idx, o.ms))
				case "produce":
					if r := produce(o.producer, o.ms); r.Err != nil {
						t.Fatalf("produce by %d: %v", o.producer, r.Err)
					}
				case "restore":
					s = restored(t, s)
				}
			}
			s = restored(t, s)
			for p, alive := range tc.alive {
				// A probe at time 0 moves no clock and expires nothing.
				if r := produce(p, 0); (r.Err == nil) != alive || !alive && !errors.Is(r.Err, ErrUnknownProducer) {
					t.Errorf("producer %d: %v, want alive %v", p, r.Err, alive)
				}
			}
		})
	}
}

// lastSeen is a test producer's last activity: clock for the active ones.
func lastSeen(seen func(uint64) int64, active []uint64, id uint64) int64 {
	for _, a := range active {
		if a == id {
			return 1_000_000
		}
	}
	return seen(id)
}

func TestMaxProducersEviction(t *testing.T) {
	// MaxProducers is large: the state is filled directly, then an
	// InitProducer applies the bound. clock stays below the TTL so only
	// the bound evicts.
	const clock = 1_000_000
	for _, tc := range []struct {
		name     string
		n        int                   // producers 1..n remembered
		seen     func(id uint64) int64 // their last activity
		active   []uint64              // producers that produce at clock before the init
		expired  int                   // producers n+1..n+expired, idle past the TTL
		evicted  []uint64
		count    int // producers remembered after the init
		snapshot bool
	}{
		{name: "below the bound nothing goes", n: MaxProducers - 1, seen: func(uint64) int64 { return 1000 },
			count: MaxProducers},
		{name: "the least recently active go", n: MaxProducers,
			seen: func(id uint64) int64 {
				if id == 50_000 {
					return 999
				}
				return 1000 + int64(id)
			}, evicted: []uint64{50_000, 1, evictBatch}, count: MaxProducers - evictBatch},
		{name: "ties go by id", n: MaxProducers, seen: func(uint64) int64 { return 1000 },
			evicted: []uint64{1, evictBatch + 1}, count: MaxProducers - evictBatch, snapshot: true},
		{name: "activity keeps a producer", n: MaxProducers, seen: func(uint64) int64 { return 1000 },
			active: []uint64{1, 2}, evicted: []uint64{3, evictBatch + 3}, count: MaxProducers - evictBatch},
		{name: "over the bound, the oldest go below it", n: MaxProducers + 2,
			seen: func(id uint64) int64 { return 2000 - int64(id%2)*1000 }, evicted: []uint64{1, 3, 5}, count: MaxProducers - evictBatch},
		{name: "expired producers go first", n: MaxProducers - 3, seen: func(uint64) int64 { return 1000 },
			expired: 3, evicted: []uint64{MaxProducers - 2, MaxProducers - 1, MaxProducers}, count: MaxProducers - 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			mustCreate(t, s, 1, Config{Name: "t", Queues: 1})
			total := tc.n + tc.expired
			for id := uint64(1); id <= uint64(total); id++ {
				p := &producerState{LastSeenMs: -ProducerTTL, Queues: map[string]*seqState{}}
				if id <= uint64(tc.n) {
					p.LastSeenMs = tc.seen(id)
				}
				s.producers[id] = p
			}
			s.nextProducer = uint64(total)
			for _, id := range tc.active {
				if r := s.Produce(2, ProduceCmd{TimeMs: clock, Parts: []Part{{Topic: "t", Batch: wireBatch(t, wire.Producer{ID: id}, 1, 1000)}}}); r[0].Err != nil {
					t.Fatal(r[0].Err)
				}
			}
			if tc.snapshot {
				s = restored(t, s)
			}
			if id := mustInit(t, s, 3, clock); id != uint64(total)+1 {
				t.Fatalf("new producer id %d, want %d", id, total+1)
			}
			if len(s.producers) != tc.count {
				t.Fatalf("%d producers remembered, want %d", len(s.producers), tc.count)
			}
			for _, id := range tc.evicted {
				if _, ok := s.producers[id]; ok {
					t.Fatalf("producer %d is still remembered", id)
				}
			}
			// Every producer the bound evicted was less recently active
			// (ties: lower id) than every one it kept.
			before := func(a, b uint64) bool {
				sa, sb := lastSeen(tc.seen, tc.active, a), lastSeen(tc.seen, tc.active, b)
				return sa < sb || sa == sb && a < b
			}
			var newestGone, oldestKept uint64
			for id := uint64(1); id <= uint64(tc.n); id++ {
				if _, ok := s.producers[id]; !ok {
					if newestGone == 0 || before(newestGone, id) {
						newestGone = id
					}
				} else if oldestKept == 0 || before(id, oldestKept) {
					oldestKept = id
				}
			}
			if newestGone != 0 && oldestKept != 0 && before(oldestKept, newestGone) {
				t.Fatalf("producer %d was evicted but the less recently active %d was kept", newestGone, oldestKept)
			}
		})
	}
}
