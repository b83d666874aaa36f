package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/consumer"
	"github.com/ledgermq/ledgermq/wire"
)

// TestGroupLifecycle walks a group through joins, fenced commits, a leave
// and an offset reset, checking what the core answers at each step.
func TestGroupLifecycle(t *testing.T) {
	svc := single(t)
	ctx := context.Background()
	if _, err := svc.Produce(ctx, "orders", []service.Message{{Message: wire.Message{Value: []byte("a")}, Queue: queue(0)},
		{Message: wire.Message{Value: []byte("b")}, Queue: queue(0)}, {Message: wire.Message{Value: []byte("c")}, Queue: queue(1)}}); err != nil {
		t.Fatal(err)
	}
	a, err := svc.JoinGroup(ctx, "g", service.JoinRequest{Topics: []string{"orders"}})
	if err != nil || len(a.Assignment) != 2 || a.SessionTimeout != service.DefaultSessionTimeout {
		t.Fatalf("first join: %+v, %v", a, err)
	}
	b, err := svc.JoinGroup(ctx, "g", service.JoinRequest{Topics: []string{"orders"}, SessionTimeout: 2 * time.Second})
	if err != nil || len(b.Assignment) != 0 || b.Generation != a.Generation+1 || b.SessionTimeout != 2*time.Second {
		t.Fatalf("second join (its queue is still a's): %+v, %v", b, err)
	}
	// a learns at once, from its long-polled heartbeat, that it must give
	// one queue up; b gets it only once a released it.
	hb, err := svc.Heartbeat(ctx, "g", a.MemberID, a.Generation, time.Minute)
	if err != nil || hb.Generation != b.Generation || len(hb.Assignment) != 1 || len(hb.Revoking) != 1 {
		t.Fatalf("heartbeat after the rebalance: %+v, %v", hb, err)
	}
	moving := hb.Revoking[0]
	if err := svc.CommitOffsets(ctx, consumer.CommitCmd{Group: "g", MemberID: b.MemberID, Generation: b.Generation,
		Offsets: []consumer.Offset{{Topic: moving.Topic, Queue: moving.Queue, Offset: 1}}}); svc.AsError(err).Code != wire.CodeNotAssigned {
		t.Fatalf("commit by the next owner before the release: %v", err)
	}
	waiter := make(chan service.Membership, 1)
	go func() {
		m, err := svc.Heartbeat(ctx, "g", b.MemberID, b.Generation, time.Minute)
		if err != nil {
			t.Error(err)
		}
		waiter <- m
	}()
	rel, err := svc.ReleaseQueues(ctx, consumer.ReleaseCmd{Group: "g", MemberID: a.MemberID, Queues: []consumer.TQ{moving},
		Offsets: []consumer.Offset{{Topic: moving.Topic, Queue: moving.Queue, Offset: 0}}})
	if err != nil || len(rel.Revoking) != 0 || len(rel.Assignment) != 1 {
		t.Fatalf("release: %+v, %v", rel, err)
	}
	if bm := <-waiter; len(bm.Assignment) != 1 || bm.Assignment[0] != moving {
		t.Fatalf("the next owner's long poll answered %+v, want %v", bm, moving)
	}
	mine, theirs := hb.Assignment[0], moving
	for _, tc := range []struct {
		name string
		cmd  consumer.CommitCmd
		code string // "" for success
	}{
		{"a generation the group never had", consumer.CommitCmd{MemberID: a.MemberID, Generation: 99, Offsets: []consumer.Offset{{Topic: mine.Topic, Queue: mine.Queue, Offset: 1}}}, wire.CodeIllegalGeneration},
		{"a queue released", consumer.CommitCmd{MemberID: a.MemberID, Generation: hb.Generation, Offsets: []consumer.Offset{{Topic: theirs.Topic, Queue: theirs.Queue, Offset: 1}}}, wire.CodeNotAssigned},
		{"unknown member", consumer.CommitCmd{MemberID: "ghost", Generation: hb.Generation}, wire.CodeUnknownMember},
		{"own queue", consumer.CommitCmd{MemberID: a.MemberID, Generation: hb.Generation, Offsets: []consumer.Offset{{Topic: mine.Topic, Queue: mine.Queue, Offset: 1}}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cmd.Group = "g"
			err := svc.CommitOffsets(ctx, tc.cmd)
			if tc.code == "" && err != nil || tc.code != "" && svc.AsError(err).Code != tc.code {
				t.Fatalf("commit: %v, want %q", err, tc.code)
			}
		})
	}
	info, err := svc.DescribeGroup(ctx, "g")
	if err != nil || len(info.Members) != 2 || len(info.Queues) != 2 {
		t.Fatalf("describe: %+v, %v", info, err)
	}
	for _, q := range info.Queues {
		wantLag := q.Next
		if q.Queue == mine.Queue {
			if q.Committed == nil || *q.Committed != 1 {
				t.Fatalf("queue %d committed %v, want 1", q.Queue, q.Committed)
			}
			wantLag = q.Next - 1
		}
		if q.Lag != wantLag {
			t.Fatalf("queue %d lag %d, want %d", q.Queue, q.Lag, wantLag)
		}
	}
	if _, err := svc.ResetOffsets(ctx, "g", "orders", service.ResetTo{To: "earliest"}); svc.AsError(err).Code != wire.CodeGroupActive {
		t.Fatalf("reset of an active group: %v", err)
	}
	for _, m := range []string{a.MemberID, b.MemberID} {
		if err := svc.LeaveGroup(ctx, "g", m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.Heartbeat(ctx, "g", a.MemberID, 0, 0); svc.AsError(err).Code != wire.CodeUnknownMember {
		t.Fatalf("heartbeat after leaving: %v", err)
	}
	for _, tc := range []struct {
		to   service.ResetTo
		want [2]uint64 // committed offsets of queues 0 and 1
	}{
		{service.ResetTo{To: "latest"}, [2]uint64{2, 1}},
		{service.ResetTo{To: "earliest"}, [2]uint64{0, 0}},
		{service.ResetTo{To: "offset", Offset: 1}, [2]uint64{1, 1}},
		{service.ResetTo{To: "offset", Offset: 99}, [2]uint64{2, 1}}, // clamped to the end
		{service.ResetTo{To: "time", Time: time.Now().Add(time.Hour)}, [2]uint64{2, 1}},
		{service.ResetTo{To: "time", Time: time.Now().Add(-time.Hour)}, [2]uint64{0, 0}},
	} {
		t.Run("reset to "+tc.to.To, func(t *testing.T) {
			info, err := svc.ResetOffsets(ctx, "g", "orders", tc.to)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range info.Queues {
				if q.Committed == nil || *q.Committed != tc.want[q.Queue] {
					t.Fatalf("queue %d committed %v, want %d", q.Queue, q.Committed, tc.want[q.Queue])
				}
			}
		})
	}
	if gs := svc.ListGroups(ctx); len(gs) != 1 || gs[0].Group != "g" || len(gs[0].Members) != 0 {
		t.Fatalf("list: %+v", gs)
	}
}

// TestLongPoll: a fetch at the end of a queue waits for the next produce,
// answers empty when its wait ends, and gives up when its context ends.
func TestLongPoll(t *testing.T) {
	svc := single(t)
	ctx := context.Background()
	got, started := make(chan *service.Fetched, 1), make(chan struct{})
	go func() {
		close(started)
		f, err := svc.Fetch(ctx, service.FetchRequest{Topic: "orders", Queue: 0, Wait: 10 * time.Second, MaxBytes: 1 << 20})
		if err != nil {
			t.Error(err)
		}
		got <- f
	}()
	<-started
	if _, err := svc.Produce(ctx, "orders", []service.Message{{Message: wire.Message{Value: []byte("late")}, Queue: queue(0)}}); err != nil {
		t.Fatal(err)
	}
	select { // well before the fetch's own 10 s wait ends
	case f := <-got:
		if f == nil || len(f.Batches) != 1 || f.Next != 1 {
			t.Fatalf("woken fetch: %+v", f)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the long poll did not wake on a produce")
	}
	f, err := svc.Fetch(ctx, service.FetchRequest{Topic: "orders", Queue: 0, Offset: 1, Wait: 20 * time.Millisecond, MaxBytes: 1})
	if err != nil || len(f.Batches) != 0 || f.Next != 1 {
		t.Fatalf("expired wait: %+v, %v", f, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	f, err = svc.Fetch(cctx, service.FetchRequest{Topic: "orders", Queue: 0, Offset: 1, Wait: time.Minute, MaxBytes: 1})
	if err != nil || len(f.Batches) != 0 {
		t.Fatalf("cancelled wait: %+v, %v", f, err)
	}
	// A deleted topic ends a waiting fetch with TOPIC_NOT_FOUND.
	errc, started2 := make(chan error, 1), make(chan struct{})
	go func() {
		close(started2)
		_, err := svc.Fetch(ctx, service.FetchRequest{Topic: "orders", Queue: 1, Wait: 10 * time.Second, MaxBytes: 1})
		errc <- err
	}()
	<-started2
	if err := svc.DeleteTopic(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; svc.AsError(err).Code != wire.CodeTopicNotFound {
		t.Fatalf("fetch on a deleted topic: %v", err)
	}
}

// TestRecordBudget: a JSON-style fetch's byte budget counts records (it
// ends after the record that reaches it), not the batches they came in.
func TestRecordBudget(t *testing.T) {
	svc := single(t)
	ctx := context.Background()
	value := make([]byte, 100)
	var msgs []service.Message
	for range 3 {
		msgs = append(msgs, service.Message{Message: wire.Message{Value: value}, Queue: queue(0)})
	}
	if _, err := svc.Produce(ctx, "orders", msgs); err != nil { // one batch of three
		t.Fatal(err)
	}
	for _, tc := range []struct {
		maxBytes, want int
	}{{1, 1}, {100, 1}, {150, 2}, {200, 2}, {201, 3}, {1 << 20, 3}} {
		got, err := svc.FetchRecords(ctx, service.FetchRequest{Topic: "orders", Queue: 0, MaxBytes: tc.maxBytes}, 100)
		if err != nil || len(got.Records) != tc.want || got.Next != uint64(tc.want) {
			t.Errorf("max_bytes %d: %d records, next %d, %v; want %d", tc.maxBytes, len(got.Records), got.Next, err, tc.want)
		}
	}
}

// TestRejoinUnknownMember: a rejoin with an id the group does not know is
// refused before it is proposed, so it creates no group.
func TestRejoinUnknownMember(t *testing.T) {
	svc := single(t)
	_, err := svc.JoinGroup(context.Background(), "typo", service.JoinRequest{MemberID: "m7", Topics: []string{"orders"}})
	if ae := svc.AsError(err); ae.Code != wire.CodeUnknownMember || !ae.NotApplied {
		t.Fatalf("rejoin: %v", err)
	}
	if _, err := svc.DescribeGroup(context.Background(), "typo"); svc.AsError(err).Code != wire.CodeGroupNotFound {
		t.Fatalf("describe after a refused rejoin: %v", err)
	}
}
