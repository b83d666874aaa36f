package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"
)

// seal writes h and the uncompressed records recs into a batch with a
// valid length and CRC, so that a test reaches the check it aims at.
func seal(h BatchHeader, recs []byte) []byte {
	b := make([]byte, HeaderSize, HeaderSize+len(recs))
	h.Length = uint32(HeaderSize + len(recs))
	putHeader(b, &h)
	b = append(b, recs...)
	binary.LittleEndian.PutUint32(b[8:], batchCRC(b))
	return b
}

// reseal recomputes the CRC of a batch edited in place.
func reseal(b []byte) []byte {
	binary.LittleEndian.PutUint32(b[8:], batchCRC(b))
	return b
}

func goodBatch(t *testing.T) []byte {
	t.Helper()
	b, err := Encode(sampleMessages(), CodecNone, Producer{ID: 1, Sequence: 2}, 3, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseHeaderRejects(t *testing.T) {
	for _, c := range []struct {
		name    string
		edit    func(b []byte) []byte
		message string // in the error
		codec   bool   // the error also wraps ErrCodec
	}{
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return reseal(b) }, "bad magic", false},
		{"version 0", func(b []byte) []byte { b[4] = 0; return reseal(b) }, "version 0", false},
		{"version 2", func(b []byte) []byte { b[4] = 2; return reseal(b) }, "version 2", false},
		{"unknown codec", func(b []byte) []byte { b[5] = byte(CodecZstd + 1); return reseal(b) }, "codec", true},
		{"codec 255", func(b []byte) []byte { b[5] = 255; return reseal(b) }, "codec", true},
		{"flags set", func(b []byte) []byte { b[7] = 1; return reseal(b) }, "flags", false},
		{"length below the header", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[12:], HeaderSize-1); return b }, "length", false},
		{"length past the buffer", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[12:], uint32(len(b)+1)); return b }, "length", false},
		{"count zero", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[16:], 0); return reseal(b) }, "record count", false},
		{"count over MaxRecords", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[16:], MaxRecords+1); return reseal(b) }, "record count", false},
		{"max timestamp before base", func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[28:], binary.LittleEndian.Uint64(b[20:])-1)
			return reseal(b)
		}, "timestamp", false},
		{"CRC field flipped", func(b []byte) []byte { b[8] ^= 1; return b }, "CRC", false},
		{"record byte flipped", func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }, "CRC", false},
		{"producer id changed", func(b []byte) []byte { b[36]++; return b }, "CRC", false},
		{"empty", func([]byte) []byte { return nil }, "shorter than", false},
		{"header only, 55 bytes", func(b []byte) []byte { return b[:HeaderSize-1] }, "shorter than", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := c.edit(goodBatch(t))
			h, err := ParseHeader(b)
			if !errors.Is(err, ErrMalformed) || errors.Is(err, ErrCodec) != c.codec || !strings.Contains(err.Error(), c.message) {
				t.Fatalf("ParseHeader = %v, want ErrMalformed mentioning %q (ErrCodec %v)", err, c.message, c.codec)
			}
			if h != (BatchHeader{}) {
				t.Fatalf("header %+v returned with an error", h)
			}
			if _, _, err := Decode(b, 0, 0); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode = %v, want ErrMalformed", err)
			}
		})
	}
}

// ParseHeader reads one batch at the start of a buffer that holds more
// (a fetch response's frames); Decode wants exactly one batch.
func TestParseHeaderAllowsTrailingBytes(t *testing.T) {
	b := goodBatch(t)
	more := append(append([]byte(nil), b...), b...)
	h, err := ParseHeader(more)
	if err != nil || int(h.Length) != len(b) {
		t.Fatalf("ParseHeader of two batches = %+v, %v; want length %d", h, err, len(b))
	}
	if _, _, err := Decode(more, 0, 0); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "trailing") {
		t.Fatalf("Decode of two batches = %v, want trailing bytes refused", err)
	}
}

// Every proper prefix of a batch is refused, with every codec.
func TestTruncatedAtEveryByte(t *testing.T) {
	for c := CodecNone; c <= CodecZstd; c++ {
		t.Run(c.String(), func(t *testing.T) {
			b, err := Encode(sampleMessages()[:2], c, Producer{ID: 1}, 1, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			for n := range len(b) {
				if _, err := ParseHeader(b[:n]); !errors.Is(err, ErrMalformed) {
					t.Fatalf("ParseHeader of %d of %d bytes: %v", n, len(b), err)
				}
				if _, _, err := Decode(b[:n], 0, 0); !errors.Is(err, ErrMalformed) {
					t.Fatalf("Decode of %d of %d bytes: %v", n, len(b), err)
				}
			}
		})
	}
}

// record builds one record from raw fields, as appendRecord lays them out,
// so that tests can break one field at a time.
func record(fields ...[]byte) []byte {
	body := bytes.Join(fields, nil)
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
}

func uv(v uint64) []byte { return binary.AppendUvarint(nil, v) }

// TestDecodeRejectsRecords feeds records broken one field at a time behind
// a header with a valid CRC.
func TestDecodeRejectsRecords(t *testing.T) {
	const base = 1_000_000
	hdr := BatchHeader{Codec: CodecNone, Count: 1, BaseTimestamp: base, MaxTimestamp: base}
	okRec := record(uv(0), uv(2), []byte("k"), uv(1), []byte("v"), uv(1), uv(1), []byte("h"), uv(0))
	if _, msgs, err := Decode(seal(hdr, okRec), 0, 0); err != nil || len(msgs) != 1 || string(msgs[0].Key) != "k" {
		t.Fatalf("the reference record does not decode: %v", err)
	}
	overlong := bytes.Repeat([]byte{0xff}, 11)
	for _, c := range []struct {
		name    string
		count   uint32
		recs    []byte
		message string
	}{
		{"no records", 1, nil, "0 records, header says 1"},
		{"fewer records than the count", 2, okRec, "1 records, header says 2"},
		{"more records than the count", 1, append(append([]byte(nil), okRec...), okRec...), "more records than the count"},
		{"overlong body length", 1, overlong, "bad varint"},
		{"body length past the end", 1, append(uv(50), okRec[1:]...), "field of 50 bytes"},
		{"empty body", 1, uv(0), "bad timestamp"},
		{"overlong timestamp", 1, record(overlong), "bad timestamp"},
		{"no key length", 1, record(uv(0)), "bad varint"},
		{"key past the body", 1, record(uv(0), uv(10), []byte("k")), "field of 9 bytes"},
		{"no value length", 1, record(uv(0), uv(0)), "bad varint"},
		{"value past the body", 1, record(uv(0), uv(0), uv(5), []byte("v")), "field of 5 bytes"},
		{"no header count", 1, record(uv(0), uv(0), uv(1), []byte("v")), "bad varint"},
		{"more headers than bytes", 1, record(uv(0), uv(0), uv(0), uv(3), uv(0), uv(0)), "3 headers in 2 bytes"},
		{"header key past the body", 1, record(uv(0), uv(0), uv(0), uv(1), uv(4), []byte("k")), "field of 4 bytes"},
		{"header without value", 1, record(uv(0), uv(0), uv(0), uv(1), uv(1), []byte("k")), "bad varint"},
		{"header value past the body", 1, record(uv(0), uv(0), uv(0), uv(1), uv(0), uv(3), []byte("v")), "field of 3 bytes"},
		{"stray bytes after the headers", 1, record(uv(0), uv(0), uv(0), uv(0), []byte("??")), "2 stray bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := hdr
			h.Count = c.count
			_, msgs, err := Decode(seal(h, c.recs), 0, 0)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.message) {
				t.Fatalf("Decode = %v, want ErrMalformed mentioning %q", err, c.message)
			}
			if msgs != nil {
				t.Fatalf("%d messages returned with an error", len(msgs))
			}
		})
	}
}

// The header's timestamps must be those of the records: the first
// record's, and the newest.
func TestDecodeRejectsHeaderTimestamps(t *testing.T) {
	const base = 1_000_000
	// Two records: at base and base+10.
	recs := append(record(uv(0), uv(0), uv(0), uv(0)), record(binary.AppendVarint(nil, 10), uv(0), uv(0), uv(0))...)
	for _, c := range []struct {
		name          string
		base, maxTs   int64
		firstDeltaNot bool
		ok            bool
	}{
		{"matching", base, base + 10, false, true},
		{"max too high", base, base + 11, false, false},
		{"max too low", base, base + 9, false, false},
		{"max is the base", base, base, false, false},
		{"first record not at the base", base, base + 10, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := recs
			if c.firstDeltaNot {
				// First record at base+1, second at base+10.
				r = append(record(binary.AppendVarint(nil, 1), uv(0), uv(0), uv(0)), record(binary.AppendVarint(nil, 10), uv(0), uv(0), uv(0))...)
			}
			_, msgs, err := Decode(seal(BatchHeader{Count: 2, BaseTimestamp: c.base, MaxTimestamp: c.maxTs}, r), 0, 0)
			if c.ok {
				if err != nil || msgs[1].Timestamp.UnixMilli() != base+10 {
					t.Fatalf("Decode = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "timestamps do not match") {
				t.Fatalf("Decode = %v, want the timestamps refused", err)
			}
		})
	}
}

// maxRecordsBytes bounds the records' charged size (which is larger than
// the decompressed section here) and maxMessageBytes the key, value and
// headers of each record plus HeaderOverhead per header; both are
// inclusive, for every codec. (Records stay over 1 KiB: see
// TestDecodeZstdUnderOneKiB.)
func TestDecodeLimits(t *testing.T) {
	msgs := []Message{
		{Key: []byte("key"), Value: bytes.Repeat([]byte("v"), 1500), Headers: []Header{{"h", []byte("1")}}},
		{Value: bytes.Repeat([]byte("w"), 300)},
	}
	plain, err := Encode(msgs, CodecNone, Producer{}, 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(plain)-HeaderSize > msgs[0].ChargedSize()+msgs[1].ChargedSize() {
		t.Fatal("records section larger than their charge: the test needs a different shape")
	}
	recordsLen := msgs[0].ChargedSize() + msgs[1].ChargedSize()
	largest := msgs[0].LimitSize()
	for c := CodecNone; c <= CodecZstd; c++ {
		b, err := Encode(msgs, c, Producer{}, 1, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range []struct {
			name            string
			records, record int
			want            error
		}{
			{"no limits", 0, 0, nil},
			{"records at the limit", recordsLen, 0, nil},
			{"records one byte over", recordsLen - 1, 0, ErrTooLarge},
			{"records far over", 10, 0, ErrTooLarge},
			{"message at the limit", 0, largest, nil},
			{"message one byte over", 0, largest - 1, ErrTooLarge},
			{"message far over", 0, 1, ErrTooLarge},
		} {
			t.Run(c.String()+"/"+l.name, func(t *testing.T) {
				_, got, err := Decode(b, l.records, l.record)
				if !errors.Is(err, l.want) || (err == nil) != (got != nil) {
					t.Fatalf("Decode(limits %d, %d) = %d messages, %v; want %v", l.records, l.record, len(got), err, l.want)
				}
			})
		}
	}
}
