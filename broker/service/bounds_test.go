package service_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/topics"
	"github.com/ledgermq/ledgermq/wire"
)

// headerBomb is a zstd batch of records made of empty headers that
// inflates to about 63 MiB (under the default 64 MiB records limit):
// records of perRecord empty headers each.
func headerBomb(t testing.TB, records, perRecord int) []byte {
	t.Helper()
	now := time.Now()
	hs := make([]wire.Header, perRecord)
	msgs := make([]wire.Message, records)
	for i := range msgs {
		msgs[i] = wire.Message{Value: []byte{}, Headers: hs, Timestamp: now}
	}
	b, err := wire.Encode(msgs, wire.CodecZstd, wire.Producer{}, 1, now)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// allocDuring is the bytes allocated while f runs (TotalAlloc delta; the
// group's own background work adds a little noise).
func allocDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestHeaderBombRefused (issue 11: header bomb): a ~10 KB zstd batch that
// inflates to ~63 MiB of empty headers is refused with
// MESSAGE_TOO_LARGE, and refusing it allocates well under 128 MiB, both
// shaped as few records of millions of headers (the bound per record
// used to count empty headers as 0 bytes) and as many records of
// MaxHeaders headers (refused by their charged size).
func TestHeaderBombRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 63 MiB batches")
	}
	svc := single(t)
	ctx := context.Background()
	if _, err := svc.CreateTopic(ctx, topics.Config{Name: "big", Queues: 1}); err != nil { // 1 MiB messages
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name               string
		records, perRecord int
	}{
		{"millions of headers per record", 21, 1_500_000},
		{"MaxHeaders per record", 490_000, wire.MaxHeaders},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bomb := headerBomb(t, tc.records, tc.perRecord)
			t.Logf("bomb: %d bytes compressed", len(bomb))
			var err error
			alloc := allocDuring(func() { _, err = svc.ProduceBatch(ctx, "big", 0, bomb) })
			t.Logf("refusing it allocated %d MiB: %v", alloc>>20, err)
			var ae *wire.APIError
			if !errors.As(svc.AsError(err), &ae) || ae.Code != wire.CodeMessageTooLarge || !ae.NotApplied {
				t.Fatalf("ProduceBatch(bomb) = %v, want MESSAGE_TOO_LARGE, not applied", err)
			}
			if alloc >= 128<<20 {
				t.Fatalf("refusing the bomb allocated %d MiB, want < 128 MiB", alloc>>20)
			}
		})
	}
}

// A JSON-produced message is charged HeaderOverhead per header and may
// carry at most MaxHeaders of them.
func TestProduceChargesHeaders(t *testing.T) {
	svc := single(t) // 1 KiB messages
	ctx := context.Background()
	hs := func(n int) []wire.Header {
		out := make([]wire.Header, n)
		for i := range out {
			out[i].Key = string(rune('a'+i%26)) + string(rune('a'+i/26))
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		headers int
		ok      bool
	}{
		{"few empty headers", 10, true},
		{"empty headers past the limit by their overhead", 30, false}, // 30×(2+40) > 1024
		{"more than MaxHeaders", wire.MaxHeaders + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svc.Produce(ctx, "orders", []service.Message{{Message: wire.Message{Value: []byte("v"), Headers: hs(tc.headers)}}})
			if tc.ok != (err == nil) {
				t.Fatalf("Produce = %v, want ok %v", err, tc.ok)
			}
			if err != nil {
				if ae := svc.AsError(err); ae.Code != wire.CodeMessageTooLarge {
					t.Fatalf("code %s, want MESSAGE_TOO_LARGE", ae.Code)
				}
			}
		})
	}
}
