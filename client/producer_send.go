package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/ledgermq/ledgermq/wire"
)

// sender carries the producer's batch attempts to the brokers, merging
// the attempts of several queues into one request while every request
// slot (WithMaxRequests) is taken. Each queue's sequencer still decides what is sent and reads its
// own outcomes: the sender only changes how attempts travel, never their
// order within a queue (a request's parts are in the order they were
// submitted, and the broker applies them in that order).
type sender struct {
	p     *Producer
	start sync.Once
	ok    bool // the loop started
	wake  chan struct{}
	slots chan struct{}
	// single: the brokers do not take POST /v1/produce (an older version
	// answered 404 or 405): every attempt goes alone.
	single atomic.Bool

	mu      sync.Mutex
	pending []attempt
}

// attempt is one batch attempt waiting for a request.
type attempt struct {
	q   *queue
	b   *batch
	enc []byte
}

func newSender(p *Producer) *sender {
	return &sender{p: p, wake: make(chan struct{}, 1), slots: make(chan struct{}, p.cfg.maxRequests)}
}

// submit queues an attempt; false when the producer is stopping.
func (s *sender) submit(a attempt) bool {
	s.start.Do(func() { s.ok = s.p.goRun(s.loop) })
	if !s.ok {
		return false
	}
	s.mu.Lock()
	s.pending = append(s.pending, a)
	s.mu.Unlock()
	s.signal()
	return true
}

func (s *sender) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// loop takes a free slot, then the attempts waiting for it, and sends
// them as one request.
func (s *sender) loop() {
	done := s.p.ctx.Done()
	for {
		select {
		case s.slots <- struct{}{}:
		case <-done:
			return
		}
		var batch []attempt
		for batch == nil {
			select {
			case <-s.wake:
				batch = s.take()
			case <-done:
				return
			}
		}
		if !s.p.goRun(func() {
			defer func() { <-s.slots }()
			s.send(batch)
		}) {
			return
		}
	}
}

// take removes the oldest waiting attempts that fit one request: at most
// the producer's batch size in all (a larger batch goes alone) and
// wire.MaxProduceParts parts. It wakes the loop again when some are left.
func (s *sender) take() []attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	size, n := wire.ProduceRequestHeader, 0
	limit := wire.MaxProduceParts
	if s.single.Load() {
		limit = 1
	}
	for n < len(s.pending) && n < limit {
		a := s.pending[n]
		size += wire.ProducePartSize(a.q.ts.name, len(a.enc))
		if n > 0 && size > s.p.cfg.batchBytes {
			break
		}
		n++
	}
	if n == 0 {
		return nil
	}
	out := append([]attempt(nil), s.pending[:n]...)
	rest := copy(s.pending, s.pending[n:])
	clear(s.pending[rest:]) // no encodings or callbacks kept alive by the backing array
	s.pending = s.pending[:rest]
	if len(s.pending) > 0 {
		s.signal()
	}
	return out
}

// refusedWhole reports whether a multi-queue request was refused, as a
// whole and certainly unapplied, for being one (split: send its parts
// alone), and whether the broker lacks the endpoint altogether (old).
// Refusals that would meet each part alike (authentication, NOT_LEADER,
// an outcome unknown) are not split: the parts' sequencers handle them.
func refusedWhole(err error) (split, old bool) {
	var ae *Error
	if !errors.As(err, &ae) {
		return false, false
	}
	switch ae.Status {
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return true, true
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return true, false
	}
	return false, false
}

// send makes one request of the attempts and reports each one's outcome
// to its queue: one attempt goes to its queue's batches endpoint, several
// as one POST /v1/produce.
func (s *sender) send(as []attempt) {
	p := s.p
	if len(as) == 1 {
		a := as[0]
		resp, err := p.conn.do(p.ctx, &request{method: http.MethodPost, path: a.q.path, body: a.enc,
			contentType: wire.ContentType, write: true, retry: retryOnce})
		a.q.results <- attemptResult{b: a.b, resp: resp, err: err}
		return
	}
	parts := make([]wire.ProducePart, len(as))
	for i, a := range as {
		parts[i] = wire.ProducePart{Topic: a.q.ts.name, Queue: a.q.idx, Batch: a.enc}
	}
	body, err := wire.AppendProduceRequest(nil, parts)
	if err != nil { // a part the layout cannot carry: send them one by one
		for _, a := range as {
			s.send([]attempt{a})
		}
		return
	}
	resp, err := p.conn.do(p.ctx, &request{method: http.MethodPost, path: "/v1/produce", body: body,
		contentType: wire.ProduceContentType, write: true, retry: retryOnce})
	if split, old := refusedWhole(err); split {
		// Refused as a whole before anything was applied, for what the
		// merge did (too large for the broker's request limit, a broker
		// without the endpoint): each attempt goes again, alone, in order.
		if old {
			s.single.Store(true)
			p.log.Warn("ledgermq: the broker does not take multi-queue produce requests (an older version?); sending one batch per request", "err", err)
		}
		for _, a := range as {
			s.send([]attempt{a})
		}
		return
	}
	var pr wire.ProducePartsResponse
	if err == nil {
		if jerr := json.Unmarshal(resp.body, &pr); jerr != nil || len(pr.Results) != len(as) {
			err = fmt.Errorf("ledgermq: unexpected answer from %s: %.200q", resp.addr, resp.body)
		}
	}
	for i, a := range as {
		r := attemptResult{b: a.b, err: err}
		if err == nil {
			res := &pr.Results[i]
			if res.Error != nil {
				r.err = apiError(res.Status, res.Error)
			} else {
				r.parsed = &res.BatchProduceResponse
				r.resp = resp
			}
		}
		a.q.results <- r
	}
}
