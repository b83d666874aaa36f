package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/consumer"
	"github.com/ledgermq/ledgermq/internal/brokertest"
	"github.com/ledgermq/ledgermq/topics"
	"github.com/ledgermq/ledgermq/wire"
)

// single starts a one-node group in this process and returns its core,
// with a topic "orders" of 2 queues and 1 KiB messages.
func single(t *testing.T) *service.Service {
	t.Helper()
	svc := brokertest.Group(t, 1, nil)[0].Service()
	if _, err := svc.CreateTopic(context.Background(), topics.Config{Name: "orders", Queues: 2, MaxMessageBytes: 1024}); err != nil {
		t.Fatal(err)
	}
	return svc
}

func encode(t *testing.T, p wire.Producer, values ...string) []byte {
	t.Helper()
	now := time.Now() // within the topics' retention
	msgs := make([]wire.Message, len(values))
	for i, v := range values {
		msgs[i] = wire.Message{Value: []byte(v), Timestamp: now}
	}
	b, err := wire.Encode(msgs, wire.CodecNone, p, 1, now)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func queue(q int) *int { return &q }

// TestErrorCodes: every operation refuses bad input with its stable code,
// marked not applied, and changes nothing.
func TestErrorCodes(t *testing.T) {
	svc := single(t)
	ctx := context.Background()
	big := make([]byte, 2048)
	corrupt := encode(t, wire.Producer{}, "x")
	corrupt[len(corrupt)-1] ^= 1
	for _, tc := range []struct {
		name string
		call func() error
		code string
	}{
		{"create existing", func() error { _, err := svc.CreateTopic(ctx, topics.Config{Name: "orders"}); return err }, wire.CodeTopicExists},
		{"create bad name", func() error { _, err := svc.CreateTopic(ctx, topics.Config{Name: "a/b"}); return err }, wire.CodeInvalidArgument},
		{"create too many queues", func() error {
			_, err := svc.CreateTopic(ctx, topics.Config{Name: "x", Queues: topics.MaxQueues + 1})
			return err
		}, wire.CodeInvalidArgument},
		{"delete unknown", func() error { return svc.DeleteTopic(ctx, "nope") }, wire.CodeTopicNotFound},
		{"describe unknown", func() error { _, err := svc.DescribeTopic("nope"); return err }, wire.CodeTopicNotFound},
		{"produce unknown topic", func() error {
			_, err := svc.Produce(ctx, "nope", []service.Message{{Message: wire.Message{Value: []byte("v")}}})
			return err
		}, wire.CodeTopicNotFound},
		{"produce nothing", func() error { _, err := svc.Produce(ctx, "orders", nil); return err }, wire.CodeInvalidArgument},
		{"produce unknown queue", func() error {
			_, err := svc.Produce(ctx, "orders", []service.Message{{Message: wire.Message{Value: []byte("v")}, Queue: queue(2)}})
			return err
		}, wire.CodeQueueNotFound},
		{"produce oversize message", func() error {
			_, err := svc.Produce(ctx, "orders", []service.Message{{Message: wire.Message{Value: big}}})
			return err
		}, wire.CodeMessageTooLarge},
		{"batch to unknown queue", func() error {
			_, err := svc.ProduceBatch(ctx, "orders", 7, encode(t, wire.Producer{}, "v"))
			return err
		}, wire.CodeQueueNotFound},
		{"corrupt batch", func() error { _, err := svc.ProduceBatch(ctx, "orders", 0, corrupt); return err }, wire.CodeMalformedBatch},
		{"garbage batch", func() error { _, err := svc.ProduceBatch(ctx, "orders", 0, []byte("junk")); return err }, wire.CodeMalformedBatch},
		{"batch with oversize message", func() error {
			_, err := svc.ProduceBatch(ctx, "orders", 0, encode(t, wire.Producer{}, string(big)))
			return err
		}, wire.CodeMessageTooLarge},
		{"unknown producer", func() error {
			_, err := svc.ProduceBatch(ctx, "orders", 0, encode(t, wire.Producer{ID: 999}, "v"))
			return err
		}, wire.CodeUnknownProducer},
		{"fetch unknown queue", func() error {
			_, err := svc.Fetch(ctx, service.FetchRequest{Topic: "orders", Queue: 9, MaxBytes: 1})
			return err
		}, wire.CodeQueueNotFound},
		{"fetch past the end", func() error {
			_, err := svc.Fetch(ctx, service.FetchRequest{Topic: "orders", Queue: 0, Offset: 5, MaxBytes: 1})
			return err
		}, wire.CodeOffsetOutOfRange},
		{"join without topics", func() error { _, err := svc.JoinGroup(ctx, "g", service.JoinRequest{}); return err }, wire.CodeInvalidArgument},
		{"join unknown topic", func() error {
			_, err := svc.JoinGroup(ctx, "g", service.JoinRequest{Topics: []string{"nope"}})
			return err
		}, wire.CodeTopicNotFound},
		{"join short session", func() error {
			_, err := svc.JoinGroup(ctx, "g", service.JoinRequest{Topics: []string{"orders"}, SessionTimeout: time.Millisecond})
			return err
		}, wire.CodeInvalidArgument},
		{"heartbeat unknown group", func() error { _, err := svc.Heartbeat(ctx, "nope", "m1", 0, 0); return err }, wire.CodeGroupNotFound},
		{"leave unknown group", func() error { return svc.LeaveGroup(ctx, "nope", "m1") }, wire.CodeGroupNotFound},
		{"commit unknown group", func() error { return svc.CommitOffsets(ctx, consumer.CommitCmd{Group: "nope", MemberID: "m1"}) }, wire.CodeGroupNotFound},
		{"reset to nowhere", func() error {
			_, err := svc.ResetOffsets(ctx, "g", "orders", service.ResetTo{To: "middle"})
			return err
		}, wire.CodeInvalidArgument},
		{"describe unknown group", func() error { _, err := svc.DescribeGroup(ctx, "nope"); return err }, wire.CodeGroupNotFound},
		{"transfer in a group of one", func() error { _, err := svc.TransferLeadership(ctx, ""); return err }, wire.CodeInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := svc.Status().AppliedIndex
			err := tc.call()
			ae := svc.AsError(err)
			if err == nil || ae.Code != tc.code || !ae.NotApplied {
				t.Fatalf("got %v (code %s, not applied %v), want %s, not applied", err, ae.Code, ae.NotApplied, tc.code)
			}
			if info, _ := svc.DescribeTopic("orders"); info.QueueInfo[0].Next != 0 || info.QueueInfo[1].Next != 0 {
				t.Fatalf("a refused request stored messages: %+v (applied %d -> %d)", info.QueueInfo, before, svc.Status().AppliedIndex)
			}
		})
	}
}

// TestProduceFetch: messages go to the queue their key, explicit queue or
// round-robin picks, in request order, and come back as stored.
func TestProduceFetch(t *testing.T) {
	svc := single(t)
	ctx := context.Background()
	key := []byte("k0") // a key of queue 0
	for i := 1; wire.KeyQueue(key, 2) != 0; i++ {
		key = []byte("k" + string(rune('0'+i)))
	}
	msgs := []service.Message{
		{Message: wire.Message{Key: key, Value: []byte("a")}},
		{Message: wire.Message{Value: []byte("b"), Headers: []wire.Header{{Key: "z", Value: []byte("1")}, {Key: "a", Value: []byte("2")}}}, Queue: queue(1)},
		{Message: wire.Message{Key: key, Value: []byte("c")}},
	}
	stored, err := svc.Produce(ctx, "orders", msgs)
	if err != nil {
		t.Fatal(err)
	}
	if stored[0].Queue != 0 || stored[2].Queue != 0 || stored[0].BaseOffset != 0 || stored[2].BaseOffset != 1 || stored[1].Queue != 1 {
		t.Fatalf("stored %+v", stored)
	}
	batch := encode(t, wire.Producer{}, "x", "y")
	st, err := svc.ProduceBatch(ctx, "orders", 1, batch)
	if err != nil || st.Count != 2 {
		t.Fatalf("batch: %+v, %v", st, err)
	}
	want := []string{"b", "x", "y"} // queue 1
	n := uint64(len(want))
	for _, tc := range []struct {
		name  string
		req   service.FetchRequest
		max   int
		first uint64 // offset of the first record expected
		count int
		next  uint64
	}{
		{"whole queue", service.FetchRequest{Offset: 0, MaxBytes: 1 << 20}, 100, 0, len(want), n},
		{"from the middle", service.FetchRequest{Offset: 2, MaxBytes: 1 << 20}, 100, 2, len(want) - 2, n},
		{"one record", service.FetchRequest{Offset: 0, MaxBytes: 1 << 20}, 1, 0, 1, 1},
		{"one byte still answers a record", service.FetchRequest{Offset: 1, MaxBytes: 1}, 100, 1, 1, 2},
		{"at the end, no wait", service.FetchRequest{Offset: n, MaxBytes: 1 << 20}, 100, 0, 0, n},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Topic, tc.req.Queue = "orders", 1
			got, err := svc.FetchRecords(ctx, tc.req, tc.max)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Records) != tc.count || got.Next != tc.next {
				t.Fatalf("%d records, next %d; want %d, next %d", len(got.Records), got.Next, tc.count, tc.next)
			}
			for i, r := range got.Records {
				if off := tc.first + uint64(i); r.Offset != off || string(r.Value) != want[off] {
					t.Fatalf("record %d: offset %d value %q, want %d %q", i, r.Offset, r.Value, off, want[off])
				}
			}
		})
	}
	// The binary batch comes back byte for byte.
	f, err := svc.Fetch(ctx, service.FetchRequest{Topic: "orders", Queue: 1, Offset: st.BaseOffset, MaxBytes: 1})
	if err != nil || len(f.Batches) != 1 || string(f.Batches[0].Data) != string(batch) || f.Next != st.BaseOffset+2 {
		t.Fatalf("binary fetch: %+v, %v", f, err)
	}
}
