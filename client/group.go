package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// member is a Consumer's membership of its group. Membership changes —
// a join, applying a heartbeat's answer to the consumer's queues, handing
// revoked queues over — happen one at a time under opMu: in the heartbeat
// goroutine, at the start of Poll, in a commit the group refused, and in
// Close. Group writes go to the leader and follow NOT_LEADER answers
// (conn); heartbeats are leader-local, and a new leader starts every
// session afresh, so a failover costs no membership.
//
// The hand-over is cooperative (like Kafka's incremental protocol): the
// group never gives a queue to a member while another owns it. A queue
// the group wants elsewhere is first listed in the owner's Revoking set;
// the owner stops delivering it at once, and once the application has
// processed what Poll returned of it (the next Poll call, or at once when
// nothing of it is outstanding) commits that position and releases the
// queue in one request; only then does the group assign it to its next
// owner, which starts at that committed offset. Queues that stay keep
// flowing. Heartbeats are long polls that the leader answers as soon as
// the group changes, so a member learns of a rebalance within a round
// trip.
type member struct {
	c    *Consumer
	path string // /v1/groups/{group}

	opMu chanMutex

	// Guarded by c.mu.
	id         string // "" until joined, and after an expiry
	generation uint64
	interval   time.Duration // the heartbeat long poll's wait
	lastBeat   time.Time     // when the latest heartbeat (or join) answered was sent
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

// lockOr is lock that also gives up when stop is closed.
func (m chanMutex) lockOr(ctx context.Context, stop <-chan struct{}) bool {
	select {
	case m <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
}

func (m chanMutex) tryLock() bool {
	select {
	case m <- struct{}{}:
		return true
	default:
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
	g.handover(ctx)
	g.c.wg.Go(g.heartbeats)
	return nil
}

// join joins the group as a new member (with the consumer's instance id:
// replacing the member of that id) and takes the queues assigned.
// Failures resending may cure are resent until ctx ends. A join whose
// answer was lost may leave a member behind, which the group removes when
// its session times out (a static member's is replaced by the resend).
// The caller holds opMu.
func (g *member) join(ctx context.Context) error {
	c := g.c
	req := wire.JoinGroupRequest{Topics: c.cfg.topics, InstanceID: c.cfg.instanceID,
		SessionTimeoutMs: c.cfg.sessionTimeout.Milliseconds()}
	for attempt := 1; ; attempt++ {
		var m wire.Membership
		sent := time.Now()
		err := c.conn.postJSON(ctx, g.path+"/members", req, &m, retryUnapplied)
		if err == nil {
			c.log.Info("ledgermq: joined group", "group", c.cfg.group, "member", m.MemberID, "generation", m.Generation,
				"instance", c.cfg.instanceID)
			g.apply(ctx, m, true, sent)
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

// heartbeats long-polls the group until the consumer closes: each
// heartbeat names the generation the member knows and is answered as soon
// as the group's differs, or after the heartbeat interval; the next one
// leaves at once. A failed heartbeat is resent after a backoff.
func (g *member) heartbeats() {
	c := g.c
	failures, early := 0, 0
	for c.ctx.Err() == nil {
		if c.testHang.Load() {
			if sleep(c.ctx, 10*time.Millisecond) != nil {
				return
			}
			continue
		}
		c.mu.Lock()
		id, gen, wait, last := g.id, g.generation, g.interval, g.lastBeat
		c.mu.Unlock()
		var (
			m    wire.Membership
			err  error
			sent = time.Now()
		)
		if id != "" {
			// Give up when the session is over, as far as this member can
			// tell (settle then stops delivering); once it is over, keep
			// asking.
			deadline := last.Add(c.cfg.sessionTimeout)
			if !deadline.After(sent) {
				deadline = sent.Add(wait + c.conn.reqTimeout)
			}
			ctx, cancel := context.WithDeadline(c.ctx, deadline)
			m, err = g.heartbeat(ctx, id, gen, wait)
			cancel()
		}
		if c.testHang.Load() { // a hung process does not see the answer
			continue
		}
		if !g.opMu.lock(c.ctx) {
			return
		}
		// Bounded: joins and releases are resent while they fail, and
		// the membership lock must not be held for ever.
		octx, cancel := context.WithTimeout(c.ctx, c.cfg.sessionTimeout)
		ok := g.settle(octx, id, m, err, sent, false)
		g.handover(octx)
		cancel()
		g.opMu.unlock()
		if ok {
			failures = 0
			// A broker that does not long-poll (an older one) answers at
			// once: pace the heartbeats as before then. (A broker shutting
			// down answers early once.)
			if id != "" && err == nil && m.Generation == gen && time.Since(sent) < wait/2 {
				early++
			} else {
				early = 0
			}
			if early > 1 && sleep(c.ctx, time.Until(sent.Add(wait))) != nil {
				return
			}
			continue
		}
		failures++
		if sleep(c.ctx, c.conn.backoff(failures)) != nil {
			return
		}
	}
}

// heartbeat sends one heartbeat that waits up to wait for a change of
// generation gen.
func (g *member) heartbeat(ctx context.Context, id string, gen uint64, wait time.Duration) (wire.Membership, error) {
	c := g.c
	var m wire.Membership
	req := wire.HeartbeatRequest{Generation: gen, WaitMs: wait.Milliseconds()}
	body, err := json.Marshal(req)
	if err != nil {
		return m, err
	}
	resp, err := c.conn.do(ctx, &request{method: http.MethodPost, path: g.path + "/members/" + url.PathEscape(id) + "/heartbeat",
		body: body, contentType: "application/json", write: true, retry: retryAll,
		timeout: wait + c.conn.reqTimeout, expect: wait})
	if err != nil {
		return m, err
	}
	return m, decodeJSON(resp, &m)
}

// settle applies the outcome of a heartbeat sent by member id at sent: an
// answer is applied; a member the group no longer knows joins again; a
// member whose heartbeats failed for longer than its session stops
// delivering every queue (stale: at once, the consumer's view is known to
// be out of date). id "": not a member, join. It reports whether the
// group answered. The caller holds opMu.
func (g *member) settle(ctx context.Context, id string, m wire.Membership, err error, sent time.Time, stale bool) bool {
	c := g.c
	c.mu.Lock()
	cur, last := g.id, g.lastBeat
	c.mu.Unlock()
	if id != cur { // the member joined again meanwhile: the outcome is moot
		return true
	}
	if id == "" {
		return g.rejoin(ctx)
	}
	switch code := ErrorCode(err); {
	case err == nil:
		g.apply(ctx, m, false, sent)
		return true
	case code == wire.CodeUnknownMember || code == wire.CodeGroupNotFound:
		c.log.Warn("ledgermq: the group no longer knows this member (session expired, or replaced by the same instance id?): joining again",
			"group", c.cfg.group, "member", id)
		g.rejoin(ctx)
		return true
	case c.ctx.Err() != nil:
	case stale || time.Since(last) >= c.cfg.sessionTimeout:
		c.log.Warn("ledgermq: heartbeat failed and the membership is out of date: delivering nothing until the group answers",
			"group", c.cfg.group, "member", id, "err", err)
		g.revokeAll()
	default:
		c.log.Warn("ledgermq: heartbeat failed", "group", c.cfg.group, "member", id, "err", err)
	}
	return false
}

// beat sends a heartbeat that does not wait and applies the outcome (see
// settle). The caller holds opMu.
func (g *member) beat(ctx context.Context, stale bool) {
	c := g.c
	c.mu.Lock()
	id, gen := g.id, g.generation
	c.mu.Unlock()
	var m wire.Membership
	var err error
	sent := time.Now()
	if id != "" {
		m, err = g.heartbeat(ctx, id, gen, 0)
	}
	g.settle(ctx, id, m, err, sent, stale)
	g.handover(ctx)
}

// rejoin drops every queue and joins as a new member. It reports whether
// the join succeeded. The caller holds opMu.
func (g *member) rejoin(ctx context.Context) bool {
	c := g.c
	g.revokeAll()
	c.mu.Lock()
	g.id = ""
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return true
	}
	if err := g.join(ctx); err != nil {
		if c.ctx.Err() == nil {
			c.log.Warn("ledgermq: joining the group failed; retrying", "group", c.cfg.group, "err", err)
		}
		return false
	}
	return true
}

// revokeAll stops delivering every queue, revoked or not: the member lost
// them (OnRevoked is called for those not told yet). The caller holds
// opMu.
func (g *member) revokeAll() {
	c := g.c
	c.mu.Lock()
	var lost []TopicQueue
	for tq, qs := range c.queues {
		qs.f.cancel()
		delete(c.queues, tq)
		lost = append(lost, tq)
	}
	for tq, qs := range c.revoking {
		delete(c.revoking, tq)
		if qs.f != nil && !qs.told {
			lost = append(lost, tq)
		}
	}
	c.sortQueues()
	c.mu.Unlock()
	if len(lost) > 0 {
		c.log.Info("ledgermq: lost every queue", "group", c.cfg.group, "queues", len(lost))
	}
	g.callback(c.cfg.onRevoked, lost)
}

// callback calls fn (an OnAssigned or OnRevoked callback) with queues,
// sorted, unless either is empty.
func (g *member) callback(fn func([]TopicQueue), queues []TopicQueue) {
	if fn == nil || len(queues) == 0 {
		return
	}
	sortTQ(queues)
	fn(queues)
}

func sortTQ(s []TopicQueue) {
	slices.SortFunc(s, func(a, b TopicQueue) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return a.Queue - b.Queue
	})
}

// apply makes the consumer's queues those of membership m, whose request
// was sent at sent (joined: the answer to a join, a new member id).
//
//   - A queue in Assignment it delivers already goes on untouched: it never
//     left this member (the group moves a queue only once its owner
//     released it, or removed the owner, whose id then changes).
//   - A queue in Assignment it does not deliver starts at the group's
//     committed offset (WithStartWhenNoCommit when there is none); when
//     those cannot be read now, a later answer starts it.
//   - A queue in Revoking stops at once, its buffered records discarded,
//     and waits for its hand-over (see handover). One Revoking the member
//     never delivered (a static member's predecessor owned it) is handed
//     over at once.
//   - A queue in neither is lost: the group no longer counts it as this
//     member's.
//
// An answer older than one applied already (a lower generation of the
// same member) is ignored. The caller holds opMu.
func (g *member) apply(ctx context.Context, m wire.Membership, joined bool, sent time.Time) {
	c := g.c
	c.mu.Lock()
	if c.closed || !joined && m.MemberID == g.id && m.Generation < g.generation {
		c.mu.Unlock()
		return
	}
	prevGen := g.generation
	if joined || m.MemberID != g.id || sent.After(g.lastBeat) {
		g.lastBeat = sent
	}
	g.id, g.generation = m.MemberID, m.Generation
	g.interval = time.Duration(m.HeartbeatIntervalMs) * time.Millisecond
	if g.interval <= 0 {
		g.interval = c.cfg.sessionTimeout / 3
	}
	assigned := map[TopicQueue]bool{}
	for _, tq := range m.Assignment {
		assigned[tq] = true
	}
	revoking := map[TopicQueue]bool{}
	for _, tq := range m.Revoking {
		revoking[tq] = true
	}
	var revoked, lost, added, resumed, reassigned []TopicQueue
	for tq, qs := range c.queues {
		switch {
		case assigned[tq]:
		case revoking[tq]:
			qs.f.cancel()
			delete(c.queues, tq)
			// Records of it that the latest Poll returned are processed
			// once Poll is called again: until then it waits.
			qs.pending = qs.delivered && !(qs.hasPolled && qs.polled == qs.next)
			c.revoking[tq] = qs
			revoked = append(revoked, tq)
		default:
			qs.f.cancel()
			delete(c.queues, tq)
			lost = append(lost, tq)
		}
	}
	for tq, qs := range c.revoking {
		switch {
		case revoking[tq]:
		case assigned[tq] && qs.f != nil:
			// The group changed its mind before the hand-over: the queue
			// never left, so it goes on where Poll stopped.
			delete(c.revoking, tq)
			s := c.cfg.startNoCommit
			switch {
			case qs.delivered:
				s = AtOffset(qs.next)
			case qs.hasCommitted:
				s = AtOffset(qs.committed)
			}
			nq := &queueState{f: c.startFetcher(tq, s), committed: qs.committed, hasCommitted: qs.hasCommitted}
			if qs.delivered {
				nq.next, nq.known, nq.delivered = qs.next, true, true
				nq.polled, nq.hasPolled = qs.polled, qs.hasPolled
			}
			c.queues[tq] = nq
			resumed = append(resumed, tq)
			if qs.told { // OnRevoked was called: tell it is back
				reassigned = append(reassigned, tq)
			}
		default:
			delete(c.revoking, tq)
			if qs.f != nil && !qs.told {
				lost = append(lost, tq)
			}
		}
	}
	for _, tq := range m.Revoking {
		if c.queues[tq] == nil && c.revoking[tq] == nil {
			c.revoking[tq] = &queueState{} // never delivered here: hand over at once
		}
	}
	for _, tq := range m.Assignment {
		if c.queues[tq] == nil {
			added = append(added, tq)
		}
	}
	c.sortQueues()
	c.mu.Unlock()
	if m.Generation != prevGen || len(revoked)+len(lost)+len(resumed) > 0 {
		c.log.Info("ledgermq: group membership", "group", c.cfg.group, "member", m.MemberID, "generation", m.Generation,
			"queues", len(m.Assignment), "revoking", len(m.Revoking), "stopped", len(revoked)+len(lost), "starting", len(added))
	}
	g.callback(c.cfg.onRevoked, lost)
	g.callback(c.cfg.onAssigned, reassigned)
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
	if c.closed || g.id != m.MemberID {
		c.mu.Unlock()
		return
	}
	started := added[:0]
	for _, tq := range added {
		if c.queues[tq] != nil || c.revoking[tq] != nil {
			continue
		}
		qs := &queueState{}
		s := c.cfg.startNoCommit
		if off, ok := committed[tq]; ok {
			s, qs.committed, qs.hasCommitted = AtOffset(off), off, true
		}
		qs.f = c.startFetcher(tq, s)
		c.queues[tq] = qs
		started = append(started, tq)
	}
	c.sortQueues()
	c.mu.Unlock()
	g.callback(c.cfg.onAssigned, started)
}

// handover releases the revoked queues whose records the application has
// processed (not pending: nothing of the queue was returned since the
// latest Poll call began): it calls OnRevoked for them, then, in one
// request, commits their positions (with auto-commit) and gives them up.
// A queue whose release fails stays revoked and is released by a later
// call. The caller holds opMu.
func (g *member) handover(ctx context.Context) {
	c := g.c
	c.mu.Lock()
	id := g.id
	var ready, tell []TopicQueue
	for tq, qs := range c.revoking {
		if qs.pending {
			continue
		}
		ready = append(ready, tq)
		if qs.f != nil && !qs.told {
			qs.told = true
			tell = append(tell, tq)
		}
	}
	c.mu.Unlock()
	if id == "" || len(ready) == 0 {
		return
	}
	g.callback(c.cfg.onRevoked, tell)
	// Bounded: a member that cannot release within its session is removed
	// by the group anyway.
	ctx, cancel := context.WithTimeout(ctx, c.cfg.sessionTimeout)
	defer cancel()
	if err := g.release(ctx, ready); err != nil && c.ctx.Err() == nil {
		c.log.Warn("ledgermq: releasing revoked queues failed; retrying", "group", c.cfg.group, "err", err)
	}
}

// release commits the positions of revoked queues (with auto-commit) and
// gives them up, then applies the answer. The caller holds opMu.
func (g *member) release(ctx context.Context, queues []TopicQueue) error {
	c := g.c
	c.commitMu.Lock()
	c.mu.Lock()
	id, gen := g.id, g.generation
	req := wire.ReleaseRequest{Queues: append([]TopicQueue(nil), queues...)}
	sortTQ(req.Queues)
	for _, tq := range req.Queues {
		qs := c.revoking[tq]
		if qs != nil && c.cfg.autoCommit > 0 && qs.delivered && (!qs.hasCommitted || qs.next != qs.committed) {
			req.Offsets = append(req.Offsets, wire.CommitOffset{Topic: tq.Topic, Queue: tq.Queue, Offset: qs.next})
		}
	}
	c.mu.Unlock()
	var m wire.Membership
	err := c.conn.postJSON(ctx, g.path+"/members/"+url.PathEscape(id)+"/release", req, &m, retryAll)
	if err == nil {
		c.mu.Lock()
		for _, tq := range req.Queues {
			delete(c.revoking, tq)
		}
		c.mu.Unlock()
	}
	c.commitMu.Unlock()
	switch code := ErrorCode(err); {
	case err == nil:
		c.log.Info("ledgermq: released queues", "group", c.cfg.group, "member", id, "queues", len(req.Queues),
			"committed", len(req.Offsets))
		g.apply(ctx, m, false, time.Time{}) // a release is no heartbeat
		return nil
	case code == wire.CodeUnknownMember || code == wire.CodeGroupNotFound:
		// The group removed the member; the heartbeats find out and join
		// again.
		return fmt.Errorf("ledgermq: release to group %s as %s: %w", c.cfg.group, id, err)
	}
	return fmt.Errorf("ledgermq: release to group %s as %s (generation %d): %w", c.cfg.group, id, gen, err)
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
// refusal brings the membership up to date (see Consumer.Commit) unless a
// membership change is under way (which does that itself: the refusal
// may come from a callback it is running). The caller holds c.commitMu.
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
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if !closed && g.opMu.tryLock() {
			c.commitMu.Unlock() // a hand-over commits too
			g.beat(ctx, true)
			g.opMu.unlock()
			c.commitMu.Lock()
		}
	}
	return err
}

// close ends the membership for Close, once every goroutine of the
// consumer stopped: OnRevoked for every queue still owned, then (with
// auto-commit) the positions of what Poll returned are committed, revoked
// queues are released, and a dynamic member leaves; a static one stays,
// its queues waiting for its restart. The caller holds opMu if it could
// get it.
func (g *member) close(ctx context.Context) []error {
	c := g.c
	c.mu.Lock()
	id := g.id
	var tell, revoked []TopicQueue
	offsets := map[TopicQueue]uint64{}
	fs := map[TopicQueue]*fetcher{}
	for tq, qs := range c.queues {
		tell = append(tell, tq)
		if qs.delivered && (!qs.hasCommitted || qs.next != qs.committed) {
			offsets[tq], fs[tq] = qs.next, qs.f
		}
	}
	for tq, qs := range c.revoking {
		revoked = append(revoked, tq)
		if qs.f != nil && !qs.told {
			qs.told = true
			tell = append(tell, tq)
		}
		// Everything Poll returned counts as processed now.
		qs.pending = false
	}
	c.mu.Unlock()
	if id == "" {
		return nil
	}
	g.callback(c.cfg.onRevoked, tell)
	var errs []error
	if c.cfg.autoCommit > 0 && len(offsets) > 0 {
		c.commitMu.Lock()
		if err := g.commit(ctx, offsets, fs); err != nil {
			errs = append(errs, err)
		}
		c.commitMu.Unlock()
	}
	if len(revoked) > 0 {
		if err := g.release(ctx, revoked); err != nil {
			errs = append(errs, err)
		}
	}
	if c.cfg.instanceID == "" {
		if err := g.leave(ctx); err != nil {
			errs = append(errs, err)
		}
	} else {
		c.log.Info("ledgermq: static member closed without leaving", "group", c.cfg.group, "member", id,
			"instance", c.cfg.instanceID)
	}
	return errs
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
