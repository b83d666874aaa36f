package topics

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// errNotProduce is what fakeLog answers for an entry that is not a produce
// command, as the real log (fsm.ProduceLog) does.
var errNotProduce = errors.New("not a produce command")

// fakeLog is a ProduceLog over payloads by index; an index with a nil
// payload holds another command.
type fakeLog struct {
	first    uint64
	payloads map[uint64][]byte
}

func (l *fakeLog) FirstIndex() uint64 { return l.first }

func (l *fakeLog) ProducePayload(index uint64) ([]byte, error) {
	p, ok := l.payloads[index]
	switch {
	case !ok:
		return nil, fmt.Errorf("entry %d not in the log", index)
	case p == nil:
		return nil, fmt.Errorf("%w: entry %d", errNotProduce, index)
	}
	return p, nil
}

func clockAt(ms int64) func() time.Time { return func() time.Time { return time.UnixMilli(ms) } }

func TestReaderBatch(t *testing.T) {
	// Index 5 holds a three-part produce command, index 6 a one-part one,
	// index 7 another command, index 8 bytes that are no produce payload,
	// index 9 a produce payload cut short inside its second part.
	parts := []Part{
		{Topic: "a", Queue: 0, Batch: wireBatch(t, wire.Producer{}, 1, t0)},
		{Topic: "bb", Queue: 3, Batch: wireBatch(t, wire.Producer{}, 4, t0)},
		{Topic: "a", Queue: 1, Batch: wireBatch(t, wire.Producer{ID: 7, Sequence: 2}, 2, t0)},
	}
	multi := AppendProduce(nil, ProduceCmd{TimeMs: t0, Parts: parts})
	log := &fakeLog{payloads: map[uint64][]byte{
		5: multi,
		6: AppendProduce(nil, ProduceCmd{Parts: parts[2:]}),
		7: nil,
		8: []byte("garbage"),
		9: multi[:len(multi)-len(parts[2].Batch)-5],
	}}
	r := NewReader(New(), log, nil)
	for _, tc := range []struct {
		name string
		ref  BatchRef
		want []byte
		err  error
	}{
		{"first part", BatchRef{Index: 5, Part: 0}, parts[0].Batch, nil},
		{"middle part", BatchRef{Index: 5, Part: 1}, parts[1].Batch, nil},
		{"last part", BatchRef{Index: 5, Part: 2}, parts[2].Batch, nil},
		{"single part", BatchRef{Index: 6}, parts[2].Batch, nil},
		{"part past the last", BatchRef{Index: 5, Part: 3}, nil, ErrBadCommand},
		{"part far past the last", BatchRef{Index: 6, Part: 65535}, nil, ErrBadCommand},
		{"not a produce command", BatchRef{Index: 7}, nil, errNotProduce},
		{"garbage payload", BatchRef{Index: 8}, nil, ErrBadCommand},
		{"part before the cut", BatchRef{Index: 9, Part: 0}, parts[0].Batch, nil},
		{"part after the cut", BatchRef{Index: 9, Part: 2}, nil, ErrBadCommand},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Batch(tc.ref)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || got != nil {
					t.Fatalf("Batch = %q, %v; want error %v", got, err, tc.err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("Batch = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := r.Batch(BatchRef{Index: 4}); err == nil {
		t.Fatal("Batch of an entry not in the log: no error")
	}
}

func TestReaderBatchOfStoredRefs(t *testing.T) {
	// Whatever the state stores, the reader gives back the bytes sent, for
	// every queue of a multi-queue command.
	s := New()
	mustCreate(t, s, 1, Config{Name: "a", Queues: 3})
	mustCreate(t, s, 2, Config{Name: "b", Queues: 1})
	log := &fakeLog{payloads: map[uint64][]byte{}}
	sent := map[string][][]byte{}
	for idx := uint64(3); idx < 9; idx++ {
		c := ProduceCmd{TimeMs: int64(idx)}
		for p := 0; p < int(idx%4)+1; p++ {
			pt := Part{Topic: "a", Queue: (int(idx) + p) % 3, Batch: wireBatch(t, wire.Producer{}, p+1, int64(idx))}
			if p == 2 {
				pt.Topic, pt.Queue = "b", 0
			}
			c.Parts = append(c.Parts, pt)
			k := fmt.Sprintf("%s/%d", pt.Topic, pt.Queue)
			sent[k] = append(sent[k], pt.Batch)
		}
		payload := AppendProduce(nil, c)
		dec, err := DecodeProduce(payload)
		if err != nil {
			t.Fatal(err)
		}
		log.payloads[idx] = payload
		for _, res := range s.Produce(idx, dec) {
			if res.Err != nil {
				t.Fatal(res.Err)
			}
		}
	}
	for _, st := range []*State{s, restored(t, s)} {
		r := NewReader(st, log, nil)
		for k, want := range sent {
			var name string
			var qi int
			fmt.Sscanf(k, "%1s/%d", &name, &qi)
			refs := allRefs(queueOf(t, st, name, qi))
			if len(refs) != len(want) {
				t.Fatalf("%s: %d refs, %d batches sent", k, len(refs), len(want))
			}
			for i, ref := range refs {
				if got, err := r.Batch(ref); err != nil || !bytes.Equal(got, want[i]) {
					t.Fatalf("%s batch %d: %v", k, i, err)
				}
			}
		}
	}
}

// TestReaderBytes: a queue's visible bytes are the sizes of its batches
// within the horizon, also once the index's prefix was pruned (then the
// first batch is read from the log to learn its size).
func TestReaderBytes(t *testing.T) {
	s := New()
	mustCreate(t, s, 1, Config{Name: "b", Queues: 1})
	log := &fakeLog{first: 1, payloads: map[uint64][]byte{}}
	var sizes []uint64
	for i := range 10 {
		cmd := ProduceCmd{TimeMs: t0, Parts: []Part{{Topic: "b", Batch: wireBatch(t, wire.Producer{}, 1+i%3, t0)}}}
		log.payloads[uint64(2+i)] = AppendProduce(nil, cmd)
		if r := s.Produce(uint64(2+i), cmd); r[0].Err != nil {
			t.Fatal(r[0].Err)
		}
		sizes = append(sizes, uint64(len(cmd.Parts[0].Batch)))
	}
	sum := func(from int) (n uint64) {
		for _, v := range sizes[from:] {
			n += v
		}
		return n
	}
	r := NewReader(s, log, clockAt(t0))
	tp, _ := s.Lookup("b")
	q := queueOf(t, s, "b", 0)
	if got := r.Bytes(tp, q); got != sum(0) {
		t.Fatalf("all retained: %d bytes, want %d", got, sum(0))
	}
	log.first = 5 // entries 2..4 (batches 0..2) left the log
	if got := r.Bytes(tp, q); got != sum(3) {
		t.Fatalf("log starts at 5: %d bytes, want %d", got, sum(3))
	}
	s.Prune(5) // the index forgets them: batch 3's size comes from the log
	if got := r.Bytes(tp, q); got != sum(3) {
		t.Fatalf("after pruning: %d bytes, want %d", got, sum(3))
	}
	log.first = 12
	if got := r.Bytes(tp, q); got != 0 {
		t.Fatalf("nothing retained: %d bytes", got)
	}
}
