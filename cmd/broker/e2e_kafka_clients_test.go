package main

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// Issue 14: Kafka clients beyond franz-go: kcat (librdkafka) and sarama.

func TestKafkaKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat is not installed (Debian: apt-get install kcat; .ci/run installs it)")
	}
	g, seeds := newKafkaGroup(t, 3)
	brokers := strings.Join(seeds, ",")
	run := func(stdin string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, kcat, append([]string{"-b", brokers}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kcat %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	kafkaCreateTopic(t, kafkaClient(t, seeds), "kc", 3)
	// Nodes learn each other's Kafka addresses from their status rounds
	// (every 500 ms): right after start a node may list fewer brokers.
	var md string
	waitUntil(t, 15*time.Second, "kcat -L listing 3 brokers and the topic", func() bool {
		md = run("", "-L")
		return strings.Contains(md, "3 brokers:") && strings.Contains(md, `topic "kc" with 3 partitions`)
	})
	var want []string
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		var in strings.Builder
		for i := 0; i < 50; i++ {
			fmt.Fprintf(&in, "k%d:%s-%d\n", i%5, codec, i)
			want = append(want, fmt.Sprintf("k%d=%s-%d", i%5, codec, i))
		}
		run(in.String(), "-P", "-t", "kc", "-K:", "-X", "compression.codec="+codec, "-X", "enable.idempotence=true")
	}
	out := run("", "-C", "-t", "kc", "-o", "beginning", "-e", "-q", "-f", "%k=%s %p %o\\n")
	var got []string
	next := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("kcat -C line %q", line)
		}
		got = append(got, f[0])
		if off, _ := strconv.Atoi(f[2]); off != next[f[1]] {
			t.Fatalf("partition %s: offset %d, want %d", f[1], off, next[f[1]])
		}
		next[f[1]]++
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("kcat consumed %d records, produced %d:\n%v", len(got), len(want), got)
	}
	// What kcat wrote, the HTTP API reads with the same keys and values.
	var q string
	for q = range next {
		break
	}
	qn, _ := strconv.Atoi(q)
	msgs := readQueue(t, g.api[g.leader()], "kc", qn, uint64(next[q]))
	for _, m := range msgs {
		if m.Key == nil || m.Value == nil || !strings.HasPrefix(*m.Key, "k") || !strings.Contains(*m.Value, "-") {
			t.Fatalf("HTTP read of kcat's record: %+v", m)
		}
	}
}

func saramaConfig(v sarama.KafkaVersion, codec sarama.CompressionCodec, idempotent bool) *sarama.Config {
	c := sarama.NewConfig()
	c.Version = v
	c.ClientID = "ledgermq-test"
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Return.Successes = true
	c.Producer.Compression = codec
	c.Producer.Retry.Max = 50
	c.Producer.Retry.Backoff = 100 * time.Millisecond
	c.Metadata.Retry.Max = 50
	c.Metadata.Retry.Backoff = 100 * time.Millisecond
	if idempotent {
		c.Producer.Idempotent = true
		c.Net.MaxOpenRequests = 1
	}
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Return.Errors = true
	return c
}

func TestKafkaSarama(t *testing.T) {
	_, seeds := newKafkaGroup(t, 3)
	admin, err := sarama.NewClusterAdmin(seeds, saramaConfig(sarama.V2_1_0_0, sarama.CompressionNone, false))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for _, v := range []sarama.KafkaVersion{sarama.V2_1_0_0, sarama.V3_6_0_0} {
		for _, codec := range []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionGZIP, sarama.CompressionSnappy,
			sarama.CompressionLZ4, sarama.CompressionZSTD} {
			for _, idem := range []bool{false, true} {
				name := fmt.Sprintf("v%s-%s-idempotent-%v", v, codec, idem)
				t.Run(name, func(t *testing.T) {
					topic := "sa-" + strings.ReplaceAll(name, ".", "_")
					if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: -1}, false); err != nil {
						t.Fatal(err)
					}
					cfg := saramaConfig(v, codec, idem)
					p, err := sarama.NewSyncProducer(seeds, cfg)
					if err != nil {
						t.Fatal(err)
					}
					defer p.Close()
					acked := map[string]int64{}
					part := map[string]int32{}
					for i := 0; i < 100; i++ {
						m := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("k%d", i%5)),
							Value:   sarama.StringEncoder(strconv.Itoa(i)),
							Headers: []sarama.RecordHeader{{Key: []byte("h"), Value: []byte("v" + strconv.Itoa(i))}}}
						pa, off, err := p.SendMessage(m)
						if err != nil {
							t.Fatalf("produce %d: %v", i, err)
						}
						acked[strconv.Itoa(i)], part[strconv.Itoa(i)] = off, pa
					}
					c, err := sarama.NewConsumer(seeds, cfg)
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					seen := map[string]bool{}
					for pa := int32(0); pa < 3; pa++ {
						pc, err := c.ConsumePartition(topic, pa, sarama.OffsetOldest)
						if err != nil {
							t.Fatal(err)
						}
						want := 0
						for _, p := range part {
							if p == pa {
								want++
							}
						}
						last := -1
						for got := 0; got < want; got++ {
							select {
							case m := <-pc.Messages():
								v := string(m.Value)
								n, _ := strconv.Atoi(v)
								if seen[v] || n <= last || acked[v] != m.Offset || part[v] != pa ||
									string(m.Key) != fmt.Sprintf("k%d", n%5) || len(m.Headers) != 1 || string(m.Headers[0].Value) != "v"+v {
									t.Fatalf("partition %d: record %q at %d (acked at %d/%d), key %q, headers %d, after %d", pa, v, m.Offset, part[v], acked[v], m.Key, len(m.Headers), last)
								}
								seen[v], last = true, n
							case err := <-pc.Errors():
								t.Fatalf("consume: %v", err)
							case <-time.After(30 * time.Second):
								t.Fatalf("partition %d: %d of %d records", pa, got, want)
							}
						}
						pc.Close()
					}
					if len(seen) != len(acked) {
						t.Fatalf("consumed %d of %d", len(seen), len(acked))
					}
				})
			}
		}
	}
}

// saramaHandler marks what its member consumes and commits it.
type saramaHandler struct {
	seen chan<- string
}

func (saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.seen <- string(m.Value)
		s.MarkMessage(m, "")
	}
	return nil
}

// TestKafkaSaramaConsumerGroup: three sarama members (range, then
// round-robin assignors), one leaving mid-way; every record is processed
// and the committed offsets reach the ends.
func TestKafkaSaramaConsumerGroup(t *testing.T) {
	g, seeds := newKafkaGroup(t, 3)
	cfg := saramaConfig(sarama.V2_1_0_0, sarama.CompressionNone, false)
	for _, strategy := range []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange(), sarama.NewBalanceStrategyRoundRobin()} {
		t.Run(strategy.Name(), func(t *testing.T) {
			topic, grp := "sg-"+strategy.Name(), "sgroup-"+strategy.Name()
			admin, err := sarama.NewClusterAdmin(seeds, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer admin.Close()
			if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 6, ReplicationFactor: -1}, false); err != nil {
				t.Fatal(err)
			}
			p, err := sarama.NewSyncProducer(seeds, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			produce := func(from, to int) {
				for i := from; i < to; i++ {
					if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(strconv.Itoa(i)), Value: sarama.StringEncoder(strconv.Itoa(i))}); err != nil {
						t.Fatal(err)
					}
				}
			}
			produce(0, 300)
			mcfg := saramaConfig(sarama.V2_1_0_0, sarama.CompressionNone, false)
			mcfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{strategy}
			mcfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
			seen := make(chan string, 1000)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var members []sarama.ConsumerGroup
			done := make(chan struct{}, 3)
			for i := 0; i < 3; i++ {
				cg, err := sarama.NewConsumerGroup(seeds, grp, mcfg)
				if err != nil {
					t.Fatal(err)
				}
				members = append(members, cg)
				mctx, mcancel := context.WithCancel(ctx)
				if i == 2 {
					defer mcancel()
					go func() { // the third member leaves after a while
						time.Sleep(2 * time.Second)
						mcancel()
					}()
				} else {
					defer mcancel()
				}
				go func(cg sarama.ConsumerGroup, ctx context.Context) {
					defer func() { done <- struct{}{} }()
					for ctx.Err() == nil {
						if err := cg.Consume(ctx, []string{topic}, saramaHandler{seen: seen}); err != nil && ctx.Err() == nil {
							time.Sleep(100 * time.Millisecond)
						}
					}
				}(cg, mctx)
			}
			got := map[string]bool{}
			collect := func(n int) {
				deadline := time.After(60 * time.Second)
				for len(got) < n {
					select {
					case v := <-seen:
						got[v] = true
					case <-deadline:
						t.Fatalf("processed %d of %d", len(got), n)
					}
				}
			}
			collect(300)
			<-done // the third member is gone
			produce(300, 600)
			collect(600)
			waitUntil(t, 30*time.Second, "committed offsets at the ends", func() bool {
				var gi struct {
					Queues []struct {
						Queue     int     `json:"queue"`
						Committed *uint64 `json:"committed"`
						Next      uint64  `json:"next"`
					} `json:"queues"`
				}
				if _, err := do("GET", g.api[g.leader()], "/v1/groups/"+grp, nil, &gi); err != nil {
					return false
				}
				at := 0
				for _, q := range gi.Queues {
					if q.Next == 0 || (q.Committed != nil && *q.Committed == q.Next) {
						at++
					}
				}
				return at == 6 && len(gi.Queues) == 6
			})
			cancel()
			for _, m := range members {
				m.Close()
			}
		})
	}
}
