package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ledgermq/ledgermq/internal/cluster"
	"github.com/ledgermq/ledgermq/wire"
)

// Issue 14: Kafka clients no one here wrote (franz-go, sarama) against
// three broker processes with --kafka-listen.

func newKafkaGroup(t *testing.T, n int) (*group, []string) {
	t.Helper()
	c := startCluster(t, cluster.Options{Bin: binary(t, "broker"), Nodes: n, Dir: t.TempDir(), LogLevel: logLevel(),
		Args: []string{"--segment-bytes", "1048576"}, Kafka: true})
	g := &group{t: t, c: c, api: map[string]string{}, ids: c.IDs()}
	for _, id := range g.ids {
		g.api[id] = c.API(id)
	}
	waitUntil(t, 15*time.Second, "a leader", func() bool { return g.leader() != "" })
	return g, c.KafkaAddrs()
}

func kafkaClient(t *testing.T, seeds []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.RequestRetries(20), kgo.RetryTimeout(30 * time.Second)}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// kafkaCreateTopic creates a topic with CreateTopics.
func kafkaCreateTopic(t *testing.T, cl *kgo.Client, topic string, partitions int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, -1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10000
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create topic: %+v", resp.Topics)
	}
}

// kafkaConsumeAll reads every partition of topic from the start until want
// records arrived (or the deadline) and returns them by partition.
func kafkaConsumeAll(t *testing.T, seeds []string, topic string, want int) map[int32][]*kgo.Record {
	t.Helper()
	cl := kafkaClient(t, seeds, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	out := map[int32][]*kgo.Record{}
	got := 0
	deadline := time.Now().Add(60 * time.Second)
	for got < want && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		for _, e := range fs.Errors() {
			if e.Err != context.DeadlineExceeded {
				t.Logf("fetch error %s/%d: %v", e.Topic, e.Partition, e.Err)
			}
		}
		fs.EachRecord(func(r *kgo.Record) {
			out[r.Partition] = append(out[r.Partition], r)
			got++
		})
	}
	if got != want {
		t.Fatalf("consumed %d records, want %d", got, want)
	}
	return out
}

// checkExactlyOnce checks that the consumed records are the produced ones
// (value "i" with key "k<i%7>"), once each, in produce order within a
// partition, at consecutive offsets.
func checkExactlyOnce(t *testing.T, byPart map[int32][]*kgo.Record, produced map[string]int64) {
	t.Helper()
	seen := map[string]bool{}
	for p, recs := range byPart {
		last := -1
		for i, r := range recs {
			v := string(r.Value)
			if seen[v] {
				t.Fatalf("record %q consumed twice", v)
			}
			seen[v] = true
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("bad value %q", v)
			}
			if n <= last {
				t.Fatalf("partition %d: %d after %d: out of order", p, n, last)
			}
			last = n
			if i > 0 && r.Offset != recs[i-1].Offset+1 {
				t.Fatalf("partition %d: offset %d after %d", p, r.Offset, recs[i-1].Offset)
			}
			if off, ok := produced[v]; ok && off != r.Offset {
				t.Fatalf("record %q acknowledged at offset %d, read at %d", v, off, r.Offset)
			}
		}
	}
	for v := range produced {
		if !seen[v] {
			t.Fatalf("acknowledged record %q lost", v)
		}
	}
}

func TestKafkaFranzGoProduceConsume(t *testing.T) {
	g, seeds := newKafkaGroup(t, 3)
	admin := kafkaClient(t, seeds)
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{{"none", kgo.NoCompression()}, {"gzip", kgo.GzipCompression()}, {"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()}, {"zstd", kgo.ZstdCompression()}}
	for _, idem := range []bool{true, false} {
		for _, c := range codecs {
			name := fmt.Sprintf("%s-idempotent-%v", c.name, idem)
			t.Run(name, func(t *testing.T) {
				topic := "kt-" + name
				kafkaCreateTopic(t, admin, topic, 4)
				opts := []kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(c.codec)}
				if !idem {
					opts = append(opts, kgo.DisableIdempotentWrite())
				}
				p := kafkaClient(t, seeds, opts...)
				const n = 500
				produced := map[string]int64{}
				var recs []*kgo.Record
				for i := 0; i < n; i++ {
					recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i%7)), Value: []byte(strconv.Itoa(i)),
						Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v" + strconv.Itoa(i))}}})
				}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				for _, r := range p.ProduceSync(ctx, recs...) {
					if r.Err != nil {
						t.Fatalf("produce: %v", r.Err)
					}
					produced[string(r.Record.Value)] = r.Record.Offset
				}
				got := kafkaConsumeAll(t, seeds, topic, n)
				checkExactlyOnce(t, got, produced)
				for _, recs := range got {
					for _, r := range recs {
						i, _ := strconv.Atoi(string(r.Value))
						if string(r.Key) != fmt.Sprintf("k%d", i%7) || len(r.Headers) != 1 || string(r.Headers[0].Value) != "v"+strconv.Itoa(i) {
							t.Fatalf("record %d came back as key %q headers %v", i, r.Key, r.Headers)
						}
					}
				}
				// The same records through the HTTP API, at the same offsets.
				var q int32
				for q = range got {
					break
				}
				msgs := readQueue(t, g.api[g.leader()], topic, int(q), uint64(len(got[q])))
				if len(msgs) != len(got[q]) {
					t.Fatalf("HTTP read %d records of queue %d, Kafka %d", len(msgs), q, len(got[q]))
				}
				for i, m := range msgs {
					r := got[q][i]
					if m.Offset != uint64(r.Offset) || m.Value == nil || *m.Value != string(r.Value) || m.Key == nil || *m.Key != string(r.Key) ||
						m.Headers["h"] != string(r.Headers[0].Value) {
						t.Fatalf("queue %d record %d: HTTP %+v, Kafka offset %d key %q value %q", q, i, m, r.Offset, r.Key, r.Value)
					}
				}
			})
		}
	}
}

// produceValues produces values from..to-1 (key k<i%7>) and returns each
// acknowledged value's offset.
func produceValues(t *testing.T, p *kgo.Client, topic string, from, to int) map[string]int64 {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i%7)), Value: []byte(strconv.Itoa(i))})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := map[string]int64{}
	for _, r := range p.ProduceSync(ctx, recs...) {
		if r.Err != nil {
			t.Fatalf("produce: %v", r.Err)
		}
		out[string(r.Record.Value)] = r.Record.Offset
	}
	return out
}

// TestKafkaConsumerGroupRebalance: three franz-go members of one group
// (cooperative-sticky, franz-go's default) share a topic's partitions; one
// leaves mid-way and the others take its partitions over. Every record is
// processed, the committed offsets reach the ends and are what the HTTP
// API shows for the group, and the group cannot be joined through the
// LedgerMQ protocol meanwhile.
func TestKafkaConsumerGroupRebalance(t *testing.T) {
	g, seeds := newKafkaGroup(t, 3)
	const topic, grp, n = "kgroup", "kg", 3000
	admin := kafkaClient(t, seeds)
	kafkaCreateTopic(t, admin, topic, 6)
	produced := produceValues(t, kafkaClient(t, seeds), topic, 0, n/2)

	type seen struct {
		member int
		value  string
	}
	ch := make(chan seen, n*2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	members := make([]*kgo.Client, 3)
	done := make([]chan struct{}, 3)
	for i := range members {
		members[i] = kafkaClient(t, seeds, kgo.ConsumerGroup(grp), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond),
			kgo.AutoCommitInterval(200*time.Millisecond), kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(500*time.Millisecond))
		done[i] = make(chan struct{})
		go func(i int, cl *kgo.Client) {
			defer close(done[i])
			for ctx.Err() == nil {
				fs := cl.PollFetches(ctx)
				fs.EachRecord(func(r *kgo.Record) { ch <- seen{i, string(r.Value)} })
			}
		}(i, members[i])
	}
	got := map[string]int{}
	by := map[int]int{}
	collect := func(want int, within time.Duration) {
		deadline := time.After(within)
		for len(got) < want {
			select {
			case s := <-ch:
				got[s.value]++
				by[s.member]++
			case <-deadline:
				t.Fatalf("processed %d distinct records, want %d (by member %v)", len(got), want, by)
			}
		}
	}
	collect(n/2, 60*time.Second)
	// The group is Kafka's now: a LedgerMQ-protocol join is refused.
	code, err := do("POST", g.api[g.leader()], "/v1/groups/"+grp+"/members", wire.JoinGroupRequest{Topics: []string{topic}}, nil)
	var ae *wire.APIError
	if !errors.As(err, &ae) || ae.Code != wire.CodeGroupActive || code != 409 {
		t.Fatalf("LedgerMQ join of a Kafka group: %d %v, want 409 GROUP_ACTIVE", code, err)
	}
	// Member 2 leaves; its partitions move to the others.
	members[2].LeaveGroup()
	for k, v := range produceValues(t, kafkaClient(t, seeds), topic, n/2, n) {
		produced[k] = v
	}
	before := by[2]
	collect(n, 60*time.Second)
	if by[0]+by[1] == 0 || by[2] > before+n/2 {
		t.Fatalf("records by member %v", by)
	}
	for v := range produced {
		if got[v] == 0 {
			t.Fatalf("record %s never processed", v)
		}
	}
	// Committed offsets reach every partition's end, as the HTTP API shows.
	ends := map[int]uint64{}
	var info wire.TopicInfo
	if _, err := do("GET", g.api[g.leader()], "/v1/topics/"+topic, nil, &info); err != nil {
		t.Fatal(err)
	}
	for _, q := range info.QueueInfo {
		if q.Next > 0 { // a partition with no records has nothing to commit
			ends[q.Queue] = q.Next
		}
	}
	waitUntil(t, 30*time.Second, "committed offsets at the ends", func() bool {
		var gi wire.GroupInfo
		if _, err := do("GET", g.api[g.leader()], "/v1/groups/"+grp, nil, &gi); err != nil {
			if os.Getenv("LEDGERMQ_TEST_DEBUG") != "" {
				t.Logf("describe group: %v", err)
			}
			return false
		}
		at := 0
		for _, q := range gi.Queues {
			if end, ok := ends[q.Queue]; ok && q.Topic == topic && q.Committed != nil && *q.Committed == end {
				at++
			}
		}
		if at != len(ends) && os.Getenv("LEDGERMQ_TEST_DEBUG") != "" {
			t.Logf("group %+v ends %v", gi, ends)
		}
		return at == len(ends)
	})
	cancel()
	for i := range done {
		<-done[i]
	}
}

// TestKafkaLeaderKillExactlyOnce: a franz-go idempotent producer writes
// while the leader is killed with SIGKILL twice; every acknowledged record
// is then read exactly once, in order, at its acknowledged offset.
func TestKafkaLeaderKillExactlyOnce(t *testing.T) {
	g, seeds := newKafkaGroup(t, 3)
	const topic = "kfail"
	kafkaCreateTopic(t, kafkaClient(t, seeds), topic, 4)
	p := kafkaClient(t, seeds, kgo.DefaultProduceTopic(topic), kgo.RecordRetries(1000),
		kgo.RecordDeliveryTimeout(60*time.Second), kgo.ProduceRequestTimeout(5*time.Second))
	var mu sync.Mutex
	acked := map[string]int64{}
	var failed int
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for i := 0; ctx.Err() == nil; i++ {
			r := &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i%7)), Value: []byte(strconv.Itoa(i))}
			p.Produce(context.Background(), r, func(r *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed++
					return
				}
				acked[string(r.Value)] = r.Offset
			})
			if i%50 == 49 {
				time.Sleep(5 * time.Millisecond) // about 10k records/s, not a flood
			}
		}
	}()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	for kill := 0; kill < 2; kill++ {
		before := count()
		waitUntil(t, 30*time.Second, "acknowledgements", func() bool { return count() > before+2000 })
		l := g.leader()
		g.signal(l, syscall.SIGKILL)
		after := count()
		waitUntil(t, 30*time.Second, "acknowledgements after the kill", func() bool { return count() > after+2000 })
		g.start(l)
		if err := g.c.WaitCaughtUp(context.Background(), l, 1000, 60*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	<-stopped
	fctx, fcancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer fcancel()
	if err := p.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	produced := acked
	t.Logf("%d acknowledged, %d failed", len(produced), failed)
	mu.Unlock()
	if failed > 0 {
		t.Fatalf("%d records failed to produce (the producer retries for 60 s)", failed)
	}
	// What was acknowledged is there once; nothing was stored that was not
	// acknowledged (every record was acknowledged), so the total matches.
	var info wire.TopicInfo
	if _, err := do("GET", g.api[g.leader()], "/v1/topics/"+topic, nil, &info); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, q := range info.QueueInfo {
		total += int(q.Next - q.Earliest)
	}
	if total != len(produced) {
		t.Fatalf("%d records stored, %d acknowledged: duplicates", total, len(produced))
	}
	checkExactlyOnce(t, kafkaConsumeAll(t, seeds, topic, len(produced)), produced)
}

// TestKafkaReadsHTTPWrites: messages produced through the HTTP API (and so
// the SDK's format) are read by franz-go with the same key, value, headers
// and offsets, and a null key stays null.
func TestKafkaReadsHTTPWrites(t *testing.T) {
	g, seeds := newKafkaGroup(t, 3)
	const topic = "kh"
	if !g.writeLeader("/v1/topics", wire.CreateTopicRequest{Name: topic, Queues: 2}, nil, time.Now().Add(10*time.Second)) {
		t.Fatal("create topic failed")
	}
	var req wire.ProduceRequest
	for i := 0; i < 100; i++ {
		v, q := strconv.Itoa(i), i%2
		m := wire.ProduceMessage{Value: &v, Queue: &q, Headers: map[string]string{"n": v}}
		if i%3 != 0 {
			k := "key-" + v
			m.Key = &k
		}
		req.Messages = append(req.Messages, m)
	}
	var resp wire.ProduceResponse
	if !g.writeLeader("/v1/topics/"+topic+"/messages", req, &resp, time.Now().Add(10*time.Second)) || len(resp.Results) != 100 {
		t.Fatalf("HTTP produce: %+v", resp)
	}
	got := kafkaConsumeAll(t, seeds, topic, 100)
	for q, recs := range got {
		for _, r := range recs {
			i, _ := strconv.Atoi(string(r.Value))
			res := resp.Results[i]
			wantKey := ""
			if i%3 != 0 {
				wantKey = "key-" + strconv.Itoa(i)
			}
			if int(q) != res.Queue || uint64(r.Offset) != res.Offset || string(r.Key) != wantKey || (i%3 == 0) != (r.Key == nil) ||
				len(r.Headers) != 1 || r.Headers[0].Key != "n" || string(r.Headers[0].Value) != string(r.Value) {
				t.Fatalf("record %d: Kafka partition %d offset %d key %q headers %v; HTTP put it at %d/%d", i, q, r.Offset, r.Key, r.Headers, res.Queue, res.Offset)
			}
		}
	}
}
