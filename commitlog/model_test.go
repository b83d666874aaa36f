package commitlog

import (
	"errors"
	"flag"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

var modelSeed = flag.Uint64("commitlog.seed", 0, "seed for TestModel (0: time-based)")

// TestModel runs random sequences of Append, TruncateAfter, DeleteBefore,
// Reset and close-and-reopen against the log and against a trivial
// in-memory model, comparing them after every step. It prints its seed;
// rerun a failure with -commitlog.seed=N.
func TestModel(t *testing.T) {
	seed := *modelSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -commitlog.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	steps := 700
	if testing.Short() {
		steps = 200
	}
	for _, policy := range []SyncPolicy{SyncEveryAppend, SyncNever, SyncInterval} {
		t.Run(policy.String(), func(t *testing.T) {
			runModel(t, rng, policy, steps)
		})
	}
}

// model is the reference: entries first..first+len(ents)-1.
type model struct {
	first uint64
	ents  []Entry
}

func (m *model) last() uint64 { return m.first + uint64(len(m.ents)) - 1 }

func randomEntry(rng *rand.Rand, index uint64) Entry {
	e := Entry{Index: index, Term: rng.Uint64N(5) + 1, Type: uint8(rng.IntN(5))}
	switch rng.IntN(10) {
	case 0: // empty payload
	case 1:
		e.Data = make([]byte, 1500+rng.IntN(3000)) // about a segment
	default:
		e.Data = make([]byte, rng.IntN(300))
	}
	for i := range e.Data {
		e.Data[i] = byte(rng.Uint32())
	}
	if len(e.Data) == 0 {
		e.Data = nil
	}
	if rng.IntN(3) == 0 {
		e.Extensions = []byte{byte(rng.Uint32()), 1, 2}
	}
	if rng.IntN(4) != 0 {
		e.AppendedAt = time.Unix(1700000000+int64(index), rng.Int64N(1e9)).UTC()
	}
	return e
}

func runModel(t *testing.T, rng *rand.Rand, policy SyncPolicy, steps int) {
	dir := t.TempDir()
	opts := testOptions()
	opts.Sync = policy
	opts.SyncInterval = time.Millisecond
	l := mustOpen(t, dir, opts)
	defer func() { l.Close() }()
	m := &model{first: 1}
	for step := 0; step < steps; step++ {
		switch op := rng.IntN(100); {
		case op < 55:
			n := 1 + rng.IntN(20)
			batch := make([]Entry, n)
			for i := range batch {
				batch[i] = randomEntry(rng, m.last()+1+uint64(i))
			}
			if err := l.Append(batch); err != nil {
				t.Fatalf("step %d: Append: %v", step, err)
			}
			m.ents = append(m.ents, batch...)
		case op < 65:
			if len(m.ents) == 0 {
				continue
			}
			at := m.first - 1 + rng.Uint64N(uint64(len(m.ents))+1)
			if err := l.TruncateAfter(at); err != nil {
				t.Fatalf("step %d: TruncateAfter(%d): %v", step, at, err)
			}
			m.ents = m.ents[:at+1-m.first]
		case op < 72:
			at := m.first + rng.Uint64N(uint64(len(m.ents))+2)
			if _, err := l.DeleteBefore(at); err != nil {
				t.Fatalf("step %d: DeleteBefore(%d): %v", step, at, err)
			}
			// The log decides segment boundaries; the model follows it,
			// checking it only dropped a prefix below at.
			nf := l.FirstIndex()
			if nf < m.first || (nf > at && nf > m.first) || nf > m.last()+1 {
				t.Fatalf("step %d: DeleteBefore(%d) moved first from %d to %d (last %d)", step, at, m.first, nf, m.last())
			}
			m.ents = m.ents[nf-m.first:]
			m.first = nf
		case op < 74:
			next := m.last() + 1 + rng.Uint64N(50)
			if err := l.Reset(next); err != nil {
				t.Fatalf("step %d: Reset(%d): %v", step, next, err)
			}
			m.first, m.ents = next, nil
		case op < 84:
			if err := l.Close(); err != nil {
				t.Fatalf("step %d: Close: %v", step, err)
			}
			l = mustOpen(t, dir, opts)
		default:
			if len(m.ents) == 0 {
				continue
			}
			from := m.first + rng.Uint64N(uint64(len(m.ents)))
			got, err := l.ReadRange(from, rng.IntN(8000))
			if err != nil {
				t.Fatalf("step %d: ReadRange(%d): %v", step, from, err)
			}
			for k, e := range got {
				if !equalEntry(e, m.ents[from-m.first+uint64(k)]) {
					t.Fatalf("step %d: ReadRange(%d)[%d] differs", step, from, k)
				}
			}
		}
		compareModel(t, step, l, m)
	}
}

func compareModel(t *testing.T, step int, l *Log, m *model) {
	t.Helper()
	if l.FirstIndex() != m.first || l.LastIndex() != m.last() {
		t.Fatalf("step %d: log [%d, %d], model [%d, %d]", step, l.FirstIndex(), l.LastIndex(), m.first, m.last())
	}
	// Spot-check ends and a few entries; a full check every 50 steps.
	check := func(i uint64) {
		e, err := l.Read(i)
		if err != nil {
			t.Fatalf("step %d: Read(%d): %v", step, i, err)
		}
		if !equalEntry(e, m.ents[i-m.first]) {
			t.Fatalf("step %d: Read(%d) = %+v, want %+v", step, i, e, m.ents[i-m.first])
		}
	}
	if len(m.ents) == 0 {
		if _, err := l.Read(m.first); !errors.Is(err, ErrAfterLast) {
			t.Fatalf("step %d: Read on empty log: %v", step, err)
		}
		return
	}
	if step%50 == 0 {
		for i := m.first; i <= m.last(); i++ {
			check(i)
		}
		return
	}
	check(m.first)
	check(m.last())
	check(m.first + uint64(len(m.ents))/2)
}

// TestConcurrentReadersAndGroupCommit runs appenders, which share fsyncs,
// beside readers that must only ever see complete entries.
func TestConcurrentReadersAndGroupCommit(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOptions())
	defer l.Close()
	const writers, perWriter = 4, 60
	// Appends must be at LastIndex+1, so writers choose their index under
	// the writer lock but wait for durability concurrently, as Append does.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 16)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				l.wmu.Lock()
				next := l.LastIndex() + 1
				seq, err := l.appendLocked(entries(next, next+2))
				l.wmu.Unlock()
				if err == nil {
					err = l.syncer.waitDurable(seq)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var rwg sync.WaitGroup
	for r := 0; r < 3; r++ {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				last := l.LastIndex()
				if last == 0 {
					continue
				}
				got, err := l.ReadRange(1+last/2, 2000)
				if err != nil {
					errs <- err
					return
				}
				for k, e := range got {
					if !equalEntry(e, entry(1+last/2+uint64(k))) {
						errs <- errors.New("reader saw a wrong entry")
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	rwg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if want := uint64(writers * perWriter * 3); l.LastIndex() != want {
		t.Fatalf("LastIndex %d, want %d", l.LastIndex(), want)
	}
	checkContents(t, l, 1, l.LastIndex())
}

func TestRetentionIndex(t *testing.T) {
	o := testOptions()
	o.Retention = Retention{MaxBytes: 100 << 10}
	l := mustOpen(t, t.TempDir(), o)
	defer l.Close()
	base := time.Unix(1700000000, 0)
	// Entries 1..400, AppendedAt one second apart.
	for i := uint64(1); i <= 400; i += 20 {
		batch := entries(i, i+19)
		for k := range batch {
			batch[k].AppendedAt = base.Add(time.Duration(batch[k].Index) * time.Second)
		}
		if err := l.Append(batch); err != nil {
			t.Fatal(err)
		}
	}
	before := l.Stats()
	cut := l.RetentionIndex(base.Add(400 * time.Second))
	if _, err := l.DeleteBefore(cut); err != nil {
		t.Fatal(err)
	}
	after := l.Stats()
	if after.Bytes >= before.Bytes {
		t.Fatalf("size retention: %d bytes before, %d after", before.Bytes, after.Bytes)
	}
	if after.Bytes > 100<<10 {
		t.Fatalf("log still over the limit after retention: %d", after.Bytes)
	}
	// It removes only what it must: with the last removed segment back the
	// log would be over the limit.
	if after.Bytes+o.SegmentSize <= 100<<10 {
		t.Fatalf("size retention removed too much: %d bytes left", after.Bytes)
	}
	if after.FirstIndex < 100 {
		t.Fatalf("size retention left first index %d", after.FirstIndex)
	}

	// Age: entries older than 100 s at now=base+400s are those below ~300.
	l.opts.Retention = Retention{MaxAge: 100 * time.Second}
	cut = l.RetentionIndex(base.Add(400 * time.Second))
	if _, err := l.DeleteBefore(cut); err != nil {
		t.Fatal(err)
	}
	first := l.FirstIndex()
	// Entry 299 (AppendedAt base+299s) is older than 100 s; a segment
	// holding only entries below 300 must be gone, and the segment holding
	// entry 300 must stay.
	if first > 300 || first < 280 {
		t.Fatalf("age retention left first index %d", first)
	}
	if e, err := l.Read(first); err != nil {
		t.Fatal(err)
	} else if e.Index != first {
		t.Fatalf("read %d got %d", first, e.Index)
	}
	// The active segment is never eligible.
	l.opts.Retention = Retention{MaxAge: time.Nanosecond, MaxBytes: 1}
	if _, err := l.DeleteBefore(l.RetentionIndex(base.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if l.Stats().Segments != 1 || l.LastIndex() != 400 {
		t.Fatalf("retention removed the active segment: %+v", l.Stats())
	}
}
