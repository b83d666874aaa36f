package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/broker"
	"github.com/ledgermq/ledgermq/internal/brokertest"
	"github.com/ledgermq/ledgermq/wire"
)

// aFollower is the address of a broker of bs that is not the leader.
func aFollower(t *testing.T, bs []*broker.Broker) string {
	t.Helper()
	l := brokertest.Leader(t, bs)
	for _, b := range bs {
		if b != l {
			return b.Addr()
		}
	}
	t.Fatal("no follower")
	return ""
}

// TestReadYourWritesSDK: producer results and a created topic carry their
// index; DescribeTopicAt and a consumer WithMinIndex asking only a
// follower show everything acknowledged up to it; a token no broker has
// reached is refused (UNAVAILABLE), not answered from stale state.
func TestReadYourWritesSDK(t *testing.T) {
	bs := brokertest.Group(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm, err := NewAdmin(brokertest.Addrs(bs), WithRetryBackoff(5*time.Millisecond, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	created, err := adm.CreateTopic(ctx, wire.CreateTopicRequest{Name: "ryw", Queues: 4})
	if err != nil || created.Index == 0 {
		t.Fatalf("create: %+v, %v", created, err)
	}

	p, err := NewProducer(brokertest.Addrs(bs))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const n = 400
	var mu sync.Mutex
	var top uint64
	var failed error
	for i := range n {
		p.ProduceAsync(&Message{Topic: "ryw", Value: fmt.Appendf(nil, "m%d", i)}, func(r Result, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err == nil && r.Index <= created.Index {
				err = fmt.Errorf("result %+v: index not after the create's %d", r, created.Index)
			}
			if err != nil && failed == nil {
				failed = err
			}
			top = max(top, r.Index)
		})
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if failed != nil {
		t.Fatal(failed)
	}
	token := top
	mu.Unlock()

	follower := aFollower(t, bs)
	fadm, err := NewAdmin([]string{follower})
	if err != nil {
		t.Fatal(err)
	}
	defer fadm.Close()
	info, err := fadm.DescribeTopicAt(ctx, "ryw", token)
	if err != nil {
		t.Fatal(err)
	}
	total := uint64(0)
	for _, qi := range info.QueueInfo {
		total += qi.Next
	}
	if total != n {
		t.Fatalf("describe at index %d on a follower: %d messages, want %d", token, total, n)
	}

	starts := map[int]Start{0: AtStart(), 1: AtStart(), 2: AtStart(), 3: AtStart()}
	c, err := NewConsumer([]string{follower}, WithAssignment("ryw", starts), WithMinIndex(token))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := pollUntil(t, c, 20*time.Second, nil, func(r []Record) bool { return len(r) >= n }); len(got) != n {
		t.Fatalf("consumer at index %d: %d records, want %d", token, len(got), n)
	}

	// A token beyond the group's log: the broker waits for it (longer
	// than the caller does here) and no stale answer comes back.
	far := token + 1_000_000
	sctx, scancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer scancel()
	if _, err = fadm.DescribeTopicAt(sctx, "ryw", far); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), fmt.Sprint("min_index=", far)) {
		t.Fatalf("describe at an unreached index: %v", err)
	}
	stale, err := NewConsumer([]string{follower}, WithAssignment("ryw", starts), WithMinIndex(far), WithMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer stale.Close()
	pctx, pcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer pcancel()
	if recs, _ := stale.Poll(pctx); len(recs) != 0 {
		t.Fatalf("consumer at an unreached index got %d records", len(recs))
	}
}
