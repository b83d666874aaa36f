package wire

import (
	"bytes"
	"errors"
	"runtime"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
)

func TestCodecNames(t *testing.T) {
	for _, c := range []struct {
		codec Codec
		name  string
	}{{CodecNone, "none"}, {CodecGzip, "gzip"}, {CodecSnappy, "snappy"}, {CodecS2, "s2"}, {CodecZstd, "zstd"}, {5, "codec(5)"}, {255, "codec(255)"}} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.codec.String(); got != c.name {
				t.Fatalf("String() = %q, want %q", got, c.name)
			}
			got, err := ParseCodec(c.name)
			if c.codec.valid() != (err == nil) || (err == nil && got != c.codec) {
				t.Fatalf("ParseCodec(%q) = %v, %v", c.name, got, err)
			}
			if err != nil && !errors.Is(err, ErrCodec) {
				t.Fatalf("ParseCodec(%q) error %v does not wrap ErrCodec", c.name, err)
			}
		})
	}
	for _, s := range []string{"", "NONE", "Gzip", "lz4", " zstd"} {
		if _, err := ParseCodec(s); !errors.Is(err, ErrCodec) {
			t.Errorf("ParseCodec(%q) = %v, want ErrCodec", s, err)
		}
	}
}

// bomb returns a records section of codec c that inflates to 64 MiB of
// zeros (1 MiB for none, 4 MiB for the block formats), built cheaply by
// repeating members or frames of 1 MiB.
func bomb(t testing.TB, c Codec) []byte {
	t.Helper()
	zeros := make([]byte, 1<<20)
	var one []byte
	switch c {
	case CodecNone:
		return make([]byte, 1<<20)
	case CodecGzip:
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(zeros)
		w.Close()
		one = buf.Bytes()
	case CodecSnappy:
		return snappy.Encode(nil, make([]byte, 4<<20))
	case CodecS2:
		return s2.Encode(nil, make([]byte, 4<<20))
	case CodecZstd:
		// A streamed frame declares no content size, and its small window
		// passes the decoder's memory bound: only reading stops it.
		var buf bytes.Buffer
		w, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(zstd.MinWindowSize))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(zeros)
		w.Close()
		one = buf.Bytes()
	}
	return bytes.Repeat(one, 64)
}

// A small batch that inflates far past maxRecordsBytes is refused with
// ErrTooLarge without inflating it: Decode allocates a small multiple of
// the limit, not the megabytes the records inflate to.
func TestDecompressionBombs(t *testing.T) {
	const limit = 64 << 10
	for c := CodecNone; c <= CodecZstd; c++ {
		t.Run(c.String(), func(t *testing.T) {
			b := seal(BatchHeader{Codec: c, Count: 1}, bomb(t, c))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, msgs, err := Decode(b, limit, 0)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLarge) || msgs != nil {
				t.Fatalf("Decode = %d messages, %v; want ErrTooLarge", len(msgs), err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 2<<20 {
				t.Fatalf("refusing a %d-byte batch allocated %d bytes", len(b), n)
			}
			t.Logf("%d-byte batch refused after allocating %d bytes", len(b), after.TotalAlloc-before.TotalAlloc)
		})
	}
}

// A snappy or s2 block whose length prefix claims more than the limit is
// refused before anything is allocated for it, even with no limit given.
func TestLyingDecodedLength(t *testing.T) {
	for _, c := range []Codec{CodecSnappy, CodecS2} {
		for _, limit := range []int{0, 1 << 20} {
			body := append([]byte{0x80, 0x80, 0x80, 0x80, 0x07}, "garbage"...) // uvarint 7<<28: 1.75 GiB
			_, _, err := Decode(seal(BatchHeader{Codec: c, Count: 1}, body), limit, 0)
			if !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrMalformed) {
				t.Errorf("%s, limit %d: %v", c, limit, err)
			}
		}
	}
}

// Records that are not valid data of their codec are malformed.
func TestCorruptCompressedRecords(t *testing.T) {
	valid := map[Codec][]byte{}
	for c := CodecGzip; c <= CodecZstd; c++ {
		b, err := Encode(sampleMessages(), c, Producer{}, 1, sampleMessages()[0].Timestamp)
		if err != nil {
			t.Fatal(err)
		}
		valid[c] = b[HeaderSize:]
	}
	for c := CodecGzip; c <= CodecZstd; c++ {
		for name, body := range map[string][]byte{
			"garbage":            []byte("this is not compressed data at all"),
			"empty":              {},
			"truncated":          valid[c][:len(valid[c])/2],
			"other codec's data": valid[CodecGzip+(c-CodecGzip+1)%4],
		} {
			t.Run(c.String()+"/"+name, func(t *testing.T) {
				_, msgs, err := Decode(seal(BatchHeader{Codec: c, Count: 3}, body), 0, 0)
				if !errors.Is(err, ErrMalformed) || msgs != nil {
					t.Fatalf("Decode = %d messages, %v; want ErrMalformed", len(msgs), err)
				}
			})
		}
	}
}
