package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// member is a Consumer's membership of its group. Membership changes —
// a join, a heartbeat, and applying the answer to the consumer's queues —
// happen one at a time under opMu: in the heartbeat goroutine, and in a
// commit the group refused. Group writes go to the leader and follow
// NOT_LEADER answers (conn); heartbeats are leader-local, and a new leader
// starts every session afresh, so a failover costs no membership.
//
// Fencing is the brokers': a commit is accepted only from a current
// member, for its current generation and its own queues. The member's
// part is to stop delivering a queue as soon as it learns the queue is no
// longer its own, and to start a queue it gains from the group's
// committed offset.
type member struct {
	c    *Consumer
	path string // /v1/groups/{group}

	opMu chanMutex

	// Guarded by c.mu.
	id         string // "" until joined, and after an expiry
	generation uint64
	interval   time.Duration // between heartbeats
	lastBeat   time.Time     // the last heartbeat or join answered
}

// chanMutex is a mutex whose Lock can give up when a context ends.
type chanMutex chan struct{}

func (m chanMutex) lock(ctx context.Context) bool {
	select {
	case m <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (m chanMutex) unlock() { <-m }

func newMember(c *Consumer) *member {
	return &member{c: c, path: "/v1/groups/" + url.PathEscape(c.cfg.group), opMu: make(chanMutex, 1),
		interval: c.cfg.sessionTimeout / 3}
}

// start joins the group and starts the heartbeat goroutine.
func (g *member) start(ctx context.Context) error {
	if !g.opMu.lock(ctx) {
		return ctx.Err()
	}
	defer g.opMu.unlock()
	if err := g.join(ctx); err != nil {
		return err
	}
	g.c.wg.Go(g.heartbeats)
	return nil
}

// join joins the group as a new member and takes the queues assigned.
// Failures resending may cure are resent until ctx ends. A join whose
// answer was lost may leave a member behind, which the group removes when
// its session times out. The caller holds opMu.
func (g *member) join(ctx context.Context) error {
	c := g.c
	req := wire.JoinGroupRequest{Topics: c.cfg.topics, SessionTimeoutMs: c.cfg.sessionTimeout.Milliseconds()}
	for attempt := 1; ; attempt++ {
		var m wire.Membership
		err := c.conn.postJSON(ctx, g.path+"/members", req, &m, retryUnapplied)
		if err == nil {
			c.log.Info("ledgermq: joined group", "group", c.cfg.group, "member", m.MemberID, "generation", m.Generation)
			g.apply(ctx, m, true)
			return nil
		}
		if !transient(err) || ctx.Err() != nil {
			return err
		}
		c.log.Debug("ledgermq: join failed; retrying", "group", c.cfg.group, "err", err)
		if sleep(ctx, c.conn.backoff(attempt)) != nil {
			return err
		}
	}
}

// transient reports whether resending may cure err.
func transient(err error) bool {
	var ae *Error
	var te *transportError
	switch {
	case errors.As(err, &ae):
		return ae.Retriable || ae.Status >= 500
	case errors.As(err, &te):
		return true
	}
	return false
}

// heartbeats beats every heartbeat interval until the consumer closes.
func (g *member) heartbeats() {
	c := g.c
	t := time.NewTimer(g.heartbeatInterval())
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if !c.testHang.Load() && g.opMu.lock(c.ctx) {
			ctx, cancel := context.WithTimeout(c.ctx, c.cfg.sessionTimeout)
			g.beat(ctx, false)
			cancel()
			g.opMu.unlock()
		}
		t.Reset(g.heartbeatInterval())
	}
}

func (g *member) heartbeatInterval() time.Duration {
	g.c.mu.Lock()
	defer g.c.mu.Unlock()
	return g.interval
}

// beat sends a heartbeat and applies the answer: the generation and queues
// of now. A member the group no longer knows joins again. stale: the
// consumer's view is known to be out of date (a refused commit), so if
// the group cannot be asked it stops delivering every queue until it can.
// The caller holds opMu.
func (g *member) beat(ctx context.Context, stale bool) {
	c := g.c
	c.mu.Lock()
	id, gen, last := g.id, g.generation, g.lastBeat
	c.mu.Unlock()
	if id == "" {
		g.rejoin(ctx)
		return
	}
	var m wire.Membership
	err := c.conn.postJSON(ctx, g.path+"/members/"+url.PathEscape(id)+"/heartbeat",
		wire.HeartbeatRequest{Generation: gen}, &m, retryAll)
	switch code := ErrorCode(err); {
	case err == nil:
		g.apply(ctx, m, false)
	case code == wire.CodeUnknownMember || code == wire.CodeGroupNotFound:
		c.log.Warn("ledgermq: the group no longer knows this member (session expired?): joining again",
			"group", c.cfg.group, "member", id)
		g.rejoin(ctx)
	case c.ctx.Err() != nil:
	case stale || time.Since(last) > c.cfg.sessionTimeout:
		c.log.Warn("ledgermq: heartbeat failed and the membership is out of date: delivering nothing until the group answers",
			"group", c.cfg.group, "member", id, "err", err)
		g.revokeAll()
	default:
		c.log.Warn("ledgermq: heartbeat failed", "group", c.cfg.group, "member", id, "err", err)
	}
}

// rejoin drops every queue and joins as a new member. The caller holds
// opMu.
func (g *member) rejoin(ctx context.Context) {
	c := g.c
	g.revokeAll()
	c.mu.Lock()
	g.id = ""
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return
	}
	if err := g.join(ctx); err != nil && c.ctx.Err() == nil {
		c.log.Warn("ledgermq: joining the group failed; retrying at the next heartbeat", "group", c.cfg.group, "err", err)
	}
}

// revokeAll stops delivering every queue.
func (g *member) revokeAll() {
	c := g.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for tq, qs := range c.queues {
		qs.f.cancel()
		delete(c.queues, tq)
	}
	c.sortQueues()
}

// apply makes the consumer deliver exactly the queues of membership m.
// Queues no longer assigned stop at once, their buffered records
// discarded. A queue kept across at most one rebalance goes on where it
// is; one kept across several, or after a new join, restarts from the
// committed offset like a queue newly assigned, since another member may
// have owned it in between. Queues whose committed offsets cannot be read
// now are started by a later heartbeat. The caller holds opMu.
func (g *member) apply(ctx context.Context, m wire.Membership, joined bool) {
	c := g.c
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	prevGen := g.generation
	continuous := !joined && (m.Generation == prevGen || m.Generation == prevGen+1)
	g.id, g.generation, g.lastBeat = m.MemberID, m.Generation, time.Now()
	g.interval = time.Duration(m.HeartbeatIntervalMs) * time.Millisecond
	if g.interval <= 0 {
		g.interval = c.cfg.sessionTimeout / 3
	}
	assigned := map[TopicQueue]bool{}
	for _, tq := range m.Assignment {
		assigned[tq] = true
	}
	var revoked, added []TopicQueue
	for tq, qs := range c.queues {
		if !assigned[tq] || !continuous {
			qs.f.cancel()
			delete(c.queues, tq)
			revoked = append(revoked, tq)
		}
	}
	for _, tq := range m.Assignment {
		if c.queues[tq] == nil {
			added = append(added, tq)
		}
	}
	c.sortQueues()
	c.mu.Unlock()
	if m.Generation != prevGen || len(revoked) > 0 {
		c.log.Info("ledgermq: group membership", "group", c.cfg.group, "member", m.MemberID, "generation", m.Generation,
			"queues", len(m.Assignment), "stopped", len(revoked), "starting", len(added))
	}
	if len(added) == 0 {
		return
	}
	committed, err := g.committedOffsets(ctx)
	if err != nil {
		c.log.Warn("ledgermq: cannot read the group's committed offsets; retrying at the next heartbeat",
			"group", c.cfg.group, "err", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	for _, tq := range added {
		qs := &queueState{}
		s := c.cfg.startNoCommit
		if off, ok := committed[tq]; ok {
			s, qs.committed, qs.hasCommitted = AtOffset(off), off, true
		}
		qs.f = c.startFetcher(tq, s)
		c.queues[tq] = qs
	}
	c.sortQueues()
}

// committedOffsets reads the group's committed offsets (from the leader
// when it is known: the newest).
func (g *member) committedOffsets(ctx context.Context) (map[TopicQueue]uint64, error) {
	var info wire.GroupInfo
	if err := g.c.conn.getJSON(ctx, g.path, nil, &info); err != nil {
		return nil, err
	}
	out := map[TopicQueue]uint64{}
	for _, q := range info.Queues {
		if q.Committed != nil {
			out[TopicQueue{Topic: q.Topic, Queue: q.Queue}] = *q.Committed
		}
	}
	return out, nil
}

// commit sends offsets (read by fetchers fs) as the member's commit. A
// refusal brings the membership up to date (see Consumer.Commit). The
// caller holds c.commitMu.
func (g *member) commit(ctx context.Context, offsets map[TopicQueue]uint64, fs map[TopicQueue]*fetcher) error {
	c := g.c
	c.mu.Lock()
	id, gen := g.id, g.generation
	c.mu.Unlock()
	if id == "" {
		return fmt.Errorf("ledgermq: commit to group %s: %w", c.cfg.group,
			clientError(wire.CodeUnknownMember, "the consumer is not a member of the group now; it is joining again"))
	}
	req := wire.CommitRequest{MemberID: id, Generation: gen}
	for tq, off := range offsets {
		req.Offsets = append(req.Offsets, wire.CommitOffset{Topic: tq.Topic, Queue: tq.Queue, Offset: off})
	}
	sort.Slice(req.Offsets, func(i, j int) bool {
		a, b := req.Offsets[i], req.Offsets[j]
		return a.Topic < b.Topic || a.Topic == b.Topic && a.Queue < b.Queue
	})
	err := c.conn.postJSON(ctx, g.path+"/offsets", req, nil, retryAll)
	if err == nil {
		c.committed(offsets, fs)
		return nil
	}
	err = fmt.Errorf("ledgermq: commit to group %s as %s (generation %d): %w", c.cfg.group, id, gen, err)
	switch ErrorCode(err) {
	case wire.CodeIllegalGeneration, wire.CodeNotAssigned, wire.CodeUnknownMember, wire.CodeGroupNotFound:
		c.log.Warn("ledgermq: commit refused: updating the membership", "group", c.cfg.group, "err", err)
		if g.opMu.lock(ctx) {
			g.beat(ctx, true)
			g.opMu.unlock()
		} else {
			g.revokeAll()
		}
	}
	return err
}

// leave takes the member out of its group. Called by Close once the
// heartbeats stopped.
func (g *member) leave(ctx context.Context) error {
	c := g.c
	c.mu.Lock()
	id := g.id
	c.mu.Unlock()
	if id == "" {
		return nil
	}
	_, err := c.conn.do(ctx, &request{method: http.MethodDelete, path: g.path + "/members/" + url.PathEscape(id),
		write: true, retry: retryUnapplied})
	switch ErrorCode(err) {
	case "", wire.CodeUnknownMember, wire.CodeGroupNotFound:
		c.log.Info("ledgermq: left group", "group", c.cfg.group, "member", id)
		return nil
	}
	return fmt.Errorf("ledgermq: leave group %s as %s: %w", c.cfg.group, id, err)
}
