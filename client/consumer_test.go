package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/broker"
	"github.com/ledgermq/ledgermq/internal/brokertest"
	"github.com/ledgermq/ledgermq/wire"
)

// consLeader is the node that accepts writes now, or nil.
func consLeader(bs []*broker.Broker) *broker.Broker {
	for _, b := range bs {
		if b.Service().RequireLeader() == nil {
			return b
		}
	}
	return nil
}

func consWait(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// consAPI calls the broker API at addr and decodes a 2xx answer into out.
func consAPI(t *testing.T, method, addr, path, ctype string, body []byte, out any) {
	t.Helper()
	if status, raw := consCall(t, method, addr, path, ctype, body, out); status/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, status, raw)
	}
}

func consCall(t *testing.T, method, addr, path, ctype string, body []byte, out any) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+addr+path, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 == 2 && out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode, raw
}

// consWrite sends a write to the leader, again while the group answers
// that it has none ready (421, 503).
func consWrite(t *testing.T, bs []*broker.Broker, method, path, ctype string, body []byte, out any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, raw := http.StatusMisdirectedRequest, []byte("no leader")
		if l := consLeader(bs); l != nil {
			status, raw = consCall(t, method, l.Addr(), path, ctype, body, out)
		}
		switch {
		case status/100 == 2:
			return
		case (status == http.StatusMisdirectedRequest || status == http.StatusServiceUnavailable) && time.Now().Before(deadline):
			time.Sleep(20 * time.Millisecond)
		default:
			t.Fatalf("%s %s: %d %s", method, path, status, raw)
		}
	}
}

func consCreateTopic(t *testing.T, bs []*broker.Broker, name string, queues int) {
	t.Helper()
	consWrite(t, bs, "POST", "/v1/topics", "", fmt.Appendf(nil, `{"name":%q,"queues":%d}`, name, queues), nil)
}

// consValue is the value of the i-th message produced to a queue.
func consValue(q int, i uint64) string { return fmt.Sprintf("q%d-m%d", q, i) }

// consProduce stores n messages in queue q as batches of up to 7 messages,
// with the codecs in turn; message i (counted from first) has the value
// consValue(q, i), key "k<i>" and a header, and timestamp ts(i) when ts is
// not nil.
func consProduce(t *testing.T, bs []*broker.Broker, topic string, q int, first, n uint64, ts func(uint64) time.Time) {
	t.Helper()
	codecs := []wire.Codec{wire.CodecNone, wire.CodecZstd, wire.CodecS2, wire.CodecGzip, wire.CodecSnappy}
	for i, b := first, 0; i < first+n; b++ {
		var msgs []wire.Message
		for ; i < first+n && len(msgs) < 7; i++ {
			m := wire.Message{Key: fmt.Appendf(nil, "k%d", i), Value: []byte(consValue(q, i)),
				Headers: []wire.Header{{Key: "i", Value: fmt.Appendf(nil, "%d", i)}}}
			if ts != nil {
				m.Timestamp = ts(i)
			}
			msgs = append(msgs, m)
		}
		raw, err := wire.Encode(msgs, codecs[b%len(codecs)], wire.Producer{}, 1, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		consWrite(t, bs, "POST", fmt.Sprintf("/v1/topics/%s/queues/%d/batches", topic, q), wire.ContentType, raw, nil)
	}
}

// pollUntil polls c until cond holds for all records received so far.
func pollUntil(t *testing.T, c *Consumer, d time.Duration, got []Record, cond func([]Record) bool) []Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for !cond(got) {
		recs, err := c.Poll(ctx)
		if err != nil {
			t.Fatalf("poll: %v (after %d records)", err, len(got))
		}
		got = append(got, recs...)
	}
	return got
}

func byQueue(recs []Record) map[int][]Record {
	out := map[int][]Record{}
	for _, r := range recs {
		out[r.Queue] = append(out[r.Queue], r)
	}
	return out
}

// checkRun checks that recs of queue q are messages from..to-1, in order.
func checkRun(t *testing.T, recs []Record, q int, from, to uint64) {
	t.Helper()
	if uint64(len(recs)) != to-from {
		t.Fatalf("queue %d: %d records, want %d (%d..%d)", q, len(recs), to-from, from, to-1)
	}
	for k, r := range recs {
		i := from + uint64(k)
		if r.Topic != "t" || r.Offset != i || string(r.Value) != consValue(q, i) || string(r.Key) != fmt.Sprintf("k%d", i) ||
			len(r.Headers) != 1 || string(r.Headers[0].Value) != fmt.Sprint(i) {
			t.Fatalf("queue %d, record %d: %+v", q, k, r)
		}
	}
}

func TestConsumerAssignment(t *testing.T) {
	bs := brokertest.Group(t, 1, nil)
	consCreateTopic(t, bs, "t", 3)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	consProduce(t, bs, "t", 0, 0, 100, nil)
	consProduce(t, bs, "t", 1, 0, 50, func(i uint64) time.Time { return base.Add(time.Duration(i) * time.Second) })

	c, err := NewConsumer(brokertest.Addrs(bs),
		WithAssignment("t", map[int]Start{0: AtStart(), 1: AtOffset(20), 2: AtEnd()}),
		WithFetchMaxBytes(300), WithMaxWait(100*time.Millisecond), WithPrefetch(1),
		WithRetryBackoff(time.Millisecond, 5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := pollUntil(t, c, 10*time.Second, nil, func(r []Record) bool { return len(r) >= 130 })
	qs := byQueue(got)
	checkRun(t, qs[0], 0, 0, 100)
	checkRun(t, qs[1], 1, 20, 50)
	if len(qs[2]) != 0 {
		t.Fatalf("queue 2 started at its end but returned %d records", len(qs[2]))
	}
	if !qs[1][0].Timestamp.Equal(base.Add(20 * time.Second)) {
		t.Fatalf("timestamp %v, want %v", qs[1][0].Timestamp, base.Add(20*time.Second))
	}

	// New messages reach a long-polling consumer.
	consProduce(t, bs, "t", 2, 0, 5, nil)
	got = pollUntil(t, c, 5*time.Second, nil, func(r []Record) bool { return len(r) >= 5 })
	checkRun(t, got, 2, 0, 5)
	lag, err := c.Lag(context.Background())
	if err != nil || len(lag) != 3 || lag[TopicQueue{Topic: "t", Queue: 0}] != 0 || lag[TopicQueue{Topic: "t", Queue: 2}] != 0 {
		t.Fatalf("lag %v, %v", lag, err)
	}

	// Seek: by offset, by time, and past the end (restarts at the earliest
	// offset once the brokers keep saying so).
	if err := c.Seek("t", 0, AtOffset(90)); err != nil {
		t.Fatal(err)
	}
	if err := c.Seek("t", 1, AtTime(base.Add(40*time.Second))); err != nil {
		t.Fatal(err)
	}
	got = pollUntil(t, c, 5*time.Second, nil, func(r []Record) bool { return len(r) >= 20 })
	qs = byQueue(got)
	checkRun(t, qs[0], 0, 90, 100)
	checkRun(t, qs[1], 1, 40, 50)
	if err := c.Seek("t", 2, AtOffset(1000)); err != nil {
		t.Fatal(err)
	}
	got = pollUntil(t, c, 5*time.Second, nil, func(r []Record) bool { return len(r) >= 5 })
	checkRun(t, got, 2, 0, 5)
	if lag, _ := c.Lag(context.Background()); lag[TopicQueue{Topic: "t", Queue: 1}] != 0 {
		t.Fatalf("lag after seeking %v", lag)
	}

	if err := c.Seek("t", 7, AtStart()); ErrorCode(err) != wire.CodeNotAssigned {
		t.Fatalf("seek of a queue not assigned: %v", err)
	}
	if err := c.Commit(context.Background()); err != ErrNoGroup {
		t.Fatalf("commit without a group: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Poll(context.Background()); err != ErrConsumerClosed {
		t.Fatalf("poll after close: %v", err)
	}
}

func TestConsumerMissingQueue(t *testing.T) {
	bs := brokertest.Group(t, 1, nil)
	consCreateTopic(t, bs, "t", 1)
	c, err := NewConsumer(brokertest.Addrs(bs), WithAssignment("t", map[int]Start{3: AtStart()}),
		WithRetryBackoff(time.Millisecond, 5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Poll(ctx); ErrorCode(err) != wire.CodeQueueNotFound {
		t.Fatalf("poll of a missing queue: %v", err)
	}
	for _, opts := range [][]ConsumerOpt{
		nil,
		{WithGroup("g", "t"), WithAssignment("t", map[int]Start{0: AtStart()})},
		{WithGroup("g", "t"), WithSessionTimeout(10 * time.Millisecond)},
		{WithGroup("g", "t"), WithStartWhenNoCommit(AtOffset(3))},
		{WithGroup("")},
	} {
		if _, err := NewConsumer(brokertest.Addrs(bs), opts...); err == nil {
			t.Errorf("%d options: no error", len(opts))
		}
	}
	if _, err := NewConsumer(brokertest.Addrs(bs), WithGroup("g", "nope")); ErrorCode(err) != wire.CodeTopicNotFound {
		t.Errorf("join for a missing topic: %v", err)
	}
}

// seenSet records what a group's members poll.
type seenSet struct {
	mu   sync.Mutex
	seen map[TopicQueue]map[uint64]int
}

func (k *seenSet) add(recs []Record) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, r := range recs {
		tq := TopicQueue{Topic: r.Topic, Queue: r.Queue}
		if k.seen[tq] == nil {
			k.seen[tq] = map[uint64]int{}
		}
		k.seen[tq][r.Offset]++
	}
}

// complete reports whether offsets 0..n-1 of queues 0..queues-1 were seen.
func (k *seenSet) complete(topic string, queues int, n uint64) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	for q := range queues {
		for i := range n {
			if k.seen[TopicQueue{Topic: topic, Queue: q}][i] == 0 {
				return false
			}
		}
	}
	return true
}

// pollLoop polls c into k until ctx ends; it returns when it stopped.
func pollLoop(ctx context.Context, c *Consumer, k *seenSet) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			recs, _ := c.Poll(ctx)
			k.add(recs)
		}
	}()
	return done
}

func groupOpts(extra ...ConsumerOpt) []ConsumerOpt {
	return append([]ConsumerOpt{WithGroup("g", "t"), WithSessionTimeout(time.Second), WithMaxWait(100 * time.Millisecond),
		WithRetryBackoff(5*time.Millisecond, 50*time.Millisecond)}, extra...)
}

func queuesOf(cs ...*Consumer) []TopicQueue {
	var out []TopicQueue
	for _, c := range cs {
		out = append(out, c.Assignment()...)
	}
	return out
}

func TestConsumerGroupRebalance(t *testing.T) {
	bs := brokertest.Group(t, 1, nil)
	consCreateTopic(t, bs, "t", 12)
	for q := range 12 {
		consProduce(t, bs, "t", q, 0, 20, nil)
	}
	k := &seenSet{seen: map[TopicQueue]map[uint64]int{}}
	var cs []*Consumer
	var stops []context.CancelFunc
	var dones []<-chan struct{}
	for range 3 {
		c, err := NewConsumer(brokertest.Addrs(bs), groupOpts(WithAutoCommit(100*time.Millisecond))...)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cs, stops, dones = append(cs, c), append(stops, cancel), append(dones, pollLoop(ctx, c, k))
	}
	consWait(t, 5*time.Second, "assignment of 4 queues each", func() bool {
		return len(cs[0].Assignment()) == 4 && len(cs[1].Assignment()) == 4 && len(cs[2].Assignment()) == 4
	})
	all := queuesOf(cs...)
	slices.SortFunc(all, func(a, b TopicQueue) int { return a.Queue - b.Queue })
	if all = slices.Compact(all); len(all) != 12 {
		t.Fatalf("the members share queues: %v", queuesOf(cs...))
	}

	// One member leaves: its queues move to the others at once.
	stops[2]()
	<-dones[2]
	if err := cs[2].Close(); err != nil {
		t.Fatal(err)
	}
	consWait(t, 3*time.Second, "6 queues each after a member left", func() bool {
		return len(cs[0].Assignment()) == 6 && len(cs[1].Assignment()) == 6
	})

	// Another hangs: no heartbeat, no poll. Its session (1 s) expires.
	stops[1]()
	<-dones[1]
	cs[1].testHang.Store(true)
	hung := time.Now()
	consWait(t, 3*time.Second, "every queue with the last member", func() bool { return len(cs[0].Assignment()) == 12 })
	t.Logf("the hung member's queues moved after %v", time.Since(hung).Round(time.Millisecond))

	for q := range 12 {
		consProduce(t, bs, "t", q, 20, 10, nil)
	}
	consWait(t, 10*time.Second, "every message", func() bool { return k.complete("t", 12, 30) })
}

// TestConsumerStaleCommit: a member that misses a rebalance (it hangs: no
// heartbeats) still owns its queues until it releases them or the group
// removes it, so the group's new member gets none of them meanwhile, and
// the stale member's commit, of an older generation, is accepted. Once its
// session is over the group removes it and gives every queue to the other
// member; its next commit is refused as from an unknown member, after
// which it joins again and gets its share back through a hand-over.
func TestConsumerStaleCommit(t *testing.T) {
	bs := brokertest.Group(t, 1, nil)
	consCreateTopic(t, bs, "t", 4)
	for q := range 4 {
		consProduce(t, bs, "t", q, 0, 10, nil)
	}
	a, err := NewConsumer(brokertest.Addrs(bs), groupOpts(WithAutoCommit(0))...)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	pollUntil(t, a, 5*time.Second, nil, func(r []Record) bool { return len(r) == 40 })
	a.testHang.Store(true) // a misses the rebalance
	// b's session is long: only a's expiry is under test, and a loaded
	// machine can delay a heartbeat past a 1 s session.
	b, err := NewConsumer(brokertest.Addrs(bs), groupOpts(WithAutoCommit(0), WithSessionTimeout(10*time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if qb := b.Assignment(); len(qb) != 0 {
		t.Fatalf("b got %v while a still owns every queue", qb)
	}
	ctx := context.Background()
	if err := a.Commit(ctx); err != nil {
		t.Fatalf("commit of a member that still owns its queues: %v", err)
	}
	var gi wire.GroupInfo
	consAPI(t, "GET", bs[0].Addr(), "/v1/groups/g", "", nil, &gi)
	for _, q := range gi.Queues {
		if q.Committed == nil || *q.Committed != 10 {
			t.Fatalf("a's commit: %+v", gi.Queues)
		}
	}

	// a stays silent past its session timeout: the group drops it, and its
	// next commit is refused as from an unknown member, after which it
	// joins again.
	consWait(t, 5*time.Second, "b owning every queue", func() bool { return len(b.Assignment()) == 4 })
	for q := range 4 {
		consProduce(t, bs, "t", q, 10, 1, nil)
	}
	pollUntil(t, a, 5*time.Second, nil, func(r []Record) bool { return len(r) == 4 })
	if err := a.Commit(ctx); ErrorCode(err) != wire.CodeUnknownMember {
		t.Fatalf("commit of an expired member: %v", err)
	}
	consAPI(t, "GET", bs[0].Addr(), "/v1/groups/g", "", nil, &gi)
	if len(gi.Members) != 2 {
		t.Fatalf("a did not join again: %+v", gi.Members)
	}
	a.testHang.Store(false)
	consWait(t, 5*time.Second, "2 queues each", func() bool { return len(a.Assignment()) == 2 && len(b.Assignment()) == 2 })
}

func TestConsumerGroupFailover(t *testing.T) {
	bs := brokertest.Group(t, 3, nil)
	consCreateTopic(t, bs, "t", 4)
	for q := range 4 {
		consProduce(t, bs, "t", q, 0, 50, nil)
	}
	// Small fetches: c1 gets through the messages in many steps.
	opts := groupOpts(WithAutoCommit(0), WithSessionTimeout(3*time.Second), WithFetchMaxBytes(200), WithPrefetch(1))
	c1, err := NewConsumer(brokertest.Addrs(bs), opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	ctx := context.Background()
	got1 := pollUntil(t, c1, 5*time.Second, nil, func(r []Record) bool { return len(r) >= 100 })
	if err := c1.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	old := consLeader(bs)
	consWrite(t, bs, "POST", "/v1/cluster/transfer-leadership", "", nil, nil)
	consWait(t, 10*time.Second, "a new leader", func() bool { l := consLeader(bs); return l != nil && l != old })

	// c1 goes on after the failover: its heartbeats and commit follow the
	// new leader.
	got1 = pollUntil(t, c1, 5*time.Second, got1, func(r []Record) bool { return len(r) >= 150 })
	if err := c1.Commit(ctx); err != nil {
		t.Fatalf("commit after the failover: %v", err)
	}
	committed := map[int]uint64{}
	for q, recs := range byQueue(got1) {
		committed[q] = recs[len(recs)-1].Offset + 1
	}
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}

	// A new member resumes from the committed offsets, which the new
	// leader has: nothing committed comes again.
	c2, err := NewConsumer(brokertest.Addrs(bs), opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if len(got1) > 180 {
		t.Fatalf("c1 got %d records: nothing left for c2", len(got1))
	}
	got2 := pollUntil(t, c2, 5*time.Second, nil, func(r []Record) bool { return len(r) >= 200-len(got1) })
	for q, recs := range byQueue(got2) {
		checkRun(t, recs, q, committed[q], 50)
	}
	time.Sleep(200 * time.Millisecond)
	ctx2, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if recs, _ := c2.Poll(ctx2); len(recs) > 0 {
		t.Fatalf("records delivered again: %+v", recs[0])
	}
}

func TestConsumerAutoCommit(t *testing.T) {
	bs := brokertest.Group(t, 1, nil)
	consCreateTopic(t, bs, "t", 2)
	for q := range 2 {
		consProduce(t, bs, "t", q, 0, 5, nil)
	}
	committed := func() map[int]uint64 {
		var gi wire.GroupInfo
		consAPI(t, "GET", bs[0].Addr(), "/v1/groups/g", "", nil, &gi)
		out := map[int]uint64{}
		for _, q := range gi.Queues {
			if q.Committed != nil {
				out[q.Queue] = *q.Committed
			}
		}
		return out
	}
	c, err := NewConsumer(brokertest.Addrs(bs), groupOpts(WithAutoCommit(20*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Records count as processed once Poll is called again: those of the
	// latest Poll are not committed.
	var last []Record
	for n := 0; n < 10; n += len(last) {
		if last, err = c.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	got := committed()
	for _, r := range last {
		if off, ok := got[r.Queue]; ok && off > r.Offset {
			t.Fatalf("auto-commit committed %d of queue %d, returned by the latest Poll", off, r.Queue)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	c.Poll(ctx)
	consWait(t, 2*time.Second, "the auto-commit", func() bool { got := committed(); return got[0] == 5 && got[1] == 5 })

	// Close commits what Poll returned, and leaves.
	consProduce(t, bs, "t", 0, 5, 3, nil)
	pollUntil(t, c, 5*time.Second, nil, func(r []Record) bool { return len(r) == 3 })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	var gi wire.GroupInfo
	consAPI(t, "GET", bs[0].Addr(), "/v1/groups/g", "", nil, &gi)
	if got := committed(); got[0] != 8 || got[1] != 5 || len(gi.Members) != 0 {
		t.Fatalf("after Close: committed %v, members %+v", got, gi.Members)
	}
}

func TestDecodeFrames(t *testing.T) {
	raw, _ := wire.Encode([]wire.Message{{Value: []byte("a")}, {Value: []byte("b")}, {Value: []byte("c")}}, wire.CodecNone, wire.Producer{}, 1, time.Now())
	frame := func(base uint64, b []byte) []byte {
		out := binary.LittleEndian.AppendUint64(nil, base)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(b)))
		return append(out, b...)
	}
	body := slices.Concat(frame(10, raw), frame(13, raw))
	tq := TopicQueue{Topic: "t", Queue: 1}
	recs, err := decodeFrames(body, tq, 12, time.Time{})
	if err != nil || len(recs) != 4 || recs[0].Offset != 12 || string(recs[0].Value) != "c" || recs[3].Offset != 15 || recs[3].Queue != 1 {
		t.Fatalf("records %+v, %v", recs, err)
	}
	for _, bad := range [][]byte{body[:5], body[:20], append(frame(0, raw[:len(raw)-1]), 0)} {
		if _, err := decodeFrames(bad, tq, 0, time.Time{}); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("%d bytes: %v", len(bad), err)
		}
	}
}
