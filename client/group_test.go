package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// fakeGroup is a one-node broker in memory (an http.RoundTripper) with one
// topic "t" and one group "g" that speaks the cooperative group protocol:
// long-poll heartbeats, Revoking, release, static instance ids. The test
// moves queues itself (set); the fake records what the members send. No
// sockets: the consumer runs in a synctest bubble, in fake time.
type fakeGroup struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change (group or logs)
	gen     uint64
	members map[string]*fakeMember
	nextID  int
	joinQs  []TopicQueue // what a new member is assigned
	queues  int
	logs    []uint64 // messages per queue
	commit  map[TopicQueue]uint64
	session time.Duration

	// What the members sent.
	joins      []wire.JoinGroupRequest
	releases   []wire.ReleaseRequest
	commits    []wire.CommitRequest
	left       []string
	heartbeats int
	events     []string // releases and commits, in order ("release t/1@10", "commit t/0@5")
	// oldStyle: heartbeats answer at once (a broker without long polls).
	oldStyle bool
	down     atomic.Bool // every request fails: unreachable
}

type fakeMember struct {
	instance             string
	assignment, revoking []TopicQueue
}

func newFakeGroup(queues int, joinQs ...int) *fakeGroup {
	fg := &fakeGroup{changed: make(chan struct{}), members: map[string]*fakeMember{}, queues: queues,
		logs: make([]uint64, queues), commit: map[TopicQueue]uint64{}, session: 3 * time.Second}
	for _, q := range joinQs {
		fg.joinQs = append(fg.joinQs, TopicQueue{Topic: "t", Queue: q})
	}
	return fg
}

func tqs(qs ...int) []TopicQueue {
	out := []TopicQueue{}
	for _, q := range qs {
		out = append(out, TopicQueue{Topic: "t", Queue: q})
	}
	return out
}

// bump records a change; the caller holds mu.
func (fg *fakeGroup) bump(group bool) {
	if group {
		fg.gen++
	}
	close(fg.changed)
	fg.changed = make(chan struct{})
}

// set gives member id the assignment and revoking queues given.
func (fg *fakeGroup) set(id string, assignment, revoking []TopicQueue) {
	fg.mu.Lock()
	defer fg.mu.Unlock()
	fg.members[id].assignment, fg.members[id].revoking = assignment, revoking
	fg.bump(true)
}

// produce appends n messages to queue q.
func (fg *fakeGroup) produce(q int, n uint64) {
	fg.mu.Lock()
	defer fg.mu.Unlock()
	fg.logs[q] += n
	fg.bump(false)
}

func (fg *fakeGroup) log() []string {
	fg.mu.Lock()
	defer fg.mu.Unlock()
	return slices.Clone(fg.events)
}

func (fg *fakeGroup) membership(id string) wire.Membership {
	m := fg.members[id]
	return wire.Membership{Group: "g", MemberID: id, Generation: fg.gen, Assignment: slices.Clone(m.assignment),
		Revoking: slices.Clone(m.revoking), HeartbeatIntervalMs: (fg.session / 3).Milliseconds(),
		SessionTimeoutMs: fg.session.Milliseconds()}
}

func fakeErr(status int, code string) (*http.Response, error) {
	b, _ := json.Marshal(wire.ErrorBody{Error: wire.APIError{Code: code, Message: code, NotApplied: true}})
	return &http.Response{StatusCode: status, Body: io.NopCloser(bytes.NewReader(b))}, nil
}

func (fg *fakeGroup) RoundTrip(r *http.Request) (*http.Response, error) {
	if fg.down.Load() {
		return nil, io.ErrUnexpectedEOF
	}
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
	}
	p := r.URL.Path
	switch {
	case p == "/v1/cluster":
		return memJSON(wire.ClusterStatus{Leader: "n1", LeaderAPI: memAddr, Nodes: []wire.ClusterNode{{ID: "n1", APIAddr: memAddr, Role: "leader", Reachable: true}}})
	case p == "/v1/leader":
		return memJSON(wire.LeaderView{Leader: "n1", LeaderAPI: memAddr, Term: 1})
	case p == "/v1/topics/t":
		fg.mu.Lock()
		info := wire.TopicInfo{Name: "t", Queues: fg.queues, MaxMessageBytes: 1 << 20}
		for q, n := range fg.logs {
			info.QueueInfo = append(info.QueueInfo, wire.QueueInfo{Queue: q, Next: n})
		}
		fg.mu.Unlock()
		return memJSON(info)
	case strings.HasPrefix(p, "/v1/topics/t/queues/"):
		q, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(p, "/v1/topics/t/queues/"), "/batches"))
		return fg.fetch(r, q)
	case p == "/v1/groups/g" && r.Method == http.MethodGet:
		fg.mu.Lock()
		defer fg.mu.Unlock()
		gi := wire.GroupInfo{Group: "g", Generation: fg.gen}
		for q := range fg.queues {
			gq := wire.GroupQueue{Topic: "t", Queue: q}
			if off, ok := fg.commit[TopicQueue{Topic: "t", Queue: q}]; ok {
				gq.Committed = &off
			}
			gi.Queues = append(gi.Queues, gq)
		}
		return memJSON(gi)
	case p == "/v1/groups/g/members":
		var req wire.JoinGroupRequest
		json.Unmarshal(body, &req)
		fg.mu.Lock()
		defer fg.mu.Unlock()
		fg.joins = append(fg.joins, req)
		fg.nextID++
		id := fmt.Sprintf("m%d", fg.nextID)
		m := &fakeMember{instance: req.InstanceID, assignment: slices.Clone(fg.joinQs)}
		for old, om := range fg.members {
			if req.InstanceID != "" && om.instance == req.InstanceID {
				m.assignment, m.revoking = om.assignment, om.revoking
				delete(fg.members, old)
			}
		}
		fg.members[id] = m
		fg.bump(true)
		return memJSON(fg.membership(id))
	case p == "/v1/groups/g/offsets":
		var req wire.CommitRequest
		json.Unmarshal(body, &req)
		fg.mu.Lock()
		defer fg.mu.Unlock()
		m := fg.members[req.MemberID]
		if m == nil {
			return fakeErr(400, wire.CodeUnknownMember)
		}
		for _, o := range req.Offsets {
			tq := TopicQueue{Topic: o.Topic, Queue: o.Queue}
			if !slices.Contains(m.assignment, tq) && !slices.Contains(m.revoking, tq) {
				return fakeErr(409, wire.CodeNotAssigned)
			}
		}
		fg.commits = append(fg.commits, req)
		for _, o := range req.Offsets {
			fg.commit[TopicQueue{Topic: o.Topic, Queue: o.Queue}] = o.Offset
			fg.events = append(fg.events, fmt.Sprintf("commit %s/%d@%d", o.Topic, o.Queue, o.Offset))
		}
		return memJSON(struct{}{})
	case strings.HasPrefix(p, "/v1/groups/g/members/"):
		rest := strings.TrimPrefix(p, "/v1/groups/g/members/")
		id, op, _ := strings.Cut(rest, "/")
		switch {
		case r.Method == http.MethodDelete:
			fg.mu.Lock()
			defer fg.mu.Unlock()
			if fg.members[id] == nil {
				return fakeErr(400, wire.CodeUnknownMember)
			}
			delete(fg.members, id)
			fg.left = append(fg.left, id)
			fg.bump(true)
			return memJSON(struct{}{})
		case op == "heartbeat":
			return fg.heartbeat(r, id, body)
		case op == "release":
			var req wire.ReleaseRequest
			json.Unmarshal(body, &req)
			fg.mu.Lock()
			defer fg.mu.Unlock()
			m := fg.members[id]
			if m == nil {
				return fakeErr(400, wire.CodeUnknownMember)
			}
			fg.releases = append(fg.releases, req)
			for _, o := range req.Offsets {
				tq := TopicQueue{Topic: o.Topic, Queue: o.Queue}
				if slices.Contains(m.revoking, tq) && slices.Contains(req.Queues, tq) {
					fg.commit[tq] = o.Offset
					fg.events = append(fg.events, fmt.Sprintf("commit %s/%d@%d", o.Topic, o.Queue, o.Offset))
				}
			}
			for _, tq := range req.Queues {
				if slices.Contains(m.revoking, tq) {
					fg.events = append(fg.events, fmt.Sprintf("release %s/%d", tq.Topic, tq.Queue))
				}
			}
			m.revoking = slices.DeleteFunc(m.revoking, func(tq TopicQueue) bool { return slices.Contains(req.Queues, tq) })
			fg.bump(true)
			return memJSON(fg.membership(id))
		}
	}
	return fakeErr(404, wire.CodeNotFound)
}

func (fg *fakeGroup) heartbeat(r *http.Request, id string, body []byte) (*http.Response, error) {
	var req wire.HeartbeatRequest
	json.Unmarshal(body, &req)
	fg.mu.Lock()
	fg.heartbeats++
	wait := time.Duration(min(req.WaitMs, (fg.session/3).Milliseconds())) * time.Millisecond
	if fg.oldStyle {
		wait = 0
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for fg.members[id] != nil && fg.gen == req.Generation && wait > 0 {
		ch := fg.changed
		fg.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			wait = 0
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
		fg.mu.Lock()
	}
	defer fg.mu.Unlock()
	if fg.members[id] == nil {
		return fakeErr(400, wire.CodeUnknownMember)
	}
	return memJSON(fg.membership(id))
}

// fetch serves the records of queue q from the offset asked, as one
// batch, waiting up to wait_ms for some.
func (fg *fakeGroup) fetch(r *http.Request, q int) (*http.Response, error) {
	off, _ := strconv.ParseUint(r.URL.Query().Get("offset"), 10, 64)
	waitMs, _ := strconv.Atoi(r.URL.Query().Get("wait_ms"))
	timer := time.NewTimer(time.Duration(waitMs) * time.Millisecond)
	defer timer.Stop()
	fg.mu.Lock()
	for fg.logs[q] <= off && waitMs > 0 {
		ch := fg.changed
		fg.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			waitMs = 0
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
		fg.mu.Lock()
	}
	end := fg.logs[q]
	fg.mu.Unlock()
	var out []byte
	if end > off {
		var msgs []wire.Message
		for i := off; i < end; i++ {
			msgs = append(msgs, wire.Message{Value: []byte(fmt.Sprintf("q%d-%d", q, i))})
		}
		raw, err := wire.Encode(msgs, wire.CodecNone, wire.Producer{}, 1, time.Now())
		if err != nil {
			return nil, err
		}
		out = binary.LittleEndian.AppendUint64(out, off)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(raw)))
		out = append(out, raw...)
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"X-Next-Offset": {strconv.FormatUint(max(end, off), 10)}},
		Body: io.NopCloser(bytes.NewReader(out))}, nil
}

// callbackLog records rebalance callbacks, and the fake's events at the
// time of each.
type callbackLog struct {
	mu     sync.Mutex
	fg     *fakeGroup
	events []string
}

func (l *callbackLog) opts() ConsumerOpt {
	rec := func(kind string) func([]TopicQueue) {
		return func(qs []TopicQueue) {
			l.mu.Lock()
			defer l.mu.Unlock()
			for _, tq := range qs {
				l.events = append(l.events, fmt.Sprintf("%s %s/%d (fake: %d events)", kind, tq.Topic, tq.Queue, len(l.fg.log())))
			}
		}
	}
	return WithRebalanceCallbacks(rec("assigned"), rec("revoked"))
}

func (l *callbackLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

func fakeConsumer(t *testing.T, fg *fakeGroup, opts ...ConsumerOpt) *Consumer {
	t.Helper()
	opts = append([]ConsumerOpt{WithHTTPClient(&http.Client{Transport: fg}), WithLogger(testLogger(t)),
		WithGroup("g", "t"), WithSessionTimeout(fg.session), WithMaxWait(time.Second)}, opts...)
	c, err := NewConsumer([]string{memAddr}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pollN polls until it has n records (fake time: fails after a minute).
func pollN(t *testing.T, c *Consumer, n int) []Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []Record
	for len(out) < n {
		recs, err := c.Poll(ctx)
		if err != nil {
			t.Fatalf("poll after %d records: %v", len(out), err)
		}
		out = append(out, recs...)
	}
	return out
}

func countByQueue(recs []Record) map[int]int {
	out := map[int]int{}
	for _, r := range recs {
		out[r.Queue]++
	}
	return out
}

// TestHandoverAtPollBoundary: a queue revoked while the application
// processes records of it that Poll returned is released, with those
// records committed, at the start of the next Poll, before it returns
// anything; OnRevoked comes first. The queue that stays keeps flowing from
// where it was.
func TestHandoverAtPollBoundary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fg := newFakeGroup(2, 0, 1)
		fg.produce(0, 10)
		cl := &callbackLog{fg: fg}
		c := fakeConsumer(t, fg, cl.opts())
		defer c.Close()
		got := pollN(t, c, 10)
		fg.produce(1, 10)
		got = append(got, pollN(t, c, 10)...) // the latest Poll returned queue 1's records
		if n := countByQueue(got); n[0] != 10 || n[1] != 10 {
			t.Fatalf("polled %v", n)
		}
		// The application is processing: queue 1 is revoked meanwhile.
		fg.set("m1", tqs(0), tqs(1))
		synctest.Wait()
		if ev := fg.log(); len(ev) != 0 {
			t.Fatalf("released while the application processed the queue's records: %v", ev)
		}
		if a := c.Assignment(); !slices.Equal(a, tqs(0)) {
			t.Fatalf("assignment %v", a)
		}
		fg.produce(0, 5)
		fg.produce(1, 5)
		recs := pollN(t, c, 5)
		if ev := fg.log(); !slices.Equal(ev, []string{"commit t/1@10", "release t/1"}) {
			t.Fatalf("fake events after the next Poll: %v", ev)
		}
		for _, r := range recs {
			if r.Queue != 0 || r.Offset < 10 {
				t.Fatalf("after the revocation Poll returned %s/%d@%d", r.Topic, r.Queue, r.Offset)
			}
		}
		cb := cl.get()
		if !slices.Equal(cb, []string{"assigned t/0 (fake: 0 events)", "assigned t/1 (fake: 0 events)", "revoked t/1 (fake: 0 events)"}) {
			t.Fatalf("callbacks %v", cb)
		}
		fg.mu.Lock()
		rel := fg.releases
		fg.mu.Unlock()
		if len(rel) != 1 || !slices.Equal(rel[0].Queues, tqs(1)) || len(rel[0].Offsets) != 1 || rel[0].Offsets[0].Offset != 10 {
			t.Fatalf("releases %+v", rel)
		}
	})
}

// TestHandoverBlockedPoll: a queue revoked while Poll waits (nothing of it
// outstanding) is released at once, from the heartbeat goroutine, with
// the records returned before committed; the group learns of it in no
// time (the heartbeat is a long poll).
func TestHandoverBlockedPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fg := newFakeGroup(2, 0, 1)
		fg.produce(0, 3)
		fg.produce(1, 4)
		c := fakeConsumer(t, fg)
		defer c.Close()
		pollN(t, c, 7)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		polled := make(chan []Record, 1)
		go func() { recs, _ := c.Poll(ctx); polled <- recs }()
		time.Sleep(time.Second) // Poll waits; heartbeats are in flight
		synctest.Wait()
		start := time.Now()
		fg.set("m1", tqs(0), tqs(1))
		synctest.Wait()
		if el := time.Since(start); el != 0 {
			t.Fatalf("released after %v of fake time", el)
		}
		if ev := fg.log(); !slices.Equal(ev, []string{"commit t/1@4", "release t/1"}) {
			t.Fatalf("fake events with Poll blocked: %v", ev)
		}
		select {
		case recs := <-polled:
			t.Fatalf("the blocked Poll returned %v", recs)
		default:
		}
		fg.produce(0, 1)
		if recs := <-polled; len(recs) != 1 || recs[0].Queue != 0 || recs[0].Offset != 3 {
			t.Fatalf("poll returned %+v", recs)
		}
	})
}

// TestKeptQueuesNotRestarted: generations that leave a queue with its
// member (others join, leave, move other queues) do not restart it: the
// same fetcher goes on, nothing is delivered twice.
func TestKeptQueuesNotRestarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fg := newFakeGroup(3, 0, 1, 2)
		fg.produce(0, 5)
		c := fakeConsumer(t, fg)
		defer c.Close()
		pollN(t, c, 5)
		c.mu.Lock()
		f0 := c.queues[TopicQueue{Topic: "t", Queue: 0}].f
		c.mu.Unlock()
		// Several generations pass, some while the consumer is cut off
		// from them (it sees only the last one).
		fg.mu.Lock()
		fg.gen += 5
		fg.bump(true)
		fg.mu.Unlock()
		synctest.Wait()
		fg.set("m1", tqs(0, 1), tqs(2))
		synctest.Wait()
		fg.set("m1", tqs(0, 1), nil)
		synctest.Wait()
		fg.produce(0, 2)
		recs := pollN(t, c, 2)
		if recs[0].Offset != 5 || recs[1].Offset != 6 {
			t.Fatalf("after the rebalances: %+v", recs)
		}
		c.mu.Lock()
		f := c.queues[TopicQueue{Topic: "t", Queue: 0}].f
		c.mu.Unlock()
		if f != f0 {
			t.Fatal("queue 0 was restarted")
		}
		if ev := fg.log(); !slices.Equal(ev, []string{"release t/2"}) { // nothing delivered of 2: nothing committed
			t.Fatalf("fake events %v", ev)
		}
	})
}

// TestRevocationCancelled: a queue revoked, then given back before its
// hand-over (the group changed its mind), resumes where Poll stopped.
func TestRevocationCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fg := newFakeGroup(1, 0)
		fg.produce(0, 5)
		c := fakeConsumer(t, fg)
		defer c.Close()
		pollN(t, c, 5)
		fg.set("m1", nil, tqs(0)) // pending: Poll not called since
		synctest.Wait()
		fg.set("m1", tqs(0), nil)
		synctest.Wait()
		fg.produce(0, 1)
		if recs := pollN(t, c, 1); recs[0].Offset != 5 {
			t.Fatalf("resumed at %d", recs[0].Offset)
		}
		if ev := fg.log(); len(ev) != 0 {
			t.Fatalf("fake events %v", ev)
		}
	})
}

// TestCloseStaticAndDynamic: Close commits what Poll returned; a dynamic
// member then leaves, a static one (WithInstanceID) does not, and its
// successor under the same instance id takes over its queues, handing
// over at once a revoked one it never delivered.
func TestCloseStaticAndDynamic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fg := newFakeGroup(2, 0, 1)
		fg.produce(0, 3)
		fg.produce(1, 2)
		s := fakeConsumer(t, fg, WithInstanceID("host-a"))
		pollN(t, s, 5)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		fg.mu.Lock()
		left, members, join := slices.Clone(fg.left), len(fg.members), fg.joins[0]
		fg.mu.Unlock()
		if len(left) != 0 || members != 1 || join.InstanceID != "host-a" {
			t.Fatalf("static close: left %v, %d members, join %+v", left, members, join)
		}
		if ev := fg.log(); !slices.Equal(ev, []string{"commit t/0@3", "commit t/1@2"}) {
			t.Fatalf("static close committed %v", ev)
		}

		// The group decided meanwhile to move queue 1 away.
		fg.set("m1", tqs(0), tqs(1))
		s2 := fakeConsumer(t, fg, WithInstanceID("host-a"))
		synctest.Wait()
		if a := s2.Assignment(); !slices.Equal(a, tqs(0)) {
			t.Fatalf("successor's assignment %v", a)
		}
		fg.mu.Lock()
		_, old := fg.members["m1"]
		fg.mu.Unlock()
		if ev := fg.log(); old || !slices.Equal(ev[2:], []string{"release t/1"}) {
			t.Fatalf("successor: m1 still a member %v, events %v", old, ev)
		}
		fg.produce(0, 1)
		if recs := pollN(t, s2, 1); recs[0].Offset != 3 {
			t.Fatalf("successor starts at %d", recs[0].Offset)
		}

		// A dynamic member commits and leaves.
		if err := s2.Close(); err != nil {
			t.Fatal(err)
		}
		d := fakeConsumer(t, fg)
		fg.produce(0, 1)
		recs := pollN(t, d, 1)
		if recs[0].Offset != 4 || recs[0].Queue != 0 {
			t.Fatalf("dynamic member got %+v", recs[0])
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		fg.mu.Lock()
		left = slices.Clone(fg.left)
		fg.mu.Unlock()
		if ev := fg.log(); !slices.Equal(left, []string{"m3"}) || ev[len(ev)-1] != "commit t/0@5" {
			t.Fatalf("dynamic close: left %v, events %v", left, ev)
		}
	})
}

// TestManualCommitHandover: without auto-commit the consumer commits
// nothing by itself: the revoked queue is released without offsets, after
// OnRevoked, in which the application may commit it.
func TestManualCommitHandover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fg := newFakeGroup(2, 0, 1)
		fg.produce(0, 2)
		fg.produce(1, 3)
		var c *Consumer
		onRevoked := func(qs []TopicQueue) {
			if !slices.Equal(qs, tqs(1)) { // Close: the application commits nothing
				return
			}
			if err := c.CommitOffsets(context.Background(), map[TopicQueue]uint64{qs[0]: 2}); err != nil {
				t.Errorf("commit in OnRevoked: %v", err)
			}
		}
		c = fakeConsumer(t, fg, WithAutoCommit(0), WithRebalanceCallbacks(nil, onRevoked))
		pollN(t, c, 5)
		fg.set("m1", tqs(0), tqs(1))
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c.Poll(ctx)
		if ev := fg.log(); !slices.Equal(ev, []string{"commit t/1@2", "release t/1"}) {
			t.Fatalf("events %v", ev)
		}
		fg.mu.Lock()
		rel := fg.releases[0]
		fg.mu.Unlock()
		if len(rel.Offsets) != 0 {
			t.Fatalf("released with offsets %+v", rel.Offsets)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if ev := fg.log(); len(ev) != 2 {
			t.Fatalf("Close committed without auto-commit: %v", ev)
		}
	})
}

// TestLongPollHeartbeat: heartbeats wait at the broker, so a change
// reaches the member at once, and an idle member sends about one
// heartbeat per interval (a third of the session); against a broker that
// answers at once (no long polls) it paces them the same.
func TestLongPollHeartbeat(t *testing.T) {
	for _, old := range []bool{false, true} {
		t.Run(fmt.Sprintf("oldStyle=%v", old), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fg := newFakeGroup(2, 0)
				fg.oldStyle = old
				c := fakeConsumer(t, fg)
				defer c.Close()
				time.Sleep(10 * time.Second)
				synctest.Wait()
				fg.mu.Lock()
				n := fg.heartbeats
				fg.mu.Unlock()
				if n < 9 || n > 12 { // 10 s, one per second (session 3 s); an old broker's first early answer is taken for a shutdown
					t.Fatalf("%d heartbeats in 10 s", n)
				}
				start := time.Now()
				fg.set("m1", tqs(0, 1), nil)
				synctest.Wait()
				for !slices.Equal(c.Assignment(), tqs(0, 1)) {
					time.Sleep(time.Millisecond)
					synctest.Wait()
				}
				el := time.Since(start)
				t.Logf("a change reached the member after %v of fake time", el)
				if !old && el != 0 {
					t.Fatalf("the change took %v", el)
				}
			})
		})
	}
}

// TestSessionSafety: heartbeats that fail for longer than the session
// stop every queue; the member that was removed meanwhile joins again.
func TestSessionSafety(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fg := newFakeGroup(1, 0)
		fg.produce(0, 2)
		var lost []TopicQueue
		c := fakeConsumer(t, fg, WithRebalanceCallbacks(nil, func(qs []TopicQueue) { lost = append(lost, qs...) }))
		defer c.Close()
		pollN(t, c, 2)
		fg.down.Store(true)
		start := time.Now()
		for len(c.Assignment()) > 0 {
			time.Sleep(time.Millisecond)
		}
		el := time.Since(start)
		t.Logf("stopped delivering %v after the heartbeats began failing", el)
		// The latest heartbeat answered was sent at the start (the join).
		if el > fg.session+time.Millisecond {
			t.Fatalf("delivered for %v without a heartbeat; session %v", el, fg.session)
		}
		if !slices.Equal(lost, tqs(0)) {
			t.Fatalf("OnRevoked got %v", lost)
		}
		fg.mu.Lock()
		delete(fg.members, "m1")
		fg.mu.Unlock()
		fg.down.Store(false)
		for len(c.Assignment()) == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		fg.mu.Lock()
		_, rejoined := fg.members["m2"]
		fg.mu.Unlock()
		if !rejoined {
			t.Fatal("did not join again")
		}
	})
}
