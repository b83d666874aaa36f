package runner

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgermq/ledgermq/bench/omb/driver"
)

// Backlog is a backlog-drain run (workload consumerBacklogSizeGB): the
// producers first publish the backlog with no consumer reading, then, for
// each consumer count, fresh consumers read every queue from the start
// (the queues split round-robin between them) until every acknowledged
// message was received.
type Backlog struct {
	Messages       int64         `json:"messages"` // acknowledged
	Bytes          int64         `json:"bytes"`
	ProduceSeconds float64       `json:"produceSeconds"`
	ProduceRate    float64       `json:"produceRate"` // msgs/s
	Drains         []BacklogRead `json:"drains"`
	// CPU is the servers' CPU per message of the produce phase (drivers
	// with driver.CPUReporter).
	CPU *CPU `json:"cpu,omitempty"`
}

// BacklogRead is one drain of the whole backlog by Consumers consumers:
// from creating the consumers to the last message received.
type BacklogRead struct {
	Consumers  int     `json:"consumers"`
	Received   int64   `json:"received"` // distinct acknowledged messages
	Lost       int64   `json:"lost"`     // acknowledged, not received
	Duplicates int64   `json:"duplicates"`
	Seconds    float64 `json:"seconds"`
	MsgsPerSec float64 `json:"msgsPerSec"`
	MBps       float64 `json:"mbps"` // payload, MB = 10^6
	CPU        *CPU    `json:"cpu,omitempty"`
	Skipped    string  `json:"skipped,omitempty"` // why it did not run
}

// backlogIdle ends a drain when nothing arrived for so long.
const backlogIdle = 10 * time.Second

// backlog runs a backlog-drain workload.
func (r *run) backlog(ctx context.Context, res *Result) error {
	w := r.w
	topic := fmt.Sprintf("omb-%s-0", w.Name)
	if w.Topics != 1 {
		return fmt.Errorf("backlog drain: topics must be 1, got %d", w.Topics)
	}
	if err := r.d.CreateTopic(ctx, topic, w.QueuesPerTopic); err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	total := int64(w.ConsumerBacklogSizeGB * 1e9 / float64(w.MessageSize))
	nprod := w.ProducersPerTopic
	r.tr = newTracker(nprod)
	r.winS, r.winE = time.Now(), time.Now().Add(24*time.Hour) // every ack counts
	b := &Backlog{}
	res.Backlog = b
	r.log.Info("backlog: producing", "messages", total, "producers", nprod)
	cpu0, hasCPU := readCPU(r.d)
	t0 := time.Now()
	var wg sync.WaitGroup
	var prodErr error
	var mu sync.Mutex
	for i := range nprod {
		n := total / int64(nprod)
		if int64(i) < total%int64(nprod) {
			n++
		}
		wg.Go(func() {
			if err := r.produceN(ctx, topic, i, n); err != nil {
				mu.Lock()
				prodErr = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if prodErr != nil {
		return prodErr
	}
	b.ProduceSeconds = time.Since(t0).Seconds()
	b.Messages = r.acks.Load()
	b.Bytes = b.Messages * int64(w.MessageSize)
	b.ProduceRate = float64(b.Messages) / b.ProduceSeconds
	if cpu1, ok := readCPU(r.d); ok && hasCPU {
		b.CPU = cpuUsed(cpu0, cpu1, b.Messages)
	}
	r.log.Info("backlog produced", "messages", b.Messages, "seconds", b.ProduceSeconds, "errors", r.errs.Load())
	for _, n := range w.BacklogConsumers {
		b.Drains = append(b.Drains, r.drainBacklog(ctx, topic, n, b.Messages))
	}
	res.Published, res.Acked, res.PublishErrors = b.Messages, b.Messages, r.errs.Load()
	res.PublishRate, res.PublishMBps = b.ProduceRate, b.ProduceRate*float64(w.MessageSize)/1e6
	r.mu.Lock()
	res.PublishLatency = r.pubH.Summary()
	r.mu.Unlock()
	return ctx.Err()
}

// produceN publishes n messages as fast as the system acknowledges them
// and waits for every acknowledgement.
func (r *run) produceN(ctx context.Context, topic string, idx int, n int64) error {
	p, err := r.d.NewProducer(ctx, topic, r.w.BatchBytes, r.w.Linger())
	if err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	sem := r.outstanding()
	for seq := range uint64(n) {
		if !r.send(ctx, p, sem, idx, seq) {
			p.Close()
			return ctx.Err()
		}
	}
	fctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	return errors.Join(p.Flush(fctx), p.Close())
}

// drainBacklog reads the whole topic with n consumers, each reading its
// share of the queues.
func (r *run) drainBacklog(ctx context.Context, topic string, n int, want int64) BacklogRead {
	br := BacklogRead{Consumers: n}
	qc, canSplit := r.d.(driver.QueueConsumer)
	if n > 1 && !canSplit {
		br.Skipped = fmt.Sprintf("driver %s cannot read a subset of the queues (driver.QueueConsumer)", r.d.Name())
		return br
	}
	t2 := newTracker(len(r.tr.per))
	var got atomic.Int64
	cpu0, hasCPU := readCPU(r.d)
	t0 := time.Now()
	var cons []driver.Consumer
	defer func() {
		for _, c := range cons {
			c.Close()
		}
	}()
	for i := range n {
		var c driver.Consumer
		var err error
		if n == 1 {
			c, err = r.d.NewConsumer(ctx, topic, r.w.QueuesPerTopic)
		} else {
			var qs []int
			for q := i; q < r.w.QueuesPerTopic; q += n {
				qs = append(qs, q)
			}
			c, err = qc.NewQueueConsumer(ctx, topic, r.w.QueuesPerTopic, qs)
		}
		if err != nil {
			br.Skipped = fmt.Sprintf("consumer: %v", err)
			return br
		}
		cons = append(cons, c)
	}
	var last atomic.Int64 // unix nanos of the last reception
	dctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	for _, c := range cons {
		wg.Go(func() {
			for dctx.Err() == nil {
				msgs, err := c.Receive(dctx)
				if err != nil && len(msgs) == 0 {
					if dctx.Err() == nil {
						r.log.Warn("backlog receive", "err", err)
						time.Sleep(20 * time.Millisecond)
					}
					continue
				}
				for _, m := range msgs {
					if len(m.Value) >= 16 {
						t2.received(binary.BigEndian.Uint64(m.Value[8:]))
					}
				}
				last.Store(time.Now().UnixNano())
				got.Add(int64(len(msgs)))
			}
		})
	}
	for ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		if got.Load() >= want {
			if lost, _ := r.tr.stored(t2); lost == 0 {
				break
			}
		}
		l := last.Load()
		if (l == 0 && time.Since(t0) > backlogIdle) || (l > 0 && time.Since(time.Unix(0, l)) > backlogIdle) {
			r.log.Warn("backlog drain: nothing received", "for", backlogIdle, "consumers", n)
			break
		}
	}
	end := time.Unix(0, last.Load())
	if cpu1, ok := readCPU(r.d); ok && hasCPU {
		br.CPU = cpuUsed(cpu0, cpu1, want)
	}
	stop()
	wg.Wait()
	br.Lost, br.Duplicates = r.tr.stored(t2)
	br.Received = want - br.Lost
	if br.Seconds = end.Sub(t0).Seconds(); br.Seconds > 0 {
		br.MsgsPerSec = float64(br.Received) / br.Seconds
		br.MBps = br.MsgsPerSec * float64(r.w.MessageSize) / 1e6
	}
	r.log.Info("backlog drained", "consumers", n, "received", br.Received, "lost", br.Lost, "duplicates", br.Duplicates, "seconds", br.Seconds, "msgs_per_s", br.MsgsPerSec)
	return br
}
