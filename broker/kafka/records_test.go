package kafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ledgermq/ledgermq/wire"
)

// kafkaBatch builds a produce batch the way clients do, with kmsg's
// record encoding (an implementation not ours).
func kafkaBatch(t testing.TB, codec int, pid int64, seq int32, recs []kmsg.Record, firstTs int64) []byte {
	t.Helper()
	var raw []byte
	for i := range recs {
		r := recs[i]
		r.OffsetDelta = int32(i)
		body := r.AppendTo(nil)
		// kmsg writes Length as given: compute it from the encoding.
		r.Length = int32(len(body) - varintLen(int64(r.Length)))
		raw = r.AppendTo(raw)
	}
	var data []byte
	switch codec {
	case codecNone:
		data = raw
	case codecGzip:
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write(raw)
		w.Close()
		data = b.Bytes()
	case codecSnappy:
		data = snappy.Encode(nil, raw)
	case codecLZ4:
		var b bytes.Buffer
		w := lz4.NewWriter(&b)
		w.Write(raw)
		w.Close()
		data = b.Bytes()
	case codecZstd:
		e, _ := zstd.NewWriter(nil)
		data = e.EncodeAll(raw, nil)
	}
	rb := kmsg.RecordBatch{FirstOffset: 0, PartitionLeaderEpoch: -1, Magic: 2, Attributes: int16(codec),
		LastOffsetDelta: int32(len(recs) - 1), FirstTimestamp: firstTs, MaxTimestamp: firstTs, ProducerID: pid,
		ProducerEpoch: 0, FirstSequence: seq, NumRecords: int32(len(recs)), Records: data}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crcOf(b[21:]))
	return b
}

func varintLen(v int64) int { return len(binary.AppendVarint(nil, v)) }

func sampleRecords() []kmsg.Record {
	return []kmsg.Record{
		{Key: []byte("k1"), Value: []byte("v1"), TimestampDelta64: 0, Headers: []kmsg.Header{{Key: "h", Value: []byte("x")}}},
		{Key: nil, Value: []byte("v2"), TimestampDelta64: 5},
		{Key: []byte("k3"), Value: []byte{}, TimestampDelta64: 9, Headers: []kmsg.Header{{Key: "a", Value: nil}, {Key: "b", Value: []byte("2")}}},
	}
}

func TestParseBatchEveryCodec(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	for _, codec := range []int{codecNone, codecGzip, codecSnappy, codecLZ4, codecZstd} {
		b := kafkaBatch(t, codec, 42, 7, sampleRecords(), now.UnixMilli())
		got, _, err := parseBatches(b, 1<<20, now)
		if err != nil {
			t.Fatalf("codec %d: %v", codec, err)
		}
		if len(got) != 1 || got[0].producerID != 42 || got[0].baseSequence != 7 || got[0].codec != codec || len(got[0].msgs) != 3 {
			t.Fatalf("codec %d: %+v", codec, got)
		}
		m := got[0].msgs
		if string(m[0].Key) != "k1" || string(m[0].Value) != "v1" || len(m[0].Headers) != 1 || m[0].Headers[0].Key != "h" ||
			string(m[0].Headers[0].Value) != "x" || !m[0].Timestamp.Equal(now) {
			t.Fatalf("codec %d record 0: %+v", codec, m[0])
		}
		if m[1].Key != nil || string(m[1].Value) != "v2" || m[1].Timestamp.UnixMilli() != now.UnixMilli()+5 {
			t.Fatalf("codec %d record 1: %+v", codec, m[1])
		}
		if len(m[2].Headers) != 2 || m[2].Headers[0].Value != nil || string(m[2].Headers[1].Value) != "2" {
			t.Fatalf("codec %d record 2: %+v", codec, m[2])
		}
	}
}

// TestAppendBatchReadByKmsg: what fetch answers is a valid RecordBatch v2
// for an independent decoder (kmsg), CRC included, with the stored
// records at consecutive offsets from the batch's base.
func TestAppendBatchReadByKmsg(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	msgs := []wire.Message{{Key: []byte("a"), Value: []byte("1"), Timestamp: now},
		{Value: []byte("2"), Timestamp: now.Add(3 * time.Millisecond), Headers: []wire.Header{{Key: "h", Value: []byte("v")}}}}
	out := appendBatch(nil, 100, wire.BatchHeader{BaseTimestamp: now.UnixMilli()}, msgs, 7)
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(out); err != nil {
		t.Fatal(err)
	}
	if rb.FirstOffset != 100 || rb.NumRecords != 2 || rb.LastOffsetDelta != 1 || rb.PartitionLeaderEpoch != 7 ||
		int(rb.Length) != len(out)-12 || uint32(rb.CRC) != crcOf(out[21:]) {
		t.Fatalf("batch header %+v", rb)
	}
	recs := rb.Records
	for i := 0; i < 2; i++ {
		var r kmsg.Record
		n, l := binary.Varint(recs)
		if err := r.ReadFrom(recs[:l+int(n)]); err != nil {
			t.Fatal(err)
		}
		recs = recs[l+int(n):]
		if int(r.OffsetDelta) != i || string(r.Value) != string(msgs[i].Value) ||
			rb.FirstTimestamp+r.TimestampDelta64 != msgs[i].Timestamp.UnixMilli() {
			t.Fatalf("record %d: %+v", i, r)
		}
		if i == 0 && string(r.Key) != "a" || i == 1 && (r.Key != nil || len(r.Headers) != 1 || r.Headers[0].Key != "h") {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	// And it decodes back through our own produce path.
	got, _, err := parseBatches(out, 1<<20, now)
	if err != nil || len(got[0].msgs) != 2 {
		t.Fatalf("%v %+v", err, got)
	}
}

func TestParseBatchRefusals(t *testing.T) {
	now := time.Now()
	good := kafkaBatch(t, codecNone, -1, -1, sampleRecords(), now.UnixMilli())
	flip := append([]byte(nil), good...)
	flip[len(flip)-1] ^= 1
	old := append([]byte(nil), good...)
	old[16] = 1
	txn := kafkaBatch(t, codecNone, -1, -1, sampleRecords(), now.UnixMilli())
	binary.BigEndian.PutUint16(txn[21:], attrTransactional)
	binary.BigEndian.PutUint32(txn[17:], crcOf(txn[21:]))
	bigCount := append([]byte(nil), good...)
	binary.BigEndian.PutUint32(bigCount[57:], 1<<19)
	binary.BigEndian.PutUint32(bigCount[17:], crcOf(bigCount[21:]))
	cases := []struct {
		name  string
		b     []byte
		limit int
		want  error
	}{
		{"crc", flip, 1 << 20, errCorrupt},
		{"magic 1", old, 1 << 20, errOldFormat},
		{"transactional", txn, 1 << 20, errTransactional},
		{"truncated", good[:len(good)-3], 1 << 20, errCorrupt},
		{"count beyond the bytes", bigCount, 1 << 20, errCorrupt},
		{"over the limit", good, 10, errTooLarge},
		{"empty", nil, 1 << 20, errCorrupt},
	}
	for _, c := range cases {
		if _, _, err := parseBatches(c.b, c.limit, now); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// A decompression bomb stops at the limit.
	big := make([]kmsg.Record, 1)
	big[0] = kmsg.Record{Value: make([]byte, 1<<20)}
	for _, codec := range []int{codecGzip, codecSnappy, codecLZ4, codecZstd} {
		b := kafkaBatch(t, codec, -1, -1, big, now.UnixMilli())
		if _, _, err := parseBatches(b, 64<<10, now); !errors.Is(err, errTooLarge) {
			t.Errorf("codec %d bomb: %v", codec, err)
		}
	}
}

func FuzzParseBatches(f *testing.F) {
	now := time.UnixMilli(1_700_000_000_000)
	for _, codec := range []int{codecNone, codecGzip, codecSnappy, codecLZ4, codecZstd} {
		f.Add(kafkaBatch(f, codec, 1, 0, sampleRecords(), now.UnixMilli()))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		parseBatches(b, 1<<20, now) // as sent: must not panic
		// With the frame's length and CRC made right, so that the fuzzer
		// reaches the records.
		if len(b) >= batchHeaderSize {
			b = append([]byte(nil), b...)
			binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
			b[16] = magicV2
			binary.BigEndian.PutUint32(b[17:], crcOf(b[21:]))
		}
		got, _, err := parseBatches(b, 1<<20, now)
		if err != nil {
			return
		}
		// What parses converts and comes back through fetch's encoding.
		for _, ib := range got {
			out := appendBatch(nil, 0, wire.BatchHeader{}, ib.msgs, 0)
			again, _, err := parseBatches(out, 4<<20, now)
			if err != nil || len(again[0].msgs) != len(ib.msgs) {
				t.Fatalf("re-encoded batch: %v", err)
			}
		}
	})
}

func FuzzParseRequest(f *testing.F) {
	for _, r := range []kmsg.Request{kmsg.NewPtrApiVersionsRequest(), kmsg.NewPtrMetadataRequest(), kmsg.NewPtrProduceRequest(),
		kmsg.NewPtrFetchRequest(), kmsg.NewPtrJoinGroupRequest()} {
		for _, v := range []int16{0, 3, 9} {
			if v > r.MaxVersion() {
				continue
			}
			r.SetVersion(v)
			b := binary.BigEndian.AppendUint16(nil, uint16(r.Key()))
			b = binary.BigEndian.AppendUint16(b, uint16(v))
			b = binary.BigEndian.AppendUint32(b, 1)
			b = binary.BigEndian.AppendUint16(b, 1)
			b = append(b, 'c')
			if r.IsFlexible() {
				b = append(b, 0)
			}
			f.Add(r.AppendTo(b))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 8 {
			return
		}
		parseRequest(b) // must not panic
	})
}
