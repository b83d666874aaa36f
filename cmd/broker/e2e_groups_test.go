package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	stdmaps "maps"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/client"
	"github.com/ledgermq/ledgermq/wire"
)

// Consumer groups end to end (issue 16): SDK members of one group join,
// leave, restart statically and ride out leader SIGKILLs while producers
// write throughout; a queue moves from member to member without ever being
// delivered by two at once.

const (
	grpTopic  = "grp16"
	grpQueues = 8
	grpGroup  = "g16"
)

// delivery is one record a member's Poll returned.
type delivery struct {
	member string
	queue  int
	offset uint64
	at     time.Time
}

// grpLog records every delivery and every assignment of the run.
type grpLog struct {
	mu         sync.Mutex
	deliveries []delivery
	// first delivery of each queue by each member incarnation
	first map[string]map[int]time.Time
	// when each queue was last assigned to each member incarnation
	assigned map[string]map[int]time.Time
}

func newGrpLog() *grpLog {
	return &grpLog{first: map[string]map[int]time.Time{}, assigned: map[string]map[int]time.Time{}}
}

// grpMember is one SDK group member polling in a goroutine.
type grpMember struct {
	name   string
	joined time.Time
	c      *client.Consumer
	cancel context.CancelFunc
	done   chan struct{}
}

func sdkLogger(name string) *slog.Logger {
	if os.Getenv("LEDGERMQ_TEST_SDKLOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("member", name)
	}
	return slog.New(slog.DiscardHandler)
}

// startMember joins the group as name and polls until stopped.
func startMember(t *testing.T, brokers []string, l *grpLog, name string, opts ...client.ConsumerOpt) *grpMember {
	t.Helper()
	m := &grpMember{name: name, done: make(chan struct{})}
	onAssigned := func(qs []client.TopicQueue) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.assigned[name] == nil {
			l.assigned[name] = map[int]time.Time{}
		}
		for _, tq := range qs {
			l.assigned[name][tq.Queue] = time.Now()
		}
	}
	opts = append([]client.ConsumerOpt{client.WithGroup(grpGroup, grpTopic), client.WithLogger(sdkLogger(name)),
		client.WithRebalanceCallbacks(onAssigned, nil), client.WithAutoCommit(time.Second),
		client.WithMaxWait(500 * time.Millisecond)}, opts...)
	m.joined = time.Now()
	c, err := client.NewConsumer(brokers, opts...)
	if err != nil {
		t.Fatalf("member %s: %v", name, err)
	}
	m.c = c
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		for {
			recs, err := c.Poll(ctx)
			now := time.Now()
			if ctx.Err() != nil || err == client.ErrConsumerClosed {
				return
			}
			if err != nil {
				t.Logf("member %s: poll: %v", name, err)
			}
			l.mu.Lock()
			for _, r := range recs {
				l.deliveries = append(l.deliveries, delivery{name, r.Queue, r.Offset, now})
				if l.first[name] == nil {
					l.first[name] = map[int]time.Time{}
				}
				if _, ok := l.first[name][r.Queue]; !ok {
					l.first[name][r.Queue] = now
				}
			}
			l.mu.Unlock()
		}
	}()
	t.Logf("%s joined in %v: queues %v", name, time.Since(m.joined).Round(time.Millisecond), queueList(c.Assignment()))
	return m
}

// stop ends the poll loop (the records it returned are recorded) and
// closes the consumer: with auto-commit Close commits them.
func (m *grpMember) stop(t *testing.T) {
	m.cancel()
	<-m.done
	start := time.Now()
	if err := m.c.Close(); err != nil {
		t.Errorf("close %s: %v", m.name, err)
	}
	t.Logf("%s closed in %v", m.name, time.Since(start).Round(time.Millisecond))
}

func queueList(tqs []client.TopicQueue) []int {
	out := []int{}
	for _, tq := range tqs {
		out = append(out, tq.Queue)
	}
	return out
}

// grpProducer writes to every queue of the topic until stopped and
// records what was acknowledged.
type grpProducer struct {
	p      *client.Producer
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	acked  map[[2]uint64]bool // queue, offset
	failed int
}

func startProducer(t *testing.T, brokers []string, every time.Duration) *grpProducer {
	p, err := client.NewProducer(brokers, client.WithDeliveryTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	gp := &grpProducer{p: p, stop: make(chan struct{}), acked: map[[2]uint64]bool{}}
	gp.wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-gp.stop:
				return
			case <-tick.C:
			}
			q := i % grpQueues
			p.ProduceAsync(&client.Message{Topic: grpTopic, Queue: &q, Value: fmt.Appendf(nil, "m%d", i)}, func(r client.Result, err error) {
				gp.mu.Lock()
				defer gp.mu.Unlock()
				if err != nil {
					gp.failed++
					return
				}
				gp.acked[[2]uint64{uint64(r.Queue), r.Offset}] = true
			})
		}
	})
	return gp
}

func (gp *grpProducer) finish(t *testing.T) {
	close(gp.stop)
	gp.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := gp.p.Flush(ctx); err != nil {
		t.Errorf("flush: %v", err)
	}
	gp.p.Close()
}

func (gp *grpProducer) ackedSet() map[[2]uint64]bool {
	gp.mu.Lock()
	defer gp.mu.Unlock()
	return stdmaps.Clone(gp.acked)
}

// delivered counts deliveries per queue and offset.
func (l *grpLog) delivered() map[[2]uint64][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[[2]uint64][]string{}
	for _, d := range l.deliveries {
		k := [2]uint64{uint64(d.queue), d.offset}
		out[k] = append(out[k], d.member)
	}
	return out
}

// waitDelivered waits until every acknowledged message was delivered.
func waitDelivered(t *testing.T, l *grpLog, acked map[[2]uint64]bool, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := l.delivered()
		missing := 0
		for k := range acked {
			if len(got[k]) == 0 {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged messages never delivered", missing, len(acked))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rebalanceTimes reports, for member incarnation name started at from,
// how long after from it first delivered each queue it got (only queues
// first delivered after from).
func (l *grpLog) rebalanceTimes(name string, from time.Time) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	qs := make([]int, 0, len(l.first[name]))
	for q := range l.first[name] {
		qs = append(qs, q)
	}
	sort.Ints(qs)
	for _, q := range qs {
		if at := l.first[name][q]; at.After(from) {
			parts = append(parts, fmt.Sprintf("q%d %v", q, at.Sub(from).Round(time.Millisecond)))
		}
	}
	return strings.Join(parts, ", ")
}

// movedTimes reports, for each of queues, how long after from member
// name first delivered it (the queues moved to it at from).
func (l *grpLog) movedTimes(name string, from time.Time, queues []int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := map[int]time.Time{}
	for _, d := range l.deliveries {
		if d.member == name && d.at.After(from) && slices.Contains(queues, d.queue) {
			if at, ok := first[d.queue]; !ok || d.at.Before(at) {
				first[d.queue] = d.at
			}
		}
	}
	var parts []string
	for _, q := range queues {
		if at, ok := first[q]; ok {
			parts = append(parts, fmt.Sprintf("q%d %v", q, at.Sub(from).Round(time.Millisecond)))
		}
	}
	return strings.Join(parts, ", ")
}

func (g *group) killLeader(t *testing.T) {
	victim := ""
	waitUntil(t, 15*time.Second, "a leader to kill", func() bool { victim = g.leader(); return victim != "" })
	g.signal(victim, syscall.SIGKILL)
	t.Logf("SIGKILLed the leader %s", victim)
	time.Sleep(time.Second)
	g.start(victim)
}

// TestSDKGroupCooperativeRebalance: 3 members join one after another, one
// leaves, one (static) is closed and restarted under its instance id, the
// leader is SIGKILLed twice, while a producer writes to 8 queues
// throughout. No member crashes, so every acknowledged message is
// delivered exactly once. Rebalance times are printed, not asserted.
func TestSDKGroupCooperativeRebalance(t *testing.T) {
	if testing.Short() {
		t.Skip("runs OS processes")
	}
	g := newGroupWithTopic(t, 3, grpTopic, grpQueues)
	brokers := g.c.APIs()
	l := newGrpLog()
	gp := startProducer(t, brokers, 4*time.Millisecond)

	a := startMember(t, brokers, l, "a")
	time.Sleep(2 * time.Second)
	b := startMember(t, brokers, l, "b", client.WithInstanceID("b"))
	time.Sleep(2 * time.Second)
	c := startMember(t, brokers, l, "c")
	time.Sleep(2 * time.Second)
	t.Logf("join rebalance (join -> first delivery of each queue moved to it): b: %s", l.rebalanceTimes("b", b.joined))
	t.Logf("join rebalance: c: %s", l.rebalanceTimes("c", c.joined))
	t.Logf("after 3 joins: a %v, b %v, c %v", queueList(a.c.Assignment()), queueList(b.c.Assignment()), queueList(c.c.Assignment()))

	g.killLeader(t)
	time.Sleep(2 * time.Second)

	// a leaves: its queues go to b and c.
	aQueues := queueList(a.c.Assignment())
	left := time.Now()
	a.stop(t)
	time.Sleep(2 * time.Second)
	t.Logf("leave rebalance (a's Close -> first delivery of a's queues %v by the new owner): b: %s; c: %s",
		aQueues, l.movedTimes("b", left, aQueues), l.movedTimes("c", left, aQueues))
	t.Logf("after a left: b %v, c %v", queueList(b.c.Assignment()), queueList(c.c.Assignment()))

	// b (static) is closed and restarted under its instance id: it takes
	// its queues back, c keeps its own.
	cBefore := queueList(c.c.Assignment())
	b.stop(t)
	time.Sleep(time.Second)
	b2 := startMember(t, brokers, l, "b2", client.WithInstanceID("b"))
	time.Sleep(2 * time.Second)
	t.Logf("static restart (b2's join -> first delivery): %s", l.rebalanceTimes("b2", b2.joined))
	if cAfter := queueList(c.c.Assignment()); !slices.Equal(cBefore, cAfter) {
		t.Logf("c's queues changed over b's static restart: %v -> %v", cBefore, cAfter)
	}

	g.killLeader(t)
	time.Sleep(2 * time.Second)

	gp.finish(t)
	acked := gp.ackedSet()
	waitDelivered(t, l, acked, 30*time.Second)
	time.Sleep(500 * time.Millisecond) // any late duplicate
	b2.stop(t)
	c.stop(t)

	got := l.delivered()
	dups, extra := 0, 0
	var examples []string
	for k, by := range got {
		if len(by) > 1 {
			dups += len(by) - 1
			if len(examples) < 5 {
				examples = append(examples, fmt.Sprintf("q%d@%d by %v", k[0], k[1], by))
			}
		}
		if !acked[k] {
			extra++ // stored although the producer saw a failure
		}
	}
	gp.mu.Lock()
	failed := gp.failed
	gp.mu.Unlock()
	t.Logf("%d messages acknowledged (%d failed), %d distinct delivered (%d not acknowledged), %d duplicate deliveries %v",
		len(acked), failed, len(got), extra, dups, examples)
	if dups != 0 {
		t.Errorf("%d duplicate deliveries without a crash: %v", dups, examples)
	}
}

// killSwitch is an http.RoundTripper that fails every request once
// tripped, and cancels those under way: a member process that died.
type killSwitch struct {
	dead   atomic.Bool
	ctx    context.Context
	cancel context.CancelFunc
}

func newKillSwitch() *killSwitch {
	k := &killSwitch{}
	k.ctx, k.cancel = context.WithCancel(context.Background())
	return k
}

func (k *killSwitch) RoundTrip(r *http.Request) (*http.Response, error) {
	if k.dead.Load() {
		return nil, fmt.Errorf("member crashed")
	}
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(k.ctx, cancel)
	resp, err := http.DefaultTransport.RoundTrip(r.WithContext(ctx))
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, done: func() { stop(); cancel() }}
	return resp, nil
}

type cancelBody struct {
	io.ReadCloser
	done func()
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.done()
	return err
}

func (k *killSwitch) trip() {
	k.dead.Store(true)
	k.cancel()
}

// TestSDKGroupMemberCrash: one of two members "crashes": its process
// stops talking (every request fails, those under way are cut) without
// Close and without committing. The group removes it after its session
// timeout (2 s) and the other member takes its queues from their committed
// offsets: the only duplicates are records the crashed member had
// delivered but not committed.
func TestSDKGroupMemberCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("runs OS processes")
	}
	g := newGroupWithTopic(t, 3, grpTopic, grpQueues)
	brokers := g.c.APIs()
	l := newGrpLog()
	gp := startProducer(t, brokers, 4*time.Millisecond)
	session := client.WithSessionTimeout(2 * time.Second)
	a := startMember(t, brokers, l, "a", session)
	time.Sleep(time.Second)
	ks := newKillSwitch()
	b := startMember(t, brokers, l, "b", session, client.WithHTTPClient(&http.Client{Transport: ks}),
		client.WithRequestTimeout(2*time.Second))
	time.Sleep(3 * time.Second)
	bQueues := queueList(b.c.Assignment())

	// b crashes.
	ks.trip()
	crashed := time.Now()
	b.cancel()
	<-b.done
	time.Sleep(200 * time.Millisecond)
	var gi wire.GroupInfo
	waitUntil(t, 10*time.Second, "the group's offsets", func() bool {
		_, err := do("GET", g.api[g.leader()], "/v1/groups/"+grpGroup, nil, &gi)
		return err == nil
	})
	committed := map[int]uint64{}
	for _, q := range gi.Queues {
		if q.Committed != nil {
			committed[q.Queue] = *q.Committed
		}
	}
	uncommitted := 0
	bDelivered := map[[2]uint64]bool{}
	l.mu.Lock()
	for _, d := range l.deliveries {
		if d.member == "b" {
			bDelivered[[2]uint64{uint64(d.queue), d.offset}] = true
			if d.offset >= committed[d.queue] {
				uncommitted++
			}
		}
	}
	l.mu.Unlock()
	t.Logf("b crashed owning %v with %d delivered records not committed (committed %v)", bQueues, uncommitted, committed)

	time.Sleep(5 * time.Second)
	t.Logf("crash rebalance (crash -> a's first delivery of b's queues, session timeout 2 s): %s", l.movedTimes("a", crashed, bQueues))
	gp.finish(t)
	acked := gp.ackedSet()
	waitDelivered(t, l, acked, 30*time.Second)
	time.Sleep(500 * time.Millisecond)
	a.stop(t)
	go b.c.Close() // nothing to commit or leave: its transport is dead; do not wait for its timeouts

	got := l.delivered()
	dups, outside := 0, 0
	for k, by := range got {
		if len(by) <= 1 {
			continue
		}
		dups += len(by) - 1
		if !bDelivered[k] || k[1] < committed[int(k[0])] || len(by) != 2 {
			outside++
			t.Errorf("q%d@%d delivered by %v: not a record b delivered after its last commit", k[0], k[1], by)
		}
	}
	t.Logf("%d messages acknowledged, %d delivered, %d duplicate deliveries (bound: %d delivered by b but not committed)",
		len(acked), len(got), dups, uncommitted)
	if dups > uncommitted {
		t.Errorf("%d duplicates, more than the %d records b delivered without committing", dups, uncommitted)
	}
}
