package driver

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// APIKafka produces and consumes through the brokers' Kafka listener
// (issue 14) with franz-go, a Kafka client no one here wrote: idempotent
// producer (franz-go's default), acks=all, the workload's linger and batch
// size, up to 5 requests in flight per broker (franz-go's default and the
// most an idempotent Kafka producer may have).
const APIKafka = "kafka"

func (d *LedgerMQ) kafkaOpts(more ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(d.g.KafkaAddrs()...), kgo.RetryTimeout(time.Minute)}
	if d.tls {
		opts = append(opts, kgo.DialTLSConfig(d.g.TLSConfig()))
	}
	return append(opts, more...)
}

func (d *LedgerMQ) newKafkaProducer(topic string, batchBytes int, linger time.Duration) (Producer, error) {
	opts := d.kafkaOpts(kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(linger), kgo.RecordRetries(1<<30),
		kgo.MaxBufferedRecords(1<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if batchBytes > 0 {
		opts = append(opts, kgo.ProducerBatchMaxBytes(int32(batchBytes)))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("ledgermq kafka producer: %w", err)
	}
	return &kafkaProducer{cl: cl}, nil
}

type kafkaProducer struct{ cl *kgo.Client }

func (p *kafkaProducer) Send(key, value []byte, done func(err error)) {
	p.cl.Produce(context.Background(), &kgo.Record{Key: key, Value: value}, func(_ *kgo.Record, err error) { done(err) })
}
func (p *kafkaProducer) Flush(ctx context.Context) error { return p.cl.Flush(ctx) }
func (p *kafkaProducer) Close() error                    { p.cl.Close(); return nil }

func (d *LedgerMQ) newKafkaConsumer(topic string, read []int) (Consumer, error) {
	parts := map[int32]kgo.Offset{}
	for _, q := range read {
		parts[int32(q)] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(d.kafkaOpts(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchMaxWait(100*time.Millisecond))...)
	if err != nil {
		return nil, fmt.Errorf("ledgermq kafka consumer: %w", err)
	}
	return &kafkaConsumer{cl: cl}, nil
}

type kafkaConsumer struct{ cl *kgo.Client }

func (c *kafkaConsumer) Receive(ctx context.Context) ([]Msg, error) {
	fs := c.cl.PollFetches(ctx)
	var out []Msg
	fs.EachRecord(func(r *kgo.Record) { out = append(out, Msg{Key: r.Key, Value: r.Value}) })
	if err := ctx.Err(); err != nil && len(out) == 0 {
		return nil, err
	}
	for _, e := range fs.Errors() {
		if e.Err != context.Canceled && e.Err != context.DeadlineExceeded {
			return out, e.Err
		}
	}
	return out, nil
}
func (c *kafkaConsumer) Close() error { c.cl.Close(); return nil }
