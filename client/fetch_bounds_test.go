package client

import (
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/ledgermq/ledgermq/wire"
)

// TestDecodeFramesHeaderBombBounded (issue 11: header bomb): a stored
// ~7 KB zstd batch of ~63 MiB of empty headers (what brokers before the
// fix accepted) is refused by the SDK's decode with ErrTooLarge, and
// refusing it allocates well under 128 MiB instead of gigabytes.
func TestDecodeFramesHeaderBombBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 63 MiB batch")
	}
	for _, shape := range []struct{ records, perRecord int }{{21, 1_500_000}, {490_000, wire.MaxHeaders}} {
		decodeBomb(t, shape.records, shape.perRecord)
	}
}

func decodeBomb(t *testing.T, records, perRecord int) {
	now := time.Now()
	msgs := make([]wire.Message, records)
	hs := make([]wire.Header, perRecord)
	for i := range msgs {
		msgs[i] = wire.Message{Value: []byte{}, Headers: hs, Timestamp: now}
	}
	batch, err := wire.Encode(msgs, wire.CodecZstd, wire.Producer{}, 1, now)
	if err != nil {
		t.Fatal(err)
	}
	msgs = nil
	body := binary.LittleEndian.AppendUint64(nil, 0)
	body = binary.LittleEndian.AppendUint32(body, uint32(len(batch)))
	body = append(body, batch...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = decodeFramesLimit(body, TopicQueue{Topic: "t"}, 0, time.Time{}, batchDecodeLimit(DefaultFetchMaxBytes))
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d records of %d headers: decoding the bomb allocated %d MiB: %v", records, perRecord, alloc>>20, err)
	if !errors.Is(err, wire.ErrTooLarge) {
		t.Fatalf("decodeFrames(bomb) = %v, want ErrTooLarge", err)
	}
	// The application learns where the batch ends, to skip it if it
	// chooses (Seek(AtOffset(Next))).
	var be *BatchError
	if !errors.As(err, &be) || be.Topic != "t" || be.Offset != 0 || be.Next != uint64(records) {
		t.Fatalf("decodeFrames(bomb) = %#v, want a BatchError for offsets [0, %d)", err, records)
	}
	if alloc >= 128<<20 {
		t.Fatalf("decoding the bomb allocated %d MiB, want < 128 MiB", alloc>>20)
	}
}

func TestBatchDecodeLimit(t *testing.T) {
	if got := batchDecodeLimit(1 << 20); got != 64<<20 {
		t.Errorf("batchDecodeLimit(1 MiB) = %d, want 64 MiB", got)
	}
	if got := batchDecodeLimit(32 << 20); got != 128<<20 {
		t.Errorf("batchDecodeLimit(32 MiB) = %d, want 128 MiB", got)
	}
}

// FuzzDecodeFrames: the SDK's fetch decoding never panics and refuses
// bad input with ErrMalformed or ErrTooLarge.
func FuzzDecodeFrames(f *testing.F) {
	now := time.Now()
	for c := wire.CodecNone; c <= wire.CodecZstd; c++ {
		b, _ := wire.Encode([]wire.Message{{Key: []byte("k"), Value: []byte("v"), Headers: []wire.Header{{Key: "h"}}}, {Value: []byte("w")}}, c, wire.Producer{}, 1, now)
		frame := binary.LittleEndian.AppendUint64(nil, 5)
		frame = binary.LittleEndian.AppendUint32(frame, uint32(len(b)))
		f.Add(append(frame, b...))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		recs, err := decodeFramesLimit(body, TopicQueue{Topic: "t"}, 0, time.Time{}, 1<<20)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) && !errors.Is(err, wire.ErrTooLarge) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		for _, r := range recs {
			if len(r.Headers) > wire.MaxHeaders {
				t.Fatalf("record with %d headers", len(r.Headers))
			}
		}
	})
}

// TestRecordsInSizesDecode: the capacity estimate is the answer's record
// count, so decoding fills its result without growing it, and an answer
// whose headers lie cannot make it allocate more than one record per 8
// bytes.
func TestRecordsInSizesDecode(t *testing.T) {
	now := time.Now()
	var body []byte
	base := uint64(0)
	for _, n := range []int{3, 5, 1} {
		msgs := make([]wire.Message, n)
		for i := range msgs {
			msgs[i] = wire.Message{Value: []byte("v"), Timestamp: now}
		}
		batch, err := wire.Encode(msgs, wire.CodecNone, wire.Producer{}, 1, now)
		if err != nil {
			t.Fatal(err)
		}
		body = binary.LittleEndian.AppendUint64(body, base)
		body = binary.LittleEndian.AppendUint32(body, uint32(len(batch)))
		body = append(body, batch...)
		base += uint64(n)
	}
	if got := recordsIn(body); got != 9 {
		t.Fatalf("recordsIn = %d, want 9", got)
	}
	recs, err := decodeFramesLimit(body, TopicQueue{Topic: "t"}, 0, time.Time{}, batchDecodeLimit(DefaultFetchMaxBytes))
	if err != nil || len(recs) != 9 || cap(recs) != 9 {
		t.Fatalf("%d records in a slice of %d: %v", len(recs), cap(recs), err)
	}
	lying := append([]byte(nil), body[:wire.FetchFrameHeader+wire.HeaderSize]...)
	binary.LittleEndian.PutUint32(lying[wire.FetchFrameHeader+16:], 1<<31)
	if got := recordsIn(lying); got > len(lying)/8+16 {
		t.Fatalf("a lying count sizes %d records for %d bytes", got, len(lying))
	}
}
