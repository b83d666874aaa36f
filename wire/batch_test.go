package wire

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

func sampleMessages() []Message {
	now := time.UnixMilli(1700000000123).UTC()
	return []Message{
		{Key: []byte("k1"), Value: []byte("hello"), Headers: []Header{{"a", []byte("1")}, {"b", nil}}, Timestamp: now},
		{Key: nil, Value: []byte{}, Timestamp: now.Add(5 * time.Millisecond)},
		{Key: []byte{}, Value: bytes.Repeat([]byte("x"), 3000), Timestamp: now.Add(-time.Second)},
	}
}

func equalMessages(t *testing.T, got, want []Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if (g.Key == nil) != (w.Key == nil) || !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) || !g.Timestamp.Equal(w.Timestamp) || len(g.Headers) != len(w.Headers) {
			t.Fatalf("message %d: got %+v want %+v", i, g, w)
		}
		for k := range g.Headers {
			if g.Headers[k].Key != w.Headers[k].Key || !bytes.Equal(g.Headers[k].Value, w.Headers[k].Value) {
				t.Fatalf("message %d header %d differs", i, k)
			}
		}
	}
}

func TestRoundTripEveryCodec(t *testing.T) {
	for c := CodecNone; c <= CodecZstd; c++ {
		t.Run(c.String(), func(t *testing.T) {
			msgs := sampleMessages()
			b, err := Encode(msgs, c, Producer{ID: 7, Sequence: 42}, 3, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			h, got, err := Decode(b, 1<<20, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if h.Codec != c || h.Count != 3 || h.ProducerID != 7 || h.Sequence != 42 || h.GroupID != 3 {
				t.Fatalf("header %+v", h)
			}
			if h.BaseTimestamp != msgs[0].Timestamp.UnixMilli() || h.MaxTimestamp != msgs[1].Timestamp.UnixMilli() {
				t.Fatalf("timestamps %d %d", h.BaseTimestamp, h.MaxTimestamp)
			}
			equalMessages(t, got, msgs)
			if pc, err := ParseCodec(c.String()); err != nil || pc != c {
				t.Fatalf("ParseCodec(%s) = %v %v", c, pc, err)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := Encode(sampleMessages(), CodecNone, Producer{}, 1, time.Now())
	if _, _, err := Decode(good[:len(good)-1], 0, 0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated: %v", err)
	}
	if _, _, err := Decode(append(append([]byte(nil), good...), 0), 0, 0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("trailing byte: %v", err)
	}
	for i := range good {
		bad := append([]byte(nil), good...)
		bad[i] ^= 0x01
		if _, _, err := Decode(bad, 0, 0); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	if _, _, err := Decode(good, 0, 100); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("message over limit: %v", err)
	}
	z, _ := Encode([]Message{{Value: bytes.Repeat([]byte("a"), 1<<20)}}, CodecZstd, Producer{}, 1, time.Now())
	if _, _, err := Decode(z, 1<<10, 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("zstd bomb under a 1 KiB limit: %v", err)
	}
	if _, err := Encode(nil, CodecNone, Producer{}, 1, time.Now()); !errors.Is(err, ErrEmptyBatch) {
		t.Fatalf("empty batch: %v", err)
	}
	if _, err := ParseCodec("lz4"); !errors.Is(err, ErrCodec) {
		t.Fatalf("unknown codec: %v", err)
	}
}

// FuzzDecode: Decode never panics, Validate agrees with it, what it
// accepts is within the limits (MaxHeaders, LimitSize, the charged size)
// and re-encodes to a batch that decodes to the same messages.
func FuzzDecode(f *testing.F) {
	for c := CodecNone; c <= CodecZstd; c++ {
		b, _ := Encode(sampleMessages(), c, Producer{ID: 1, Sequence: 2}, 1, time.Now())
		f.Add(b)
	}
	f.Add([]byte("LMQB"))
	// Edge cases: records before the base timestamp, empty keys and
	// values, many empty headers, a count the records do not match, and a
	// gzip member that inflates past the fuzz target's limits.
	t0 := time.UnixMilli(-1)
	for _, msgs := range [][]Message{
		{{Value: []byte("a"), Timestamp: t0}, {Key: []byte{}, Timestamp: t0.Add(-time.Hour)}},
		{{Headers: make([]Header, 100)}},
		{{Headers: make([]Header, MaxHeaders)}, {Headers: make([]Header, MaxHeaders)}},
	} {
		b, _ := Encode(msgs, CodecNone, Producer{}, 0, time.Now())
		f.Add(b)
	}
	f.Add(seal(BatchHeader{Count: 2}, record(uv(0), uv(0), uv(0), uv(0))))
	f.Add(seal(BatchHeader{Codec: CodecGzip, Count: 1}, bomb(f, CodecGzip)))
	hb, _ := Encode([]Message{{Headers: make([]Header, 5000)}}, CodecZstd, Producer{}, 0, time.Now())
	f.Add(hb)
	const maxRecords, maxMessage = 1 << 20, 1 << 16
	f.Fuzz(func(t *testing.T, b []byte) {
		h, msgs, err := Decode(b, maxRecords, maxMessage)
		hv, verr := Validate(b, maxRecords, maxMessage)
		if (err == nil) != (verr == nil) || err == nil && hv != h {
			t.Fatalf("Decode: %v, Validate: %v", err, verr)
		}
		if err == nil {
			charged := 0
			for i := range msgs {
				if len(msgs[i].Headers) > MaxHeaders || msgs[i].LimitSize() > maxMessage {
					t.Fatalf("accepted message %d: %d headers, %d bytes", i, len(msgs[i].Headers), msgs[i].LimitSize())
				}
				charged += msgs[i].ChargedSize()
			}
			if charged > maxRecords {
				t.Fatalf("accepted records charging %d bytes", charged)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		again, err := Encode(msgs, CodecNone, Producer{ID: h.ProducerID, Sequence: h.Sequence}, h.GroupID, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		_, msgs2, err := Decode(again, maxRecords, maxMessage)
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		equalMessages(t, msgs2, msgs)
	})
}

func ExampleEncode() {
	b, _ := Encode([]Message{{Key: []byte("k"), Value: []byte("v")}}, CodecS2, Producer{}, 1, time.Unix(0, 0))
	h, msgs, _ := Decode(b, 0, 0)
	fmt.Println(h.Count, string(msgs[0].Value))
	// Output: 1 v
}
