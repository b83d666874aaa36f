package natsdriver

import (
	"context"
	"encoding/binary"
	"log/slog"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/bench/omb/driver"
)

// TestProducerQueueConsumerCPU runs a real 3-node nats-server cluster
// (skipped without nats-server): a producer with a 16-message in-flight
// window publishes 2,000 messages over 4 subjects and every done callback
// reports success; the settings name the window and sync_interval; the
// servers' CPU grew; a consumer of queues 1 and 3 reads exactly the
// messages published to them and a consumer of every queue all of them.
func TestProducerQueueConsumerCPU(t *testing.T) {
	if _, err := FindServer(); err != nil {
		t.Skip(err)
	}
	if testing.Short() {
		t.Skip("starts three nats-server processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	d := New()
	if err := d.SetMaxInFlight(16); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, driver.Options{Durability: "fsync", BaseDir: t.TempDir(), Log: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	if got := d.Settings(); got["inflight"] != "16" || got["sync_interval"] != "always (fsync before ack)" || d.Name() != "nats" {
		t.Errorf("settings %v, name %s", got, d.Name())
	}
	cpu0, err := d.ServerCPU()
	if err != nil {
		t.Fatal(err)
	}
	const n, queues = 2000, 4
	if err := d.CreateTopic(ctx, "t", queues); err != nil {
		t.Fatal(err)
	}
	p, err := d.NewProducer(ctx, "t", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	okc := make(chan error, n)
	for i := range n {
		v := make([]byte, 64)
		binary.BigEndian.PutUint64(v, uint64(i))
		p.Send(nil, v, func(err error) { okc <- err })
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-okc; err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	if cpu1, err := d.ServerCPU(); err != nil || cpu1 <= cpu0 {
		t.Errorf("server CPU %s → %s (%v): want growth", cpu0, cpu1, err)
	}
	// The producer spreads keyless messages round-robin: message i goes
	// to queue (i+1) % queues.
	want := func(read ...int) int {
		c := 0
		for i := range n {
			for _, q := range read {
				if (i+1)%queues == q {
					c++
				}
			}
		}
		return c
	}
	for _, tc := range []struct {
		read []int
		all  bool
	}{{[]int{1, 3}, false}, {nil, true}} {
		var c driver.Consumer
		if tc.all {
			c, err = d.NewConsumer(ctx, "t", queues)
		} else {
			c, err = d.NewQueueConsumer(ctx, "t", queues, tc.read)
		}
		if err != nil {
			t.Fatal(err)
		}
		w := n
		if !tc.all {
			w = want(tc.read...)
		}
		got := 0
		for {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			msgs, err := c.Receive(rctx)
			cancel()
			for _, m := range msgs {
				i := int(binary.BigEndian.Uint64(m.Value))
				if !tc.all && (i+1)%queues != 1 && (i+1)%queues != 3 {
					t.Errorf("message %d of queue %d read by a consumer of %v", i, (i+1)%queues, tc.read)
				}
			}
			got += len(msgs)
			if err != nil {
				break
			}
		}
		c.Close()
		if got != w {
			t.Errorf("consumer of %v (all %v): read %d, want %d", tc.read, tc.all, got, w)
		}
	}
}
