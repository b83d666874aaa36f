package client

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// The sequencer is the producer's per-queue sequencing state machine: it
// decides which batch is sent next, with which producer id and sequence,
// what a failure means for the batches after it, when a queue rewinds and
// resends, when it needs a new producer id, and when batches are done. It
// does no I/O and reads no clock, and it is not safe for concurrent use:
// like etcd-raft's core, it is driven by one owner (a queue's loop) that
// feeds it events (step), carries out the actions step returns, and
// reports their outcomes as further events.
//
// The contract with the driver:
//   - actSend: encode the batch with the action's producer id and sequence
//     and start the attempt, then step evSent; or step evPrepareFailed when
//     it cannot be prepared now (no group id), evInvalid when it can never
//     be sent (encoding failed). Later, step evResult with its outcome.
//   - actProducerID: get a producer id other than stale (0: any), then step
//     evProducerID with it or the error.
//   - actComplete: the batch is done (stateAcked or stateFailed); report it.
//     Completions come in the order the batches were appended.
//   - actDropTopic: the topic or queue does not exist (any more): reload the
//     topic's metadata for later messages.
//
// Until an actSend or actProducerID is answered, the sequencer sends
// nothing more. A driver that is stopping may leave them unanswered and
// step evClose.

// Batch states.
type batchState uint8

const (
	statePending  batchState = iota // to be sent (again)
	stateInFlight                   // an attempt is under way
	stateAcked                      // stored
	stateFailed                     // failed for good
)

// seqState is a batch's sequencing state, owned by its queue's sequencer.
type seqState struct {
	deadline time.Time // of its oldest record
	state    batchState

	// Idempotence: the sequence is assigned when the batch is first sent
	// and changes only when the queue resequences.
	assigned    bool
	pid, seq    uint64
	maybeStored bool // an attempt's outcome was unknown
	// settled: every earlier batch of the queue was stored when the
	// attempt under way was sent.
	settled bool

	attempts int
	lastErr  error
	err      error // stateFailed: the reported error
	resp     wire.BatchProduceResponse
}

// eventKind is what happened to a queue.
type eventKind uint8

const (
	// evTick: time passed. Expires batches, finishes a rewind, sends.
	evTick eventKind = iota
	// evAppend: batches were sealed (event.batches, in produce order).
	evAppend
	// evSent: the attempt of the last actSend started.
	evSent
	// evPrepareFailed: the last actSend could not be prepared (event.err);
	// the batch is sent again after a backoff.
	evPrepareFailed
	// evInvalid: the batch of the last actSend can never be sent
	// (event.err); it fails.
	evInvalid
	// evResult: an attempt ended: event.resp, or event.err. With
	// event.abandoned, the producer is stopping and the attempt was given up.
	evResult
	// evProducerID: the outcome of actProducerID: event.pid or event.err.
	evProducerID
	// evClose: the producer stops. Every batch (event.batches too: the ones
	// not yet appended) completes; what is not stored fails with ErrClosed.
	evClose
)

// event is an input of sequencer.step.
type event struct {
	kind      eventKind
	now       time.Time
	batch     *batch   // evSent, evPrepareFailed, evInvalid, evResult; evProducerID: the action's
	batches   []*batch // evAppend, evClose
	resp      wire.BatchProduceResponse
	err       error
	pid       uint64
	abandoned bool
}

// actionKind is what the driver must do.
type actionKind uint8

const (
	actSend actionKind = iota
	actProducerID
	actComplete
	actDropTopic
)

// action is an output of sequencer.step.
type action struct {
	kind  actionKind
	batch *batch // actSend, actComplete; actProducerID: the batch waiting for a first id
	// actSend: the producer id and sequence to encode (0, 0 without
	// idempotence).
	pid, seq uint64
	// actProducerID: the id the broker no longer knows (0: none yet), and
	// when the answer is no longer useful.
	stale    uint64
	deadline time.Time
}

// seqConfig configures a sequencer.
type seqConfig struct {
	topic           string
	queue           int
	idempotent      bool
	maxInFlight     int
	deliveryTimeout time.Duration
	// backoff is the pause before the n-th consecutive retry (n >= 1).
	backoff func(n int) time.Duration
	log     *slog.Logger
}

// sequencer sends the batches of one (topic, queue) in sequence order, at
// most limit() of them unsettled at once. Any retriable failure starts a
// rewind: nothing more is sent until every attempt under way has come
// back; then, after the backoff, the unacknowledged batches are resent in
// order, the first one alone until it succeeds. With idempotence a resent
// batch keeps its producer id and sequence, unless a batch before it
// failed for good (the later ones are renumbered to close the gap) or the
// producer id must change (UNKNOWN_PRODUCER, or a failed batch that may
// have been stored).
type sequencer struct {
	cfg seqConfig

	batches      []*batch // appended and not yet completed, in order
	inflight     int
	pid          uint64
	nextSeq      uint64 // the next sequence to assign
	base         uint64 // the sequence following the completed stored batches
	rewind       bool   // wait for attempts under way, then resend in order
	reset        bool   // get a new producer id and renumber from 0
	resequence   bool   // renumber the unsent batches to close gaps
	probe        bool   // after a rewind: one batch at a time until one succeeds
	fails        int    // consecutive failures, for the backoff
	backoffUntil time.Time

	sending     *batch // an actSend not yet answered
	fetchingPID bool   // an actProducerID not yet answered

	out []action // the actions of the step under way
}

func newSequencer(cfg seqConfig) *sequencer { return &sequencer{cfg: cfg} }

// step feeds one event and returns what the driver must do, in order.
func (s *sequencer) step(ev event) []action {
	now := ev.now
	switch ev.kind {
	case evTick:
		s.expire(now)
		s.complete()
		if s.rewind && s.inflight == 0 && !s.fetchingPID && !now.Before(s.backoffUntil) {
			s.finishRewind(now)
		}
	case evAppend:
		s.batches = append(s.batches, ev.batches...)
	case evSent:
		s.sending = nil
		b := ev.batch
		b.state = stateInFlight
		b.attempts++
		s.inflight++
	case evPrepareFailed:
		s.sending = nil
		s.prepareFailed(ev.batch, ev.err, now, "ledgermq: cannot prepare batch")
	case evInvalid:
		s.sending = nil
		s.fail(ev.batch, fmt.Errorf("ledgermq: produce to %s: encode batch: %w", s.where(), ev.err))
	case evResult:
		s.onResult(ev)
	case evProducerID:
		s.onProducerID(ev)
	case evClose:
		s.close(ev.batches)
	}
	if ev.kind != evClose && ev.kind != evResult {
		s.pump(now)
	}
	s.complete()
	out := s.out
	s.out = nil
	return out
}

func (s *sequencer) emit(a action) { s.out = append(s.out, a) }

func (s *sequencer) where() string { return fmt.Sprintf("%s/%d", s.cfg.topic, s.cfg.queue) }

func (s *sequencer) limit() int {
	if !s.cfg.idempotent || s.probe {
		return 1
	}
	return s.cfg.maxInFlight
}

func (s *sequencer) canSend(now time.Time) bool {
	return !s.rewind && !now.Before(s.backoffUntil)
}

// hasRoom reports whether a batch sealed now, after queued others not yet
// appended, could be sent at once: if not, the open batch keeps growing.
func (s *sequencer) hasRoom(now time.Time, queued int) bool {
	return len(s.batches)+queued < s.limit() && s.canSend(now)
}

// nextWake is when time alone makes a difference (zero: never): the end of
// the backoff, or the delivery timeout of the first batch waiting.
func (s *sequencer) nextWake(now time.Time) time.Time {
	var at time.Time
	if now.Before(s.backoffUntil) {
		at = s.backoffUntil
	}
	for _, b := range s.batches {
		if b.state == statePending {
			if t := b.deadline.Add(time.Millisecond); at.IsZero() || t.Before(at) {
				at = t
			}
			break
		}
	}
	return at
}

// expire fails the batches waiting to be sent whose delivery timeout has
// passed.
func (s *sequencer) expire(now time.Time) {
	for _, b := range s.batches {
		if b.state == statePending && now.After(b.deadline) {
			s.fail(b, deliveryTimeoutError(b))
		}
	}
}

func deliveryTimeoutError(b *batch) error {
	switch {
	case b.lastErr == nil:
		return fmt.Errorf("%w: not sent in time", ErrDeliveryTimeout)
	case b.maybeStored:
		return fmt.Errorf("%w (%w) after %d attempts; last failure: %w", ErrDeliveryTimeout, ErrUnknownOutcome, b.attempts, b.lastErr)
	}
	return fmt.Errorf("%w after %d attempts; last failure: %w", ErrDeliveryTimeout, b.attempts, b.lastErr)
}

// fail marks a batch failed for good. With idempotence, its sequence
// numbers are then either reused (it was certainly not stored) or the
// queue moves to a new producer id (it may have been stored).
func (s *sequencer) fail(b *batch, err error) {
	b.state = stateFailed
	b.err = err
	if s.cfg.idempotent && b.assigned {
		if b.maybeStored {
			s.reset = true
		} else {
			s.resequence = true
		}
		s.rewind = true
	}
}

// complete reports the batches at the head that are done, in order.
func (s *sequencer) complete() {
	for len(s.batches) > 0 {
		b := s.batches[0]
		if b.state != stateAcked && b.state != stateFailed {
			return
		}
		s.batches[0] = nil
		s.batches = s.batches[1:]
		if b.state == stateAcked && b.assigned && b.pid == s.pid {
			s.base = b.seq + uint64(b.count())
		}
		s.emit(action{kind: actComplete, batch: b})
	}
}

// pump sends the first pending batch of the window, if any; the next one
// follows when the driver reports it sent.
func (s *sequencer) pump(now time.Time) {
	if s.sending != nil || s.fetchingPID || !s.canSend(now) {
		return
	}
	lim := s.limit()
	settled := true
	for i := 0; i < len(s.batches) && i < lim; i++ {
		b := s.batches[i]
		if b.state == statePending {
			s.send(b, settled)
			return
		}
		settled = settled && b.state == stateAcked
	}
}

// send asks for b to be sent, after getting a producer id if there is none.
func (s *sequencer) send(b *batch, settled bool) {
	if s.cfg.idempotent && s.pid == 0 {
		s.fetchingPID = true
		s.emit(action{kind: actProducerID, batch: b, deadline: b.deadline})
		return
	}
	if s.cfg.idempotent && !b.assigned {
		b.assigned, b.pid, b.seq = true, s.pid, s.nextSeq
		s.nextSeq += uint64(b.count())
	}
	b.settled = settled
	s.sending = b
	s.emit(action{kind: actSend, batch: b, pid: b.pid, seq: b.seq})
}

// prepareFailed handles a failure to prepare b (producer id, group id): it
// stays pending and the queue backs off.
func (s *sequencer) prepareFailed(b *batch, err error, now time.Time, msg string) {
	b.lastErr = err
	s.backOff(now, err, msg)
}

func (s *sequencer) backOff(now time.Time, err error, msg string) {
	s.fails++
	s.backoffUntil = now.Add(s.cfg.backoff(s.fails))
	s.cfg.log.Debug(msg, "topic", s.cfg.topic, "queue", s.cfg.queue, "err", err)
}

// onProducerID takes the answer to actProducerID: the first id of the
// queue, or the new one a rewind waits for.
func (s *sequencer) onProducerID(ev event) {
	s.fetchingPID = false
	switch {
	case s.pid == 0 && ev.err != nil:
		s.prepareFailed(ev.batch, ev.err, ev.now, "ledgermq: cannot prepare batch")
	case s.pid == 0:
		s.pid = ev.pid
	case ev.err != nil:
		s.backOff(ev.now, ev.err, "ledgermq: cannot get a new producer id")
	default:
		s.cfg.log.Info("ledgermq: queue restarts its sequence under a new producer id; batches sent before are no longer de-duplicated",
			"topic", s.cfg.topic, "queue", s.cfg.queue, "producer_id", ev.pid, "previous", s.pid)
		s.pid, s.base, s.reset, s.resequence = ev.pid, 0, false, true
		s.resume()
	}
}

// Failure classes of a produce attempt.
type failure uint8

const (
	notApplied      failure = iota // certainly not stored: resend
	unknownOutcome                 // may have been stored
	unknownProducer                // the producer id expired
	final                          // refused: resending cannot help
)

func classify(err error) failure {
	var ae *Error
	var te *transportError
	switch {
	case errors.As(err, &ae):
		switch ae.Code {
		case wire.CodeNotLeader, wire.CodeOutOfOrderSequence:
			return notApplied
		case wire.CodeUnknownProducer:
			return unknownProducer
		case wire.CodeUnavailable:
			return unknownOutcome
		}
		if ae.Status >= 500 {
			return unknownOutcome
		}
		return final
	case errors.As(err, &te) && !te.sent:
		return notApplied
	}
	return unknownOutcome
}

// onResult handles the outcome of an attempt.
func (s *sequencer) onResult(ev event) {
	s.inflight--
	b := ev.batch
	if ev.err == nil {
		b.state, b.resp = stateAcked, ev.resp
		s.fails, s.probe = 0, false
		if ev.resp.Duplicate {
			s.cfg.log.Debug("ledgermq: resent batch was already stored", "topic", s.cfg.topic, "queue", s.cfg.queue, "offset", ev.resp.BaseOffset)
		}
		return
	}
	b.state = statePending
	b.lastErr = ev.err
	if ev.abandoned {
		b.maybeStored = true
		return
	}
	switch classify(ev.err) {
	case notApplied:
		if ErrorCode(ev.err) != wire.CodeOutOfOrderSequence {
			s.fails++
		} else if b.settled {
			// Every earlier batch was stored, yet the broker expects
			// another sequence: its state for this producer is not ours.
			s.reset = true
		}
		s.retry(b, ev.now)
	case unknownOutcome:
		if !s.cfg.idempotent {
			s.fail(b, fmt.Errorf("ledgermq: produce to %s: %w: %w", s.where(), ErrUnknownOutcome, ev.err))
			return
		}
		b.maybeStored = true
		s.fails++
		s.retry(b, ev.now)
	case unknownProducer:
		s.reset = true
		s.retry(b, ev.now)
	case final:
		switch ErrorCode(ev.err) {
		case wire.CodeDuplicateSequence:
			// Older than the broker's window: stored long ago, or the
			// broker's state is not ours. Either way, start afresh.
			b.maybeStored = true
		case wire.CodeTopicNotFound, wire.CodeQueueNotFound:
			s.emit(action{kind: actDropTopic})
		}
		s.fail(b, fmt.Errorf("ledgermq: produce to %s: %w", s.where(), ev.err))
	}
}

// retry schedules b, whose attempt failed retriably, to be resent in order
// after the backoff, unless its delivery timeout has passed.
func (s *sequencer) retry(b *batch, now time.Time) {
	if now.After(b.deadline) {
		s.fail(b, deliveryTimeoutError(b))
		return
	}
	s.rewind = true
	if s.fails > 0 {
		if until := now.Add(s.cfg.backoff(s.fails)); until.After(s.backoffUntil) {
			s.backoffUntil = until
		}
	}
	s.cfg.log.Debug("ledgermq: batch will be resent", "topic", s.cfg.topic, "queue", s.cfg.queue,
		"attempts", b.attempts, "err", b.lastErr)
}

// finishRewind runs once every attempt under way has come back: it asks
// for a new producer id if one is needed (the rewind resumes with the
// answer), else resumes now.
func (s *sequencer) finishRewind(now time.Time) {
	if !s.cfg.idempotent || !s.reset {
		s.resume()
		return
	}
	deadline := now.Add(s.cfg.deliveryTimeout)
	for _, b := range s.batches {
		if b.state == statePending {
			deadline = b.deadline
			break
		}
	}
	s.fetchingPID = true
	s.emit(action{kind: actProducerID, stale: s.pid, deadline: deadline})
}

// resume renumbers what must be renumbered and lets pump resend from the
// first unacknowledged batch, one at a time until one succeeds.
func (s *sequencer) resume() {
	if s.resequence {
		expect := s.base
		for _, b := range s.batches {
			if !b.assigned {
				break
			}
			switch b.state {
			case stateAcked:
				if b.pid == s.pid {
					expect = b.seq + uint64(b.count())
				}
			case stateFailed:
				// Not stored (else the queue would have been reset): its
				// sequence numbers are free again.
			default:
				if b.pid != s.pid || b.seq != expect {
					b.pid, b.seq, b.maybeStored = s.pid, expect, false
				}
				expect += uint64(b.count())
			}
		}
		s.nextSeq, s.resequence = expect, false
	}
	s.rewind, s.probe = false, true
}

// close completes every batch: the producer stops. Those not stored fail
// with ErrClosed, and ErrUnknownOutcome if they may have been stored.
func (s *sequencer) close(more []*batch) {
	all := append(s.batches, more...)
	s.batches = nil
	for _, b := range all {
		if b.state != stateAcked {
			b.err = ErrClosed
			if b.state == stateInFlight || b.maybeStored {
				b.err = fmt.Errorf("%w: %w", ErrClosed, ErrUnknownOutcome)
			}
			b.state = stateFailed
		}
		s.emit(action{kind: actComplete, batch: b})
	}
}
