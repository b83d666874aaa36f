package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// Stall detection: a leader that loses power, its network or its CPU (a
// VM pause, SIGSTOP) resets no connection, so without help a request to it
// waits for the whole request timeout. The conn watches every request:
//
//   - a write without an answer after the stall bound asks the other
//     brokers, all at once, who leads (GET /v1/leader); when the newest
//     answer (highest term) names another leader, the attempt is abandoned
//     as outcome-unknown and the conn points at the new leader. The caller
//     decides about resending: the idempotent producer resends with the
//     same producer id and sequence, which the brokers de-duplicate; other
//     writes report ErrUnknownOutcome. While nobody names another leader
//     the attempt goes on (a slow commit is not a failure) and the brokers
//     are asked again every probe interval.
//   - a read without an answer after its expected time (a long poll's
//     wait) plus twice the stall bound is abandoned and resent to the next
//     broker: reads are idempotent.

// errStalled is why a stalled attempt was abandoned.
var errStalled = errors.New("no answer within the stall bound")

const (
	defaultStallAfter = 500 * time.Millisecond // ≈ Raft's election timeout + an election, the brokers' defaults
	probeEvery        = 200 * time.Millisecond
)

// stallWatch watches one attempt. stop ends it; abandoned says whether it
// cancelled the attempt.
type stallWatch struct {
	done      chan struct{}
	wg        sync.WaitGroup
	abandoned atomic.Bool
}

// watch starts watching an attempt to base; cancel aborts the attempt.
func (c *conn) watch(ctx context.Context, cancel context.CancelFunc, base string, r *request) *stallWatch {
	w := &stallWatch{done: make(chan struct{})}
	if c.stallAfter <= 0 {
		return w
	}
	first := c.stallAfter
	if !r.write {
		first = r.expect + 2*c.stallAfter
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTimer(first)
		defer t.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if !r.write || c.leaderMovedFrom(ctx, base) {
				c.log.Debug("ledgermq: abandoning a stalled request", "addr", base, "method", r.method, "path", r.path)
				w.abandoned.Store(true)
				cancel()
				return
			}
			t.Reset(probeEvery)
		}
	}()
	return w
}

func (w *stallWatch) stop() {
	close(w.done)
	w.wg.Wait()
}

// leaderMovedFrom asks every other broker who leads and reports whether
// the newest answer names a leader other than base, pointing the conn at
// it. An answer naming base records its term, so that an older view
// cannot later move the conn away.
func (c *conn) leaderMovedFrom(ctx context.Context, base string) bool {
	pctx, cancel := context.WithTimeout(ctx, min(c.stallAfter, probeEvery))
	defer cancel()
	var (
		mu   sync.Mutex
		best wire.LeaderView
		wg   sync.WaitGroup
	)
	for _, b := range c.brokers {
		if b == base {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if lv, err := c.askLeader(pctx, b); err == nil && lv.Leader != "" {
				mu.Lock()
				if lv.Term > best.Term {
					best = lv
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	if best.Leader == "" || best.LeaderAPI == "" || best.Term < c.leaderTerm {
		return false
	}
	c.leaderTerm = best.Term
	hint := c.scheme + "://" + best.LeaderAPI
	if hint == base {
		return false
	}
	c.log.Debug("ledgermq: leader moved while a request stalled", "from", base, "to", hint, "term", best.Term)
	c.leader = hint
	return true
}

// askLeader is GET /v1/leader on one broker.
func (c *conn) askLeader(ctx context.Context, base string) (wire.LeaderView, error) {
	var lv wire.LeaderView
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/leader", nil)
	if err != nil {
		return lv, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return lv, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return lv, err
	}
	if resp.StatusCode != http.StatusOK {
		return lv, decodeError(resp.StatusCode, body)
	}
	return lv, json.Unmarshal(body, &lv)
}
