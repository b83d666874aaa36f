package client

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

var (
	seqSeed = flag.Uint64("seq.seed", 0, "TestSequencerRandom: replay this seed (0: new seeds)")
	seqRuns = flag.Int("seq.runs", 300, "TestSequencerRandom: how many seeds to run")
)

// TestSequencerRandom drives sequencers through random event orders against
// a model broker that de-duplicates as the real one does (topics'
// checkSequence), with random faults: answers lost after or before the
// batch was stored, NOT_LEADER, requests not sent, reordered attempts,
// refusals, producer ids the broker forgets, producer ids and group ids
// that cannot be had, delivery timeouts, and a close at a random moment.
// Replay a failing run with -seq.seed=N.
func TestSequencerRandom(t *testing.T) {
	seeds := []uint64{*seqSeed}
	if *seqSeed == 0 {
		base := uint64(time.Now().UnixNano())
		seeds = seeds[:0]
		for i := range *seqRuns {
			seeds = append(seeds, base+uint64(i))
		}
		t.Logf("seeds %d..%d (replay one with -seq.seed=N)", seeds[0], seeds[len(seeds)-1])
	}
	for _, seed := range seeds {
		if !t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runSequencerRandom(t, seed) }) {
			t.Logf("replay: go test -run TestSequencerRandom ./client -seq.seed=%d", seed)
			return
		}
	}
}

// modelEntry is a batch the model broker stored.
type modelEntry struct {
	b        *batch
	pid, seq uint64
	count    int
	offset   uint64
}

type modelProducer struct {
	started bool
	next    uint64
	recent  []modelEntry
}

// modelBroker stores batches and de-duplicates them by producer id and
// sequence, as topics.State.checkSequence does.
type modelBroker struct {
	producers map[uint64]*modelProducer
	log       []modelEntry
	offset    uint64
	lastPID   uint64
}

func (m *modelBroker) newProducer() uint64 {
	m.lastPID++
	m.producers[m.lastPID] = &modelProducer{}
	return m.lastPID
}

// apply handles an attempt that reaches the broker.
func (m *modelBroker) apply(pid, seq uint64, b *batch) (wire.BatchProduceResponse, error) {
	n := b.count()
	if pid == 0 {
		return m.store(nil, pid, seq, b), nil
	}
	p := m.producers[pid]
	switch {
	case p == nil:
		return wire.BatchProduceResponse{}, errUnknownProducer
	case !p.started && seq == 0, p.started && seq == p.next:
		return m.store(p, pid, seq, b), nil
	case !p.started:
		return wire.BatchProduceResponse{}, errOutOfOrder
	}
	for _, e := range p.recent {
		if e.seq == seq && e.count == n {
			return wire.BatchProduceResponse{BaseOffset: e.offset, Count: uint32(n), Duplicate: true}, nil
		}
	}
	if seq < p.next {
		return wire.BatchProduceResponse{}, errDuplicateSeq
	}
	return wire.BatchProduceResponse{}, errOutOfOrder
}

func (m *modelBroker) store(p *modelProducer, pid, seq uint64, b *batch) wire.BatchProduceResponse {
	e := modelEntry{b: b, pid: pid, seq: seq, count: b.count(), offset: m.offset}
	m.offset += uint64(e.count)
	m.log = append(m.log, e)
	if p != nil {
		p.started, p.next = true, seq+uint64(e.count)
		p.recent = append(p.recent, e)
		if len(p.recent) > MaxInFlightLimit {
			p.recent = p.recent[1:]
		}
	}
	return wire.BatchProduceResponse{BaseOffset: e.offset, Count: uint32(e.count)}
}

// randomRun is one seeded run: the sequencer under test, the model broker,
// the attempts under way and what the invariants need to remember.
type randomRun struct {
	t        *testing.T
	rng      *rand.Rand
	d        *seqDriver
	m        *modelBroker
	plain    bool
	attempts []action // under way, in the order sent
	unknown  map[*batch]bool
	done     []*batch
	lastAck  map[uint64]uint64 // by producer id: the offset of the last acknowledgement
}

func runSequencerRandom(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	plain := rng.IntN(7) == 0
	maxInFlight := 1 + rng.IntN(MaxInFlightLimit)
	r := &randomRun{t: t, rng: rng, d: newSeqDriver(t, !plain, maxInFlight), plain: plain,
		m: &modelBroker{producers: map[uint64]*modelProducer{}}, unknown: map[*batch]bool{}, lastAck: map[uint64]uint64{}}
	r.d.trace = testing.Verbose() && *seqSeed != 0
	r.d.onSend = r.sent
	r.d.onDone = r.completed
	r.d.onPID = func(action) (uint64, error) {
		if rng.IntN(20) == 0 {
			return 0, errUnavailable
		}
		return r.m.newProducer(), nil
	}
	r.d.prepare = func() error {
		switch rng.IntN(200) {
		case 0:
			return errEncode
		case 1, 2, 3, 4:
			return errNotSent // no group id
		}
		return nil
	}
	total := 20 + rng.IntN(80)
	closeAt := -1
	if rng.IntN(8) == 0 {
		closeAt = rng.IntN(total)
	}
	t.Logf("seed %d: idempotent %v, %d in flight, %d batches, close after %d", seed, !plain, maxInFlight, total, closeAt)
	for i := 0; len(r.done) < total; i++ {
		if i > 200_000 {
			t.Fatalf("stalled: %d of %d batches completed, %d attempts under way", len(r.done), total, len(r.attempts))
		}
		if closeAt >= 0 && len(r.d.batches) > closeAt {
			r.d.feed(event{kind: evClose})
			break
		}
		r.randomEvent(total)
	}
	r.check(total, closeAt >= 0)
}

// randomEvent feeds one event: new batches, time, or the outcome of one
// attempt under way (any of them: attempts overtake each other).
func (r *randomRun) randomEvent(total int) {
	d, rng := r.d, r.rng
	switch k := rng.IntN(10); {
	case k < 2 && len(d.batches) < total:
		counts := make([]int, 1+rng.IntN(min(3, total-len(d.batches))))
		for i := range counts {
			counts[i] = 1 + rng.IntN(4)
		}
		d.add(counts...)
	case k < 6 && len(r.attempts) > 0:
		i := rng.IntN(len(r.attempts))
		a := r.attempts[i]
		r.attempts = slices.Delete(r.attempts, i, i+1)
		resp, err := r.deliver(a)
		d.answer(a.batch, resp, err)
	case k == 6 && len(r.m.producers) > 0 && rng.IntN(30) == 0:
		delete(r.m.producers, r.m.lastPID) // the broker forgets the producer
	default:
		d.now = d.now.Add(time.Duration(rng.IntN(40)) * time.Millisecond)
		d.feed(event{kind: evTick})
	}
}

// deliver decides the fate of an attempt: it reaches the broker or not,
// and its answer comes back or not.
func (r *randomRun) deliver(a action) (wire.BatchProduceResponse, error) {
	switch k := r.rng.IntN(100); {
	case k < 5:
		return wire.BatchProduceResponse{}, errNotLeader
	case k < 8:
		return wire.BatchProduceResponse{}, errNotSent
	case k < 11:
		r.unknown[a.batch] = true
		return wire.BatchProduceResponse{}, errUnavailable // not stored
	case k < 12:
		return wire.BatchProduceResponse{}, errTooLarge
	}
	resp, err := r.m.apply(a.pid, a.seq, a.batch)
	if k := r.rng.IntN(100); k < 12 {
		r.unknown[a.batch] = true
		if k < 6 {
			return wire.BatchProduceResponse{}, errAnswerLost
		}
		return wire.BatchProduceResponse{}, errUnavailable
	}
	return resp, err
}

// sent checks every attempt as it starts.
func (r *randomRun) sent(a action) {
	t, b := r.t, a.batch
	if len(r.d.inflight) > r.d.s.cfg.maxInFlight {
		t.Fatalf("%d attempts under way, at most %d allowed", len(r.d.inflight), r.d.s.cfg.maxInFlight)
	}
	if r.plain && r.unknown[b] {
		t.Fatalf("%s resent after an unknown outcome without idempotence", r.d.name[b])
	}
	if !r.plain {
		for _, e := range r.m.log {
			if e.pid != a.pid {
				continue
			}
			if e.b == b && e.seq != a.seq {
				t.Fatalf("%s, stored as (%d, %d), resent with sequence %d under the same producer id", r.d.name[b], e.pid, e.seq, a.seq)
			}
			if e.b != b && a.seq < e.seq+uint64(e.count) && e.seq < a.seq+uint64(b.count()) {
				t.Fatalf("%s sent as (%d, %d), which %s was stored with at (%d, %d)", r.d.name[b], a.pid, a.seq, r.d.name[e.b], e.pid, e.seq)
			}
		}
	}
	r.attempts = append(r.attempts, a)
}

// completed checks every completion as it is reported.
func (r *randomRun) completed(b *batch) {
	t := r.t
	r.done = append(r.done, b)
	if b.state != stateAcked {
		return
	}
	at := slices.IndexFunc(r.m.log, func(e modelEntry) bool { return e.offset == b.resp.BaseOffset })
	if at < 0 || r.m.log[at].b != b {
		t.Fatalf("%s acknowledged at offset %d, where another batch is stored", r.d.name[b], b.resp.BaseOffset)
	}
	// Under one producer id, the acknowledged offsets follow the produce
	// order. (A batch renumbered under a new producer id after a possibly
	// stored attempt may be stored again, after later batches: the
	// documented cost of a producer id renewal.)
	if last, ok := r.lastAck[b.pid]; ok && b.resp.BaseOffset <= last {
		t.Fatalf("%s acknowledged at offset %d under producer id %d, before the batch acknowledged before it (%d)", r.d.name[b], b.resp.BaseOffset, b.pid, last)
	}
	r.lastAck[b.pid] = b.resp.BaseOffset
}

// check verifies the whole run: completions in produce order, each batch
// once; without idempotence nothing stored twice.
func (r *randomRun) check(total int, closed bool) {
	t, d := r.t, r.d
	if !closed && len(r.done) != total {
		t.Fatalf("%d of %d batches completed", len(r.done), total)
	}
	if !slices.Equal(r.done, d.batches) {
		t.Fatalf("completions out of produce order: got %s, want %s", d.names(r.done), d.names(d.batches))
	}
	if r.plain {
		seen := map[*batch]bool{}
		for _, e := range r.m.log {
			if seen[e.b] {
				t.Fatalf("%s stored twice without idempotence", d.name[e.b])
			}
			seen[e.b] = true
		}
	}
}

func (d *seqDriver) names(bs []*batch) []string {
	var s []string
	for _, b := range bs {
		s = append(s, d.name[b])
	}
	return s
}
