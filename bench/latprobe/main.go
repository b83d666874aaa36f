// Command latprobe measures the latency of one produce at a time (no
// queueing): the floor of the commit path. With -concurrency N, N
// goroutines each produce one message at a time to their own queue.
//
//	go run ./bench/latprobe -brokers 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003 -n 2000
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ledgermq/ledgermq/client"
	"github.com/ledgermq/ledgermq/wire"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003", "broker API addresses")
	n := flag.Int("n", 2000, "messages per goroutine")
	conc := flag.Int("concurrency", 1, "goroutines, one queue each")
	size := flag.Int("size", 1024, "value bytes")
	topic := flag.String("topic", "latprobe", "topic (created with -concurrency queues when missing)")
	flag.Parse()
	addrs := strings.Split(*brokers, ",")
	ctx := context.Background()
	p, err := client.NewProducer(addrs, client.WithLinger(0))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Admin().DescribeTopic(ctx, *topic); err != nil {
		if _, err := p.Admin().CreateTopic(ctx, wire.CreateTopicRequest{Name: *topic, Queues: max(*conc, 1)}); err != nil {
			log.Fatal(err)
		}
	}
	val := make([]byte, *size)
	var mu sync.Mutex
	var lats []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	for g := range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, *n)
			for range *n {
				t0 := time.Now()
				if _, err := p.Produce(ctx, &client.Message{Topic: *topic, Queue: &g, Value: val}); err != nil {
					log.Fatal(err)
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(lats)
	q := func(f float64) time.Duration { return lats[min(len(lats)-1, int(f*float64(len(lats))))] }
	fmt.Printf("%d msgs in %v (%.0f msgs/s): p50 %v p90 %v p99 %v p99.9 %v max %v\n", len(lats), el.Round(time.Millisecond),
		float64(len(lats))/el.Seconds(), q(.5), q(.9), q(.99), q(.999), lats[len(lats)-1])
}
