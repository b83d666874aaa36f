package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/internal/brokertest"
	"github.com/ledgermq/ledgermq/topics"
	"github.com/ledgermq/ledgermq/wire"
)

// group3 starts a three-node group with a topic "orders" of 2 queues and
// returns the leader's and a follower's cores.
func group3(t *testing.T) (leader, follower *service.Service) {
	t.Helper()
	bs := brokertest.Group(t, 3, nil)
	l := brokertest.Leader(t, bs)
	for _, b := range bs {
		if b != l {
			follower = b.Service()
			break
		}
	}
	leader = l.Service()
	info, err := leader.CreateTopic(context.Background(), topics.Config{Name: "orders", Queues: 2})
	if err != nil {
		t.Fatal(err)
	}
	waitApplied(t, follower, info.Index)
	return leader, follower
}

// waitApplied waits until svc has applied index.
func waitApplied(t *testing.T, svc *service.Service, index uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := svc.Node().WaitApplied(ctx, index); err != nil {
		t.Fatal(err)
	}
}

// TestWriteIndexes: every write answer carries the index it committed at,
// increasing from write to write, and the leader has applied it when it
// answers.
func TestWriteIndexes(t *testing.T) {
	svc := single(t)
	ctx := context.Background()
	info, err := svc.CreateTopic(ctx, topics.Config{Name: "audit"})
	if err != nil || info.Index == 0 {
		t.Fatalf("create: index %d, %v", info.Index, err)
	}
	last := info.Index
	stored, err := svc.Produce(ctx, "orders", []service.Message{{Message: wire.Message{Value: []byte("a")}, Queue: queue(0)},
		{Message: wire.Message{Value: []byte("b")}, Queue: queue(1)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range stored {
		if st.Index <= last || st.Index != stored[0].Index {
			t.Fatalf("produce: indexes %+v after %d", stored, last)
		}
	}
	last = stored[0].Index
	batch := encode(t, wire.Producer{}, "c")
	st, err := svc.ProduceBatch(ctx, "orders", 1, batch)
	if err != nil || st.Index <= last {
		t.Fatalf("batch: index %d after %d, %v", st.Index, last, err)
	}
	if applied := svc.Node().AppliedIndex(); applied < st.Index {
		t.Fatalf("the leader answered index %d having applied %d", st.Index, applied)
	}
}

// TestFollowerFetchWaitsForMinIndex: a follower asked for a position it
// has not applied waits for it and then answers with the data, without a
// long poll; one that cannot catch up answers UNAVAILABLE, not applied.
func TestFollowerFetchWaitsForMinIndex(t *testing.T) {
	leader, follower := group3(t)
	ctx := context.Background()
	stored, err := leader.Produce(ctx, "orders", []service.Message{{Message: wire.Message{Value: []byte("first")}, Queue: queue(0)}})
	if err != nil {
		t.Fatal(err)
	}
	waitApplied(t, follower, stored[0].Index)

	// At the queue's end, no long poll: without a token the answer is
	// empty at once.
	f, err := follower.Fetch(ctx, service.FetchRequest{Topic: "orders", Queue: 0, Offset: 1})
	if err != nil || len(f.Batches) != 0 {
		t.Fatalf("fetch at the end: %+v, %v", f, err)
	}
	// A token one past what the group has applied: the follower waits for
	// the next entry, the produce below.
	type answer struct {
		f   *service.Fetched
		err error
	}
	got := make(chan answer, 1)
	token := leader.Node().AppliedIndex() + 1 // the next write's
	go func() {
		f, err := follower.Fetch(ctx, service.FetchRequest{Topic: "orders", Queue: 0, Offset: 1, MinIndex: token})
		got <- answer{f, err}
	}()
	next, err := leader.Produce(ctx, "orders", []service.Message{{Message: wire.Message{Value: []byte("second")}, Queue: queue(0)}})
	if err != nil || next[0].Index < token {
		t.Fatalf("produce: %+v, %v (token %d)", next, err, token)
	}
	a := <-got
	if a.err != nil || len(a.f.Batches) != 1 || a.f.Batches[0].BaseOffset != 1 || a.f.Next != 2 {
		t.Fatalf("fetch with min_index %d: %+v, %v", token, a.f, a.err)
	}

	// The leader's answer as the token, read at once from the follower:
	// the follower shows the write (it waits if it has not applied it).
	third, err := leader.Produce(ctx, "orders", []service.Message{{Message: wire.Message{Value: []byte("third")}, Queue: queue(1)}})
	if err != nil {
		t.Fatal(err)
	}
	f, err = follower.Fetch(ctx, service.FetchRequest{Topic: "orders", Queue: 1, MinIndex: third[0].Index})
	if err != nil || len(f.Batches) != 1 {
		t.Fatalf("fetch with the produce's token: %+v, %v", f, err)
	}
	recs, err := follower.FetchRecords(ctx, service.FetchRequest{Topic: "orders", Queue: 1, MinIndex: third[0].Index, MaxBytes: 1 << 20}, 10)
	if err != nil || len(recs.Records) != 1 || string(recs.Records[0].Value) != "third" {
		t.Fatalf("records with the produce's token: %+v, %v", recs, err)
	}

	// A token the follower cannot reach: UNAVAILABLE, retriable, not
	// applied, after the request's wait.
	for _, tc := range []struct {
		name string
		call func(index uint64) error
	}{
		{"fetch", func(index uint64) error {
			_, err := follower.Fetch(ctx, service.FetchRequest{Topic: "orders", Queue: 0, MinIndex: index, Wait: 200 * time.Millisecond})
			return err
		}},
		{"records", func(index uint64) error {
			_, err := follower.FetchRecords(ctx, service.FetchRequest{Topic: "orders", Queue: 0, MinIndex: index, Wait: 200 * time.Millisecond, MaxBytes: 1}, 1)
			return err
		}},
		{"describe", func(index uint64) error {
			_, err := follower.DescribeTopicAt(ctx, "orders", index, 200*time.Millisecond)
			return err
		}},
	} {
		start := time.Now()
		err := tc.call(follower.Node().AppliedIndex() + 1000)
		var ae *wire.APIError
		if !errors.As(err, &ae) || ae.Code != wire.CodeUnavailable || !ae.Retriable || !ae.NotApplied || !strings.Contains(ae.Message, "not applied") {
			t.Fatalf("%s: unreachable token: %v", tc.name, err)
		}
		if el := time.Since(start); el < 200*time.Millisecond {
			t.Fatalf("%s: answered after %v, before the wait ran out", tc.name, el)
		}
	}
}

// TestDescribeWaitsForMinIndex: a topic created on the leader is found on
// a follower asked with the create's token.
func TestDescribeWaitsForMinIndex(t *testing.T) {
	leader, follower := group3(t)
	ctx := context.Background()
	type answer struct {
		info wire.TopicInfo
		err  error
	}
	got := make(chan answer, 1)
	token := leader.Node().AppliedIndex() + 1 // the next write's
	go func() {
		info, err := follower.DescribeTopicAt(ctx, "fresh", token, 0)
		got <- answer{info, err}
	}()
	created, err := leader.CreateTopic(ctx, topics.Config{Name: "fresh", Queues: 3})
	if err != nil || created.Index < token {
		t.Fatalf("create: %+v, %v (token %d)", created, err, token)
	}
	if a := <-got; a.err != nil || a.info.Name != "fresh" || len(a.info.QueueInfo) != 3 || a.info.Index != 0 {
		t.Fatalf("describe with min_index %d: %+v, %v", token, a.info, a.err)
	}
	info, err := follower.DescribeTopicAt(ctx, "fresh", created.Index, 0)
	if err != nil || info.Name != "fresh" {
		t.Fatalf("describe with the create's token: %+v, %v", info, err)
	}
}

// TestMinIndexWaitEndsOnClose: a read waiting for a token ends when the
// node's core closes, as not applied.
func TestMinIndexWaitEndsOnClose(t *testing.T) {
	_, follower := group3(t)
	got := make(chan error, 1)
	go func() {
		_, err := follower.Fetch(context.Background(), service.FetchRequest{Topic: "orders", Queue: 0,
			MinIndex: follower.Node().AppliedIndex() + 1000, Wait: 30 * time.Second})
		got <- err
	}()
	follower.Close()
	select {
	case err := <-got:
		var ae *wire.APIError
		if !errors.As(err, &ae) || ae.Code != wire.CodeUnavailable || !ae.NotApplied {
			t.Fatalf("fetch waiting at close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a fetch waiting for an index outlived the core's Close by 10s")
	}
}
