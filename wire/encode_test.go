package wire

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// wantDecoded is what Decode must return for msgs encoded at now: zero
// timestamps replaced by now, every timestamp cut to the millisecond, in
// UTC.
func wantDecoded(msgs []Message, now time.Time) []Message {
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		if m.Timestamp.IsZero() {
			m.Timestamp = now
		}
		m.Timestamp = time.UnixMilli(m.Timestamp.UnixMilli()).UTC()
		out[i] = m
	}
	return out
}

func roundTripCases() map[string][]Message {
	t0 := time.UnixMilli(1700000000123).UTC()
	many := make([]Message, 1000)
	for i := range many {
		many[i] = Message{Key: []byte{byte(i)}, Value: bytes.Repeat([]byte{byte(i)}, i%50), Timestamp: t0.Add(time.Duration(i%7) * time.Millisecond)}
	}
	return map[string][]Message{
		"one record no key":  {{Value: []byte("v"), Timestamp: t0}},
		"nil and empty keys": {{Key: nil, Value: []byte("a"), Timestamp: t0}, {Key: []byte{}, Value: []byte("b"), Timestamp: t0}, {Key: []byte{0, 0xff, 1}, Value: []byte("c"), Timestamp: t0}},
		"empty values":       {{Key: []byte("k"), Value: nil, Timestamp: t0}, {Key: []byte("k"), Value: []byte{}, Timestamp: t0}},
		"headers in order": {{Value: []byte("v"), Timestamp: t0, Headers: []Header{
			{"z", []byte("1")}, {"a", nil}, {"z", []byte("dup")}, {"", []byte("empty key")}, {"bin", []byte{0, 1, 2}}}}},
		"timestamps before the first": {{Value: []byte("1"), Timestamp: t0}, {Value: []byte("2"), Timestamp: t0.Add(-time.Hour)}, {Value: []byte("3"), Timestamp: t0.Add(time.Minute)}},
		"timestamps before 1970":      {{Value: []byte("1"), Timestamp: time.UnixMilli(-5000)}, {Value: []byte("2"), Timestamp: time.UnixMilli(-1)}},
		"zero timestamps take now":    {{Value: []byte("1")}, {Value: []byte("2"), Timestamp: t0}, {Value: []byte("3")}},
		"sub-millisecond cut":         {{Value: []byte("1"), Timestamp: t0.Add(999 * time.Microsecond)}},
		"large compressible value":    {{Key: []byte("big"), Value: bytes.Repeat([]byte("ledger"), 20000), Timestamp: t0}},
		"a thousand records":          many,
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	now := time.UnixMilli(1800000000000).Add(456 * time.Microsecond)
	for name, msgs := range roundTripCases() {
		for c := CodecNone; c <= CodecZstd; c++ {
			t.Run(name+"/"+c.String(), func(t *testing.T) {
				b, err := Encode(msgs, c, Producer{ID: 9, Sequence: 1 << 40}, 0xfffffffe, now)
				if err != nil {
					t.Fatal(err)
				}
				h, got, err := Decode(b, 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				want := wantDecoded(msgs, now)
				equalMessages(t, got, want)
				maxMs := want[0].Timestamp.UnixMilli()
				for _, m := range want {
					maxMs = max(maxMs, m.Timestamp.UnixMilli())
				}
				wantH := BatchHeader{Codec: c, Length: uint32(len(b)), Count: uint32(len(msgs)), BaseTimestamp: want[0].Timestamp.UnixMilli(),
					MaxTimestamp: maxMs, ProducerID: 9, Sequence: 1 << 40, GroupID: 0xfffffffe}
				if h != wantH {
					t.Fatalf("header %+v, want %+v", h, wantH)
				}
				if ph, err := ParseHeader(b); err != nil || ph != h {
					t.Fatalf("ParseHeader = %+v, %v; Decode's header %+v", ph, err, h)
				}
				for i, m := range got {
					if m.Timestamp.Location() != time.UTC {
						t.Fatalf("message %d timestamp in %v, want UTC", i, m.Timestamp.Location())
					}
				}
			})
		}
	}
}

// A compressed batch's messages must not alias the caller's buffer.
func TestDecodeCompressedDoesNotAliasInput(t *testing.T) {
	for c := CodecGzip; c <= CodecZstd; c++ {
		t.Run(c.String(), func(t *testing.T) {
			b, err := Encode([]Message{{Key: []byte("key"), Value: []byte("value")}}, c, Producer{}, 1, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			_, msgs, err := Decode(b, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			clear(b)
			if string(msgs[0].Key) != "key" || string(msgs[0].Value) != "value" {
				t.Fatalf("message changed with the input buffer: %q %q", msgs[0].Key, msgs[0].Value)
			}
		})
	}
}

func TestEncodeRejects(t *testing.T) {
	one := []Message{{Value: []byte("v")}}
	for _, c := range []struct {
		name  string
		msgs  []Message
		codec Codec
		want  error
	}{
		{"nil batch", nil, CodecNone, ErrEmptyBatch},
		{"empty batch", []Message{}, CodecZstd, ErrEmptyBatch},
		{"unknown codec", one, CodecZstd + 1, ErrCodec},
	} {
		t.Run(c.name, func(t *testing.T) {
			if b, err := Encode(c.msgs, c.codec, Producer{}, 1, time.Now()); !errors.Is(err, c.want) || b != nil {
				t.Fatalf("Encode = %d bytes, %v; want %v", len(b), err, c.want)
			}
		})
	}
}

// The layout documented in doc.go, checked field by field on a known
// batch.
func TestEncodeLayout(t *testing.T) {
	ts := time.UnixMilli(0x0102030405)
	b, err := Encode([]Message{{Key: []byte("k"), Value: []byte("vv"), Headers: []Header{{"h", []byte("x")}}, Timestamp: ts}},
		CodecNone, Producer{ID: 0x1122334455667788, Sequence: 0x99}, 0xaabbccdd, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("LMQB\x01\x00\x00\x00")
	want = append(want, b[8:12]...) // CRC, checked below
	want = append(want,
		0x44, 0, 0, 0, // length 56 + 12
		1, 0, 0, 0, // count
		0x05, 0x04, 0x03, 0x02, 0x01, 0, 0, 0, // base timestamp
		0x05, 0x04, 0x03, 0x02, 0x01, 0, 0, 0, // max timestamp
		0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, // producer id
		0x99, 0, 0, 0, 0, 0, 0, 0, // sequence
		0xdd, 0xcc, 0xbb, 0xaa, // group id
		11,     // record body length
		0,      // timestamp delta
		2, 'k', // key length + 1, key
		2, 'v', 'v', // value
		1, 1, 'h', 1, 'x', // one header
	)
	if !bytes.Equal(b, want) {
		t.Fatalf("batch\n%x\nwant\n%x", b, want)
	}
	if got, want := b[8:12], []byte{0, 0, 0, 0}; bytes.Equal(got, want) {
		t.Fatal("CRC left zero")
	}
	crc := batchCRC(b)
	if b[8] != byte(crc) || b[9] != byte(crc>>8) || b[10] != byte(crc>>16) || b[11] != byte(crc>>24) {
		t.Fatalf("CRC field %x, want CRC32C %08x of bytes [0,8) and [12,len)", b[8:12], crc)
	}
}

func TestMessageSize(t *testing.T) {
	for _, c := range []struct {
		name string
		m    Message
		want int
	}{
		{"empty", Message{}, 0},
		{"key and value", Message{Key: []byte("abc"), Value: []byte("de")}, 5},
		{"headers count keys and values", Message{Value: []byte("v"), Headers: []Header{{"k1", []byte("xyz")}, {"", nil}, {"k", nil}}}, 1 + 5 + 1},
		{"timestamp not counted", Message{Value: []byte("v"), Timestamp: time.Now()}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.m.Size(); got != c.want {
				t.Fatalf("Size() = %d, want %d", got, c.want)
			}
		})
	}
}

func TestSortHeaders(t *testing.T) {
	for _, c := range []struct {
		name     string
		in, want []Header
	}{
		{"nil", nil, nil},
		{"sorted already", []Header{{"a", nil}, {"b", nil}}, []Header{{"a", nil}, {"b", nil}}},
		{"reversed", []Header{{"c", []byte("3")}, {"b", []byte("2")}, {"a", []byte("1")}}, []Header{{"a", []byte("1")}, {"b", []byte("2")}, {"c", []byte("3")}}},
		{"bytewise, upper case first", []Header{{"b", nil}, {"B", nil}, {"", nil}, {"aa", nil}, {"a", nil}}, []Header{{"", nil}, {"B", nil}, {"a", nil}, {"aa", nil}, {"b", nil}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			SortHeaders(c.in)
			if len(c.in) != len(c.want) {
				t.Fatalf("%d headers, want %d", len(c.in), len(c.want))
			}
			for i := range c.in {
				if c.in[i].Key != c.want[i].Key || !bytes.Equal(c.in[i].Value, c.want[i].Value) {
					t.Fatalf("got %q, want %q", c.in, c.want)
				}
			}
		})
	}
}

// TestEncodeSizesRecordsExactly: the size Encode computes before writing
// is the size it writes, for timestamps before and after the first
// (negative and large varints), nil and empty keys, large values and
// many headers, so the batch is built without a buffer ever growing.
func TestEncodeSizesRecordsExactly(t *testing.T) {
	base := time.UnixMilli(1_700_000_000_000)
	msgs := []Message{
		{Timestamp: base},
		{Timestamp: base.Add(-time.Hour), Key: []byte{}, Value: bytes.Repeat([]byte{1}, 200)},
		{Timestamp: base.Add(1000 * time.Hour), Key: bytes.Repeat([]byte{2}, 300), Value: bytes.Repeat([]byte{3}, 70000),
			Headers: []Header{{Key: "a", Value: nil}, {Key: string(bytes.Repeat([]byte{'h'}, 130)), Value: bytes.Repeat([]byte{4}, 20000)}}},
		{}, // the encoder's clock
	}
	for i := range msgs {
		delta := int64(0)
		if !msgs[i].Timestamp.IsZero() {
			delta = msgs[i].Timestamp.UnixMilli() - base.UnixMilli()
		}
		if got, want := recordSize(&msgs[i], delta), len(appendRecord(nil, &msgs[i], delta)); got != want {
			t.Fatalf("message %d: recordSize %d, encoded %d", i, got, want)
		}
	}
	b, err := Encode(msgs, CodecNone, Producer{}, 0, base)
	if err != nil {
		t.Fatal(err)
	}
	if cap(b) != len(b) {
		t.Fatalf("batch of %d bytes in a buffer of %d: the size was not computed exactly", len(b), cap(b))
	}
	_, got, err := Decode(b, 1<<30, 1<<30)
	if err != nil || len(got) != len(msgs) {
		t.Fatalf("decode: %d messages, %v", len(got), err)
	}
	for i := range got {
		if !bytes.Equal(got[i].Value, msgs[i].Value) || len(got[i].Headers) != len(msgs[i].Headers) || (got[i].Key == nil) != (msgs[i].Key == nil) {
			t.Fatalf("message %d differs: %+v", i, got[i])
		}
	}
}
