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
//   - a read from the believed leader without an answer after the stall
//     bound asks the same question every stall bound, and is abandoned
//     and resent to the new leader when one is named; any read without an
//     answer after its expected time (a long poll's wait) plus twice the
//     stall bound is abandoned and resent to the next broker: reads are
//     idempotent.

// errStalled is why a stalled attempt was abandoned.
var errStalled = errors.New("no answer within the stall bound")

const (
	// defaultStallAfter is about the brokers' default election timeout
	// (300 ms): sooner than a new leader can exist, probes only cost a
	// local read on each other broker.
	defaultStallAfter = 300 * time.Millisecond
	probeEvery        = 100 * time.Millisecond
	// silentAfter: a follower that has not heard from the leader for this
	// long (raft heartbeats go every 40-80 ms by default) hints at a leader
	// in trouble; a read then asks again every probeEvery.
	silentAfter = 150 * time.Millisecond
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
	// A read gives up for good at its expected time plus twice the stall
	// bound; before that, a read from the believed leader asks the others
	// every stall bound whether the leader moved (idle long polls send a
	// probe or two per wait, not one per probeEvery).
	// A long-polled write (a group heartbeat: it changes nothing durable)
	// is watched like a read.
	poll := !r.write || r.expect > 0
	var giveUp time.Time
	if poll {
		giveUp = time.Now().Add(r.expect + 2*c.stallAfter)
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTimer(c.stallAfter)
		defer t.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			expired := poll && !time.Now().Before(giveUp)
			moved, silent := false, false
			if !expired && (r.write || c.believedLeader(base)) {
				moved, silent = c.leaderMovedFrom(ctx, base)
			}
			if expired || moved {
				c.log.Debug("ledgermq: abandoning a stalled request", "addr", base, "method", r.method, "path", r.path)
				w.abandoned.Store(true)
				cancel()
				return
			}
			next := probeEvery
			if poll && !silent { // an idle long poll to a live leader
				next = min(c.stallAfter, max(time.Until(giveUp), 0))
			}
			t.Reset(next)
		}
	}()
	return w
}

// believedLeader reports whether base is the broker this conn takes for
// the leader.
func (c *conn) believedLeader(base string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader == base
}

func (w *stallWatch) stop() {
	close(w.done)
	w.wg.Wait()
}

// probeCall is one round of asking the brokers who leads, shared by every
// request that wants an answer while it runs or for probeEvery/2 after.
type probeCall struct {
	done chan struct{}
	at   time.Time       // when it finished
	best wire.LeaderView // SilentMs: the longest any broker naming best's leader in its term reported
}

// leaderMovedFrom reports whether the brokers name a leader other than
// the one at base, pointing the conn at it, and whether a broker that
// names base's node has not heard from it for a while (silent: a leader
// change may be under way, worth asking again soon). It asks every broker other
// than base at once (GET /v1/leader) and believes the answer with the
// highest term, if no older than a term already seen; an answer naming
// base's node records its term, so that an older view cannot later move
// the conn away. Brokers are told apart by node id (the LedgerMQ-Node
// header) where known, so a broker reached by another name than it
// advertises is still recognised.
func (c *conn) leaderMovedFrom(ctx context.Context, base string) (moved, silent bool) {
	best, ok := c.probeLeader(ctx, base)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !ok || best.Leader == "" || best.Term < c.leaderTerm {
		return false, false
	}
	c.leaderTerm = best.Term
	silent = best.SilentMs >= silentAfter.Milliseconds()
	if id := c.ids[base]; id != "" {
		if best.Leader == id {
			return false, silent
		}
	} else if best.LeaderAPI == "" || c.scheme+"://"+best.LeaderAPI == base {
		return false, silent
	}
	hint := ""
	if best.LeaderAPI != "" {
		hint = c.scheme + "://" + best.LeaderAPI
		if known := c.baseOf(best.Leader); known != "" {
			hint = known // the address this client reaches that node by
		}
	}
	c.log.Debug("ledgermq: leader moved", "from", base, "to", hint, "leader", best.Leader, "term", best.Term)
	c.leader = hint
	return true, false
}

// baseOf is the base URL this client reached node id at; c.mu held.
func (c *conn) baseOf(id string) string {
	for base, nid := range c.ids {
		if nid == id {
			return base
		}
	}
	return ""
}

// probeLeader returns the highest-term leader view the brokers other than
// base give, sharing a round with concurrent callers.
func (c *conn) probeLeader(ctx context.Context, base string) (wire.LeaderView, bool) {
	c.mu.Lock()
	p := c.probe
	if p != nil && (!p.at.IsZero() && time.Since(p.at) < probeEvery/2 || p.at.IsZero()) {
		c.mu.Unlock()
		select {
		case <-p.done:
			return p.best, true
		case <-ctx.Done():
			return wire.LeaderView{}, false
		}
	}
	p = &probeCall{done: make(chan struct{})}
	c.probe = p
	c.mu.Unlock()
	p.best = c.askAll(ctx, base)
	c.mu.Lock()
	p.at = time.Now()
	c.mu.Unlock()
	close(p.done)
	return p.best, true
}

// askAll asks every broker but skip who leads, at once, for at most
// probeEvery, and returns the answer with the highest term.
func (c *conn) askAll(ctx context.Context, skip string) wire.LeaderView {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeEvery)
	defer cancel()
	var (
		mu   sync.Mutex
		best wire.LeaderView
		wg   sync.WaitGroup
	)
	for _, b := range c.brokers {
		if b == skip {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if lv, err := c.askLeader(pctx, b); err == nil && lv.Leader != "" {
				mu.Lock()
				switch {
				case lv.Term > best.Term:
					best = lv
				case lv.Term == best.Term && lv.Leader == best.Leader:
					best.SilentMs = max(best.SilentMs, lv.SilentMs)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return best
}

// askLeader is GET /v1/leader on one broker.
func (c *conn) askLeader(ctx context.Context, base string) (wire.LeaderView, error) {
	var lv wire.LeaderView
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/leader", nil)
	if err != nil {
		return lv, err
	}
	c.setHeaders(req)
	resp, err := c.hc.Do(req)
	if err != nil {
		return lv, err
	}
	defer resp.Body.Close()
	c.learnID(base, resp.Header.Get(wire.NodeHeader))
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return lv, err
	}
	if resp.StatusCode != http.StatusOK {
		return lv, decodeError(resp.StatusCode, body)
	}
	return lv, json.Unmarshal(body, &lv)
}

// learnID records the node id a broker answered with.
func (c *conn) learnID(base, id string) {
	if id == "" {
		return
	}
	c.mu.Lock()
	if c.ids == nil {
		c.ids = map[string]string{}
	}
	c.ids[base] = id
	c.mu.Unlock()
}
