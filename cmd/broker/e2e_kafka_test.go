package main

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ledgermq/ledgermq/internal/cluster"
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
