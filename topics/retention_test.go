package topics

import (
	"testing"

	"github.com/ledgermq/ledgermq/wire"
)

// The retention fixture: queue 0 of topic "r" holds five batches of 1, 2,
// 3, 1 and 2 records (offsets 0, 1, 3, 6, 7; next 9) stored by the
// produce commands at log indexes 10, 12, 14, 16 and 18, their records
// stamped t0, t0+1s, ..., t0+4s.
const t0 = int64(1_700_000_000_000)

var (
	fixtureCounts  = []int{1, 2, 3, 1, 2}
	fixtureBases   = []uint64{0, 1, 3, 6, 7}
	fixtureIndexes = []uint64{10, 12, 14, 16, 18}
)

const fixtureNext = 9

// retentionFixture builds the fixture in a topic created with c (named
// "r", one queue) and returns the state and each batch's size.
func retentionFixture(t *testing.T, c Config) (*State, []int64) {
	t.Helper()
	s := New()
	c.Name, c.Queues = "r", 1
	mustCreate(t, s, 1, c)
	var sizes []int64
	for i, n := range fixtureCounts {
		b := wireBatch(t, wire.Producer{}, n, t0+int64(i)*1000)
		sizes = append(sizes, int64(len(b)))
		if r := s.Produce(fixtureIndexes[i], ProduceCmd{Parts: []Part{{Topic: "r", Batch: b}}}); r[0].Err != nil || r[0].BaseOffset != fixtureBases[i] {
			t.Fatalf("fixture batch %d: %+v", i, r[0])
		}
	}
	return restored(t, s), sizes
}

// sum is the total of the last n sizes.
func sum(sizes []int64, n int) int64 {
	var t int64
	for _, s := range sizes[len(sizes)-n:] {
		t += s
	}
	return t
}

// firstBatch is the position of the fixture batch at offset earliest
// (len for the next offset).
func firstBatch(t *testing.T, earliest uint64) int {
	t.Helper()
	if earliest == fixtureNext {
		return len(fixtureBases)
	}
	for i, b := range fixtureBases {
		if b == earliest {
			return i
		}
	}
	t.Fatalf("earliest %d is no batch's base offset", earliest)
	return 0
}

func TestHorizon(t *testing.T) {
	_, sizes := retentionFixture(t, Config{})
	for _, tc := range []struct {
		name     string
		h        func(sizes []int64) Horizon
		earliest uint64
	}{
		{"no bounds", func([]int64) Horizon { return Horizon{} }, 0},
		{"first index at the first entry", func([]int64) Horizon { return Horizon{FirstIndex: 10} }, 0},
		{"first index at an entry", func([]int64) Horizon { return Horizon{FirstIndex: 14} }, 3},
		{"first index between entries", func([]int64) Horizon { return Horizon{FirstIndex: 13} }, 3},
		{"first index at the last entry", func([]int64) Horizon { return Horizon{FirstIndex: 18} }, 7},
		{"first index past the last entry", func([]int64) Horizon { return Horizon{FirstIndex: 19} }, fixtureNext},
		{"time before every record", func([]int64) Horizon { return Horizon{MinTimeMs: t0 - 1} }, 0},
		{"time equal to a batch's newest record keeps it", func([]int64) Horizon { return Horizon{MinTimeMs: t0 + 2000} }, 3},
		{"time just after a batch's newest record drops it", func([]int64) Horizon { return Horizon{MinTimeMs: t0 + 2001} }, 6},
		{"time after every record", func([]int64) Horizon { return Horizon{MinTimeMs: t0 + 4001} }, fixtureNext},
		{"bytes: one byte keeps the last batch", func([]int64) Horizon { return Horizon{MaxBytes: 1} }, 7},
		{"bytes: the last batch's size", func(s []int64) Horizon { return Horizon{MaxBytes: sum(s, 1)} }, 7},
		{"bytes: one more keeps the batch it reaches into", func(s []int64) Horizon { return Horizon{MaxBytes: sum(s, 1) + 1} }, 6},
		{"bytes: the last two batches", func(s []int64) Horizon { return Horizon{MaxBytes: sum(s, 2)} }, 6},
		{"bytes: the whole queue", func(s []int64) Horizon { return Horizon{MaxBytes: sum(s, 5)} }, 0},
		{"bytes: more than the queue", func(s []int64) Horizon { return Horizon{MaxBytes: sum(s, 5) + 1000} }, 0},
		{"index and time: time is later", func([]int64) Horizon { return Horizon{FirstIndex: 12, MinTimeMs: t0 + 3000} }, 6},
		{"index and time: index is later", func([]int64) Horizon { return Horizon{FirstIndex: 16, MinTimeMs: t0} }, 6},
		{"index and bytes: index is later", func(s []int64) Horizon { return Horizon{FirstIndex: 14, MaxBytes: sum(s, 4)} }, 3},
		{"index and bytes: bytes are later", func(s []int64) Horizon { return Horizon{FirstIndex: 12, MaxBytes: sum(s, 2)} }, 6},
		{"all three: bytes are latest", func(s []int64) Horizon {
			return Horizon{FirstIndex: 10, MinTimeMs: t0 + 1000, MaxBytes: sum(s, 1)}
		}, 7},
		{"all three: time is latest", func(s []int64) Horizon {
			return Horizon{FirstIndex: 12, MinTimeMs: t0 + 3500, MaxBytes: sum(s, 4)}
		}, 7},
		{"all three: nothing left", func(s []int64) Horizon {
			return Horizon{FirstIndex: 19, MinTimeMs: t0, MaxBytes: sum(s, 5)}
		}, fixtureNext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := retentionFixture(t, Config{})
			q := queueOf(t, s, "r", 0)
			h := tc.h(sizes)
			refs, earliest := q.Find(0, h, 100)
			if earliest != tc.earliest {
				t.Fatalf("earliest %d, want %d", earliest, tc.earliest)
			}
			first := firstBatch(t, earliest)
			if len(refs) != len(fixtureBases)-first {
				t.Fatalf("%d refs visible, want %d", len(refs), len(fixtureBases)-first)
			}
			for i, r := range refs {
				if r.BaseOffset != fixtureBases[first+i] {
					t.Fatalf("ref %d at offset %d, want %d", i, r.BaseOffset, fixtureBases[first+i])
				}
			}
			// Reading from below the horizon starts at its first batch.
			if first > 0 && first < len(fixtureBases) {
				if refs, _ := q.Find(fixtureBases[first-1], h, 1); len(refs) != 1 || refs[0].BaseOffset != earliest {
					t.Fatalf("Find below the horizon: %+v", refs)
				}
			}
			if off := q.FindTime(0, h); off != earliest {
				t.Fatalf("FindTime(0) = %d, want %d", off, earliest)
			}
		})
	}
}

func TestFind(t *testing.T) {
	s, _ := retentionFixture(t, Config{})
	q := queueOf(t, s, "r", 0)
	for _, tc := range []struct {
		name   string
		offset uint64
		max    int
		h      Horizon
		want   []uint64 // base offsets of the refs
	}{
		{"from the start", 0, 100, Horizon{}, []uint64{0, 1, 3, 6, 7}},
		{"at most two", 0, 2, Horizon{}, []uint64{0, 1}},
		{"none wanted", 0, 0, Horizon{}, nil},
		{"a batch's first record", 3, 1, Horizon{}, []uint64{3}},
		{"inside a batch", 4, 1, Horizon{}, []uint64{3}},
		{"a batch's last record", 5, 2, Horizon{}, []uint64{3, 6}},
		{"the last batch", 8, 10, Horizon{}, []uint64{7}},
		{"next offset", fixtureNext, 10, Horizon{}, nil},
		{"past next", 100, 10, Horizon{}, nil},
		{"below the horizon", 0, 2, Horizon{FirstIndex: 14}, []uint64{3, 6}},
		{"above the horizon", 7, 2, Horizon{FirstIndex: 14}, []uint64{7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refs, _ := q.Find(tc.offset, tc.h, tc.max)
			if len(refs) != len(tc.want) {
				t.Fatalf("refs %+v, want offsets %v", refs, tc.want)
			}
			for i, r := range refs {
				if r.BaseOffset != tc.want[i] {
					t.Fatalf("refs %+v, want offsets %v", refs, tc.want)
				}
			}
		})
	}
}

// findTimeCase is a FindTime call and the offset it must answer.
type findTimeCase struct {
	name string
	ms   int64
	h    Horizon
	want uint64
}

func TestFindTime(t *testing.T) {
	s, _ := retentionFixture(t, Config{})
	for _, tc := range []findTimeCase{
		{"before every record", 0, Horizon{}, 0},
		{"the first batch's time", t0, Horizon{}, 0},
		{"a batch's time", t0 + 2000, Horizon{}, 3},
		{"between batches", t0 + 2001, Horizon{}, 6},
		{"the last batch's time", t0 + 4000, Horizon{}, 7},
		{"after every record", t0 + 4001, Horizon{}, fixtureNext},
		{"before the horizon", t0, Horizon{FirstIndex: 14}, 3},
		{"inside the horizon", t0 + 3000, Horizon{FirstIndex: 14}, 6},
		{"everything retained away", t0, Horizon{FirstIndex: 100}, fixtureNext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := queueOf(t, s, "r", 0).FindTime(tc.ms, tc.h); got != tc.want {
				t.Fatalf("FindTime(%d) = %d, want %d", tc.ms, got, tc.want)
			}
		})
	}
}

func TestFindTimeUnorderedClocks(t *testing.T) {
	// Producer clocks disagree: FindTime returns the first batch that
	// reaches the time, not the first after an older one.
	s := New()
	mustCreate(t, s, 1, Config{Name: "u", Queues: 1})
	for i, ms := range []int64{t0, t0 + 5000, t0 + 1000, t0 + 6000} {
		s.Produce(uint64(2+i), ProduceCmd{Parts: []Part{{Topic: "u", Batch: wireBatch(t, wire.Producer{}, 1, ms)}}})
	}
	q := queueOf(t, restored(t, s), "u", 0)
	for _, tc := range []struct {
		name string
		ms   int64
		want uint64
	}{
		{"a time an out-of-order batch would match", t0 + 1000, 1},
		{"between the late batches", t0 + 5500, 3},
		{"after all", t0 + 6001, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := q.FindTime(tc.ms, Horizon{}); got != tc.want {
				t.Fatalf("FindTime = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestReaderRetention(t *testing.T) {
	_, sizes := retentionFixture(t, Config{})
	const now = t0 + 4000
	for _, tc := range []struct {
		name      string
		now       int64
		config    Config
		first     uint64 // the log's first index
		horizon   Horizon
		earliest  uint64
		atT0      uint64 // OffsetForTime(t0)
		atT0Plus3 uint64 // OffsetForTime(t0+3000)
	}{
		{"the default retention", now, Config{}, 1, Horizon{FirstIndex: 1, MinTimeMs: now - DefaultRetentionMs}, 0, 0, 6},
		{"log retention", now, Config{}, 13, Horizon{FirstIndex: 13, MinTimeMs: now - DefaultRetentionMs}, 3, 3, 6},
		{"time retention", now, Config{RetentionMs: 1500}, 1, Horizon{FirstIndex: 1, MinTimeMs: now - 1500}, 6, 6, 6},
		{"time retention keeps the newest record", now, Config{RetentionMs: 1}, 1, Horizon{FirstIndex: 1, MinTimeMs: now - 1}, 7, 7, 7},
		{"time retention drops all", now + 2, Config{RetentionMs: 1, RetentionBytes: 1 << 30}, 1,
			Horizon{FirstIndex: 1, MinTimeMs: now + 1, MaxBytes: 1 << 30}, fixtureNext, fixtureNext, fixtureNext},
		{"byte retention", now, Config{RetentionBytes: sizes[4]}, 1, Horizon{FirstIndex: 1, MinTimeMs: now - DefaultRetentionMs, MaxBytes: sizes[4]}, 7, 7, 7},
		{"log and time retention", now, Config{RetentionMs: 3500}, 13, Horizon{FirstIndex: 13, MinTimeMs: now - 3500}, 3, 3, 6},
		{"time and log retention", now, Config{RetentionMs: 2500}, 12, Horizon{FirstIndex: 12, MinTimeMs: now - 2500}, 3, 3, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := retentionFixture(t, tc.config)
			top, _ := s.Lookup("r")
			q := queueOf(t, s, "r", 0)
			r := NewReader(s, &fakeLog{first: tc.first}, clockAt(tc.now))
			if h := r.Horizon(top); h != tc.horizon {
				t.Fatalf("Horizon = %+v, want %+v", h, tc.horizon)
			}
			if rg := r.Range(top, q); rg != (Range{Earliest: tc.earliest, Next: fixtureNext}) {
				t.Fatalf("Range = %+v, want [%d, %d)", rg, tc.earliest, fixtureNext)
			}
			refs, earliest := r.Refs(top, q, 0, 2)
			if earliest != tc.earliest || (earliest < fixtureNext) != (len(refs) > 0) || len(refs) > 0 && refs[0].BaseOffset != earliest {
				t.Fatalf("Refs = %+v, %d; want from %d", refs, earliest, tc.earliest)
			}
			if got := r.OffsetForTime(top, q, t0); got != tc.atT0 {
				t.Fatalf("OffsetForTime(t0) = %d, want %d", got, tc.atT0)
			}
			if got := r.OffsetForTime(top, q, t0+3000); got != tc.atT0Plus3 {
				t.Fatalf("OffsetForTime(t0+3s) = %d, want %d", got, tc.atT0Plus3)
			}
		})
	}
}

func TestReaderEmptyQueue(t *testing.T) {
	s := New()
	top := mustCreate(t, s, 1, Config{Name: "e", Queues: 1})
	q := queueOf(t, s, "e", 0)
	r := NewReader(s, &fakeLog{first: 5}, clockAt(t0))
	if rg := r.Range(top, q); rg != (Range{}) {
		t.Fatalf("Range = %+v", rg)
	}
	if refs, earliest := r.Refs(top, q, 0, 10); refs != nil || earliest != 0 {
		t.Fatalf("Refs = %+v, %d", refs, earliest)
	}
	if off := r.OffsetForTime(top, q, t0); off != 0 {
		t.Fatalf("OffsetForTime = %d", off)
	}
}

// TestStampedZeroHidesNothing: a batch stamped 0 (a producer without a
// clock) between newer ones neither hides them from time retention nor
// makes FindTime skip back; a batch stamped far in the future counts at
// most MaxFutureMs after the leader's clock, so what follows it expires.
func TestStampedZeroHidesNothing(t *testing.T) {
	s := New()
	mustCreate(t, s, 1, Config{Name: "z", Queues: 1})
	now := t0 + 10_000
	for i, ms := range []int64{t0, t0 + 1000, 0, t0 + 2000, t0 + 3000} {
		r := s.Produce(uint64(2+i), ProduceCmd{TimeMs: now, Parts: []Part{{Topic: "z", Batch: wireBatch(t, wire.Producer{}, 1, ms)}}})
		if r[0].Err != nil {
			t.Fatal(r[0].Err)
		}
	}
	q := queueOf(t, restored(t, s), "z", 0)
	// Retention keeping everything from t0 on: all five batches are visible.
	if refs, earliest := q.Find(0, Horizon{MinTimeMs: t0}, 10); earliest != 0 || len(refs) != 5 {
		t.Fatalf("retention from t0: earliest %d, %d batches; want 0 and 5", earliest, len(refs))
	}
	if got := q.FindTime(t0+1500, Horizon{}); got != 3 {
		t.Fatalf("FindTime(t0+1.5s) = %d, want 3", got)
	}

	// A batch from the future: its index time is the leader's clock plus
	// MaxFutureMs, so a later batch does not inherit a time years ahead.
	f := New()
	mustCreate(t, f, 1, Config{Name: "f", Queues: 1})
	f.Produce(2, ProduceCmd{TimeMs: now, Parts: []Part{{Topic: "f", Batch: wireBatch(t, wire.Producer{}, 1, now+365*24*3600*1000)}}})
	f.Produce(3, ProduceCmd{TimeMs: now, Parts: []Part{{Topic: "f", Batch: wireBatch(t, wire.Producer{}, 1, now)}}})
	fq := queueOf(t, f, "f", 0)
	if refs, _ := fq.Find(0, Horizon{MinTimeMs: now + MaxFutureMs + 1}, 10); len(refs) != 0 {
		t.Fatalf("batches past the future bound are still retained: %+v", refs)
	}
}
