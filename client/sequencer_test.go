package client

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// The sequencer's tests drive it without a network or a clock: seqDriver
// plays the queue loop's part, answering actions from a script (table
// tests) or from a model broker (the randomized test).

var (
	errNotLeader       = &Error{Code: wire.CodeNotLeader, Status: 421, Retriable: true}
	errUnavailable     = &Error{Code: wire.CodeUnavailable, Status: 503, Retriable: true}
	errOutOfOrder      = &Error{Code: wire.CodeOutOfOrderSequence, Status: 409, Retriable: true}
	errDuplicateSeq    = &Error{Code: wire.CodeDuplicateSequence, Status: 409}
	errUnknownProducer = &Error{Code: wire.CodeUnknownProducer, Status: 400}
	errTooLarge        = &Error{Code: wire.CodeMessageTooLarge, Status: 413}
	errTopicGone       = &Error{Code: wire.CodeTopicNotFound, Status: 404}
	errAnswerLost      = &transportError{addr: "b1", sent: true, err: io.ErrUnexpectedEOF}
	errNotSent         = &transportError{addr: "b1", err: errors.New("connection refused")}
	// errEncode, as an answer to actSend, makes the driver step evInvalid.
	errEncode = errors.New("encode: codec failed")
)

const (
	testDeliveryTimeout = time.Second
	testBackoffStep     = 10 * time.Millisecond
)

var seqT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// seqDriver feeds a sequencer and answers its actions as a queue loop
// would, recording them as text.
type seqDriver struct {
	t       testing.TB
	s       *sequencer
	now     time.Time
	batches []*batch // appended, in order
	name    map[*batch]string
	out     []string // the rendered actions of the current step

	nextPID    uint64
	pidAnswers []error // scripted answers to actProducerID (nil: a new id)
	sendErrs   []error // scripted answers to actSend (nil: sent)
	inflight   []*batch
	nextOffset uint64
	done       map[*batch]bool

	// onSend, if set, sees every attempt started (the randomized test).
	onSend func(a action)
	// onPID, if set, answers actProducerID instead of the script.
	onPID func(a action) (uint64, error)
	// prepare, if set, answers actSend instead of the script.
	prepare func() error
	trace   bool // log events and actions
	// onDone, if set, sees every completion.
	onDone func(b *batch)
}

func newSeqDriver(t testing.TB, idempotent bool, maxInFlight int) *seqDriver {
	cfg := seqConfig{topic: "t", queue: 0, idempotent: idempotent, maxInFlight: maxInFlight,
		deliveryTimeout: testDeliveryTimeout, log: slog.New(slog.DiscardHandler),
		backoff: func(n int) time.Duration { return time.Duration(n) * testBackoffStep }}
	return &seqDriver{t: t, s: newSequencer(cfg), now: seqT0, name: map[*batch]string{}, done: map[*batch]bool{}}
}

// feed steps ev and carries out the actions as the queue loop does.
func (d *seqDriver) feed(ev event) {
	ev.now = d.now
	if d.trace {
		d.t.Logf("%v event %d %s err=%v resp=%+v", d.now.Sub(seqT0), ev.kind, d.name[ev.batch], ev.err, ev.resp)
	}
	acts := d.s.step(ev)
	for len(acts) > 0 {
		a := acts[0]
		acts = acts[1:]
		if next, ok := d.do(a); ok {
			next.now = d.now
			if d.trace {
				d.t.Logf("   -> event %d %s err=%v", next.kind, d.name[next.batch], next.err)
			}
			acts = append(d.s.step(next), acts...)
		}
	}
}

func (d *seqDriver) do(a action) (event, bool) {
	if d.trace {
		d.t.Logf("   action %d %s pid=%d seq=%d stale=%d", a.kind, d.name[a.batch], a.pid, a.seq, a.stale)
	}
	switch a.kind {
	case actSend:
		d.out = append(d.out, fmt.Sprintf("send %s pid=%d seq=%d", d.name[a.batch], a.pid, a.seq))
		var err error
		switch {
		case d.prepare != nil:
			err = d.prepare()
		case len(d.sendErrs) > 0:
			err, d.sendErrs = d.sendErrs[0], d.sendErrs[1:]
		}
		switch {
		case err == errEncode:
			return event{kind: evInvalid, batch: a.batch, err: err}, true
		case err != nil:
			return event{kind: evPrepareFailed, batch: a.batch, err: err}, true
		}
		if slices.Contains(d.inflight, a.batch) {
			d.t.Fatalf("%s sent while an attempt of it is in flight", d.name[a.batch])
		}
		d.inflight = append(d.inflight, a.batch)
		if d.onSend != nil {
			d.onSend(a)
		}
		return event{kind: evSent, batch: a.batch}, true
	case actProducerID:
		d.out = append(d.out, fmt.Sprintf("producer-id stale=%d", a.stale))
		pid, err := d.answerPID(a)
		return event{kind: evProducerID, batch: a.batch, pid: pid, err: err}, true
	case actComplete:
		b := a.batch
		if d.done[b] {
			d.t.Fatalf("%s completed twice", d.name[b])
		}
		d.done[b] = true
		if d.onDone != nil {
			d.onDone(b)
		}
		d.out = append(d.out, "done "+d.name[b]+" "+outcome(b))
	case actDropTopic:
		d.out = append(d.out, "drop-topic")
	}
	return event{}, false
}

func (d *seqDriver) answerPID(a action) (uint64, error) {
	if d.onPID != nil {
		return d.onPID(a)
	}
	if len(d.pidAnswers) > 0 {
		err := d.pidAnswers[0]
		d.pidAnswers = d.pidAnswers[1:]
		if err != nil {
			return 0, err
		}
	}
	d.nextPID++
	return d.nextPID, nil
}

func outcome(b *batch) string {
	switch {
	case b.state == stateAcked && b.resp.Duplicate:
		return "dup"
	case b.state == stateAcked:
		return "ok"
	}
	return "failed"
}

// add appends batches of the given record counts, named b1, b2, ...
func (d *seqDriver) add(counts ...int) {
	var bs []*batch
	for _, n := range counts {
		b := &batch{recs: make([]*record, n), created: d.now, seqState: seqState{deadline: d.now.Add(testDeliveryTimeout)}}
		d.batches = append(d.batches, b)
		d.name[b] = fmt.Sprintf("b%d", len(d.batches))
		bs = append(bs, b)
	}
	d.feed(event{kind: evAppend, batches: bs})
}

func (d *seqDriver) batch(name string) *batch {
	for b, n := range d.name {
		if n == name {
			return b
		}
	}
	d.t.Fatalf("no batch %s", name)
	return nil
}

// answer ends the attempt of b under way, then ticks, as the loop does.
func (d *seqDriver) answer(b *batch, resp wire.BatchProduceResponse, err error) {
	i := slices.Index(d.inflight, b)
	if i < 0 {
		d.t.Fatalf("%s has no attempt in flight", d.name[b])
	}
	d.inflight = slices.Delete(d.inflight, i, i+1)
	d.feed(event{kind: evResult, batch: b, resp: resp, err: err})
	d.feed(event{kind: evTick})
}

// seqStep is one step of a table test: an event, and the actions wanted.
type seqStep struct {
	do   func(d *seqDriver)
	want []string
}

func step(do func(d *seqDriver), want ...string) seqStep { return seqStep{do: do, want: want} }

func add(counts ...int) func(*seqDriver) { return func(d *seqDriver) { d.add(counts...) } }

func tick(dt time.Duration) func(*seqDriver) {
	return func(d *seqDriver) {
		d.now = d.now.Add(dt)
		d.feed(event{kind: evTick})
	}
}

func ok(name string) func(*seqDriver) { return acked(name, false) }

func dup(name string) func(*seqDriver) { return acked(name, true) }

func acked(name string, duplicate bool) func(*seqDriver) {
	return func(d *seqDriver) {
		b := d.batch(name)
		resp := wire.BatchProduceResponse{Queue: 0, BaseOffset: d.nextOffset, Count: uint32(b.count()), Duplicate: duplicate}
		d.nextOffset += uint64(b.count())
		d.answer(b, resp, nil)
	}
}

func fails(name string, err error) func(*seqDriver) {
	return func(d *seqDriver) { d.answer(d.batch(name), wire.BatchProduceResponse{}, err) }
}

func closeWith(counts ...int) func(*seqDriver) {
	return func(d *seqDriver) {
		var more []*batch
		for _, n := range counts {
			b := &batch{recs: make([]*record, n)}
			d.batches = append(d.batches, b)
			d.name[b] = fmt.Sprintf("b%d", len(d.batches))
			more = append(more, b)
		}
		d.feed(event{kind: evClose, batches: more})
	}
}

// failedWith checks that a batch failed with an error matching every
// target.
func failedWith(name string, targets ...error) func(t *testing.T, d *seqDriver) {
	return func(t *testing.T, d *seqDriver) {
		b := d.batch(name)
		for _, target := range targets {
			if b.state != stateFailed || !errors.Is(b.err, target) {
				t.Errorf("%s: state %d, error %v; want an error wrapping %v", name, b.state, b.err, target)
			}
		}
	}
}

func TestSequencerTable(t *testing.T) {
	cases := []struct {
		name        string
		plain       bool // idempotence off
		maxInFlight int
		pidAnswers  []error
		sendErrs    []error
		steps       []seqStep
		check       func(t *testing.T, d *seqDriver)
	}{{
		name: "the first batch gets a producer id; sequences follow the record counts",
		steps: []seqStep{
			step(add(2), "producer-id stale=0", "send b1 pid=1 seq=0"),
			step(add(3)), // waits: one batch in flight
			step(ok("b1"), "done b1 ok", "send b2 pid=1 seq=2"),
			step(ok("b2"), "done b2 ok"),
			step(add(1), "send b3 pid=1 seq=5"),
		},
	}, {
		name: "pipelined: completions in order whatever the order of the answers", maxInFlight: 3,
		steps: []seqStep{
			step(add(1, 1, 1, 1), "producer-id stale=0", "send b1 pid=1 seq=0", "send b2 pid=1 seq=1", "send b3 pid=1 seq=2"),
			step(ok("b3")),
			step(ok("b2")),
			step(ok("b1"), "done b1 ok", "done b2 ok", "done b3 ok", "send b4 pid=1 seq=3"),
		},
	}, {
		name: "not applied (NOT_LEADER, request not sent): resent with the same id and sequence, backing off longer each time",
		steps: []seqStep{
			step(add(1), "producer-id stale=0", "send b1 pid=1 seq=0"),
			step(fails("b1", errNotLeader)),
			step(tick(testBackoffStep - time.Millisecond)),
			step(tick(time.Millisecond), "send b1 pid=1 seq=0"),
			step(fails("b1", errNotSent)),
			step(tick(testBackoffStep)),
			step(tick(testBackoffStep), "send b1 pid=1 seq=0"),
			step(ok("b1"), "done b1 ok"),
		},
	}, {
		name: "unknown outcome: resent with the same id and sequence, answered as a duplicate",
		steps: []seqStep{
			step(add(2), "producer-id stale=0", "send b1 pid=1 seq=0"),
			step(fails("b1", errUnavailable)),
			step(tick(testBackoffStep), "send b1 pid=1 seq=0"),
			step(fails("b1", errAnswerLost)),
			step(tick(2*testBackoffStep), "send b1 pid=1 seq=0"),
			step(dup("b1"), "done b1 dup"),
		},
	}, {
		name: "unknown outcome while pipelining: the later batches wait, then keep their sequences", maxInFlight: 3,
		steps: []seqStep{
			step(add(1, 1, 1), "producer-id stale=0", "send b1 pid=1 seq=0", "send b2 pid=1 seq=1", "send b3 pid=1 seq=2"),
			step(fails("b1", errUnavailable)),
			step(fails("b2", errOutOfOrder)),
			step(ok("b3")), // the rewind waits for it
			step(tick(testBackoffStep), "send b1 pid=1 seq=0"),
			step(dup("b1"), "done b1 dup", "send b2 pid=1 seq=1"),
			step(ok("b2"), "done b2 ok", "done b3 ok"),
		},
	}, {
		name: "unknown outcome without idempotence: fails at once, never resent", plain: true,
		steps: []seqStep{
			step(add(1, 1), "send b1 pid=0 seq=0"),
			step(fails("b1", errAnswerLost), "done b1 failed", "send b2 pid=0 seq=0"),
		},
		check: failedWith("b1", ErrUnknownOutcome, errAnswerLost),
	}, {
		name: "out of order: the batch that overtook is resent after the one before it", maxInFlight: 2,
		steps: []seqStep{
			step(add(1, 1), "producer-id stale=0", "send b1 pid=1 seq=0", "send b2 pid=1 seq=1"),
			step(fails("b2", errOutOfOrder)),
			step(ok("b1"), "done b1 ok", "send b2 pid=1 seq=1"),
			step(ok("b2"), "done b2 ok"),
		},
	}, {
		name: "out of order although every batch before was stored: a new producer id",
		steps: []seqStep{
			step(add(1), "producer-id stale=0", "send b1 pid=1 seq=0"),
			step(ok("b1"), "done b1 ok"),
			step(add(1), "send b2 pid=1 seq=1"),
			step(fails("b2", errOutOfOrder), "producer-id stale=1", "send b2 pid=2 seq=0"),
			step(ok("b2"), "done b2 ok"),
		},
	}, {
		name: "duplicate sequence: the batch fails and the queue moves to a new producer id",
		steps: []seqStep{
			step(add(1), "producer-id stale=0", "send b1 pid=1 seq=0"),
			step(fails("b1", errDuplicateSeq), "done b1 failed", "producer-id stale=1"),
			step(add(1), "send b2 pid=2 seq=0"),
		},
		check: failedWith("b1", errDuplicateSeq),
	}, {
		name: "unknown producer: a new producer id, the batches renumbered from 0", maxInFlight: 2,
		steps: []seqStep{
			step(add(2, 3), "producer-id stale=0", "send b1 pid=1 seq=0", "send b2 pid=1 seq=2"),
			step(ok("b1"), "done b1 ok"),
			step(fails("b2", errUnknownProducer), "producer-id stale=1", "send b2 pid=2 seq=0"),
			step(ok("b2"), "done b2 ok"),
			step(add(1), "send b3 pid=2 seq=3"),
		},
	}, {
		name: "refused for good: the batch fails, the next one takes its sequence numbers", maxInFlight: 2,
		steps: []seqStep{
			step(add(1, 1), "producer-id stale=0", "send b1 pid=1 seq=0", "send b2 pid=1 seq=1"),
			step(fails("b1", errTooLarge), "done b1 failed"),
			step(fails("b2", errOutOfOrder), "send b2 pid=1 seq=0"),
			step(ok("b2"), "done b2 ok"),
		},
		check: failedWith("b1", errTooLarge),
	}, {
		name: "the topic is gone: the batch fails and the topic is reloaded",
		steps: []seqStep{
			step(add(1), "producer-id stale=0", "send b1 pid=1 seq=0"),
			step(fails("b1", errTopicGone), "drop-topic", "done b1 failed"),
		},
		check: failedWith("b1", errTopicGone),
	}, {
		name: "delivery timeout after an unknown outcome: the batch fails, the next one gets a new producer id",
		steps: []seqStep{
			step(add(1), "producer-id stale=0", "send b1 pid=1 seq=0"),
			step(fails("b1", errUnavailable)),
			step(tick(testDeliveryTimeout+time.Millisecond), "done b1 failed", "producer-id stale=1"),
			step(add(1), "send b2 pid=2 seq=0"),
		},
		check: failedWith("b1", ErrDeliveryTimeout, ErrUnknownOutcome, errUnavailable),
	}, {
		name: "delivery timeout of a batch never sent: the next one takes its sequence numbers", sendErrs: []error{errNotSent, errNotSent},
		steps: []seqStep{
			step(add(1), "producer-id stale=0", "send b1 pid=1 seq=0"), // no group id
			step(tick(testBackoffStep), "send b1 pid=1 seq=0"),
			step(tick(testDeliveryTimeout), "done b1 failed"),
			step(add(1), "send b2 pid=1 seq=0"),
		},
		check: func(t *testing.T, d *seqDriver) {
			failedWith("b1", ErrDeliveryTimeout, errNotSent)(t, d)
			if errors.Is(d.batch("b1").err, ErrUnknownOutcome) {
				t.Errorf("b1: %v: the outcome is known", d.batch("b1").err)
			}
		},
	}, {
		name: "a failed producer id renewal backs off and asks again", pidAnswers: []error{nil, errUnavailable},
		steps: []seqStep{
			step(add(1), "producer-id stale=0", "send b1 pid=1 seq=0"),
			step(fails("b1", errUnknownProducer), "producer-id stale=1"),
			step(tick(testBackoffStep - time.Millisecond)),
			step(tick(time.Millisecond), "producer-id stale=1", "send b1 pid=2 seq=0"),
			step(ok("b1"), "done b1 ok"),
		},
	}, {
		name: "the first producer id cannot be had: the batch waits, then is sent", pidAnswers: []error{errUnavailable},
		steps: []seqStep{
			step(add(1), "producer-id stale=0"),
			step(tick(testBackoffStep), "producer-id stale=0", "send b1 pid=1 seq=0"),
			step(ok("b1"), "done b1 ok"),
		},
	}, {
		name: "a batch that cannot be encoded fails; the next one takes its sequence", sendErrs: []error{errEncode},
		steps: []seqStep{
			step(add(1, 1), "producer-id stale=0", "send b1 pid=1 seq=0", "done b1 failed"),
			step(tick(0), "send b2 pid=1 seq=0"),
		},
		check: failedWith("b1", errEncode),
	}, {
		name: "close: attempts under way fail with an unknown outcome, the rest with ErrClosed",
		steps: []seqStep{
			step(add(1, 1), "producer-id stale=0", "send b1 pid=1 seq=0"),
			step(closeWith(1), "done b1 failed", "done b2 failed", "done b3 failed"),
		},
		check: func(t *testing.T, d *seqDriver) {
			failedWith("b1", ErrClosed, ErrUnknownOutcome)(t, d)
			failedWith("b3", ErrClosed)(t, d)
			if errors.Is(d.batch("b2").err, ErrUnknownOutcome) {
				t.Errorf("b2 was never sent: %v", d.batch("b2").err)
			}
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := newSeqDriver(t, !tc.plain, max(tc.maxInFlight, 1))
			d.pidAnswers, d.sendErrs = tc.pidAnswers, tc.sendErrs
			for i, st := range tc.steps {
				d.out = nil
				st.do(d)
				if strings.Join(d.out, "; ") != strings.Join(st.want, "; ") {
					t.Fatalf("step %d: got actions\n\t%s\nwant\n\t%s", i, strings.Join(d.out, "; "), strings.Join(st.want, "; "))
				}
			}
			if tc.check != nil {
				tc.check(t, d)
			}
		})
	}
}
