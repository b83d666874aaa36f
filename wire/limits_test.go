package wire

import (
	"bytes"
	"errors"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
	"time"
)

// A message's headers count against maxMessageBytes with HeaderOverhead
// each, whatever their bytes: a message at exactly its LimitSize is
// accepted, one byte less refused; more than MaxHeaders are refused.
func TestDecodeMessageLimitChargesHeaders(t *testing.T) {
	for _, headers := range []int{0, 10, 40, MaxHeaders, MaxHeaders + 1, 200} {
		m := Message{Value: []byte("value")}
		for i := range headers {
			m.Headers = append(m.Headers, Header{Key: string(rune('a' + i%26)), Value: nil})
		}
		if got, want := m.LimitSize(), m.Size()+HeaderOverhead*headers; got != want {
			t.Fatalf("LimitSize = %d, want %d", got, want)
		}
		b, err := Encode([]Message{m}, CodecNone, Producer{}, 1, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = Decode(b, 0, m.LimitSize())
		if headers > MaxHeaders {
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("%d headers: %v, want ErrTooLarge", headers, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%d headers: a message of %d bytes under a limit of %d: %v", headers, m.LimitSize(), m.LimitSize(), err)
		}
		if headers > 0 {
			if _, _, err := Decode(b, 0, m.LimitSize()-1); !errors.Is(err, ErrTooLarge) {
				t.Errorf("%d headers, limit one byte short: %v, want ErrTooLarge", headers, err)
			}
		}
	}
}

// A zstd batch whose records fit the limit is accepted when the limit is
// under 1 KiB, as with every other codec.
func TestDecodeZstdUnderOneKiB(t *testing.T) {
	for _, n := range []int{1, 100, 900} {
		m := []Message{{Value: bytes.Repeat([]byte("z"), n)}}
		plain, _ := Encode(m, CodecNone, Producer{}, 1, time.Now())
		b, err := Encode(m, CodecZstd, Producer{}, 1, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		limit := max(len(plain)-HeaderSize, m[0].ChargedSize())
		if _, _, err := Decode(b, limit, 0); err != nil {
			t.Errorf("records of %d bytes under a limit of %d: %v", len(plain)-HeaderSize, limit, err)
		}
	}
}

// A zstd batch whose frame declares more records than the limit is
// refused before decompressing: refusing 8 MiB under a 1 MiB limit
// allocates far less than either.
func TestDecodeZstdDeclaredSizeRefusedEarly(t *testing.T) {
	b, err := Encode([]Message{{Value: make([]byte, 8<<20)}}, CodecZstd, Producer{}, 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err = Decode(b, 1<<20, 0)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Decode = %v, want ErrTooLarge", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<10 {
		t.Fatalf("refusing allocated %d KiB", alloc>>10)
	}
}

// readAtMost grows by doubling, never past limit+1, and reads exactly.
func TestReadAtMost(t *testing.T) {
	data := make([]byte, 3<<20+7)
	for _, tc := range []struct{ limit, hint, want int }{
		{10 << 20, 0, len(data)}, {10 << 20, len(data), len(data)}, {10 << 20, 5, len(data)},
		{1 << 20, 0, 1<<20 + 1}, {len(data), 0, len(data)},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		got, err := readAtMost(bytes.NewReader(data), tc.limit, tc.hint)
		runtime.ReadMemStats(&after)
		if err != nil || len(got) != tc.want {
			t.Fatalf("%+v: %d bytes, %v", tc, len(got), err)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(4*tc.want+(64<<10)) || alloc > uint64(3*(tc.limit+1)+(64<<10)) {
			t.Errorf("%+v: allocated %d bytes to read %d", tc, alloc, len(got))
		}
	}
}

// zstdStream compresses b as one frame that declares no content size
// (as streaming encoders write it), with the given window.
func zstdStream(t *testing.T, b []byte, window int) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := zstd.NewWriter(&out, zstd.WithWindowSize(window), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	for len(b) > 0 { // in pieces: the encoder cannot know the size
		n := min(len(b), 64<<10)
		if _, err := w.Write(b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var h zstd.Header
	if err := h.Decode(out.Bytes()); err != nil || h.HasFCS {
		t.Fatalf("the test frame declares its size (%v): not the case under test", err)
	}
	return out.Bytes()
}

// A zstd frame that does not declare its size is refused, when it
// inflates past the limit, without buffering its output (a bomb of 64 MiB
// of zeros under a 16 MiB limit once allocated ~3× the limit), and read
// into one buffer of its size when it fits.
func TestDecodeZstdUndeclaredSize(t *testing.T) {
	alloc := func(f func()) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	bomb := zstdStream(t, make([]byte, 64<<20), 256<<10)
	var err error
	if n := alloc(func() { _, err = decompress(CodecZstd, bomb, 16<<20) }); !errors.Is(err, ErrTooLarge) || n > 4<<20 {
		t.Fatalf("bomb: %v after allocating %d KiB; want ErrTooLarge within 4 MiB", err, n>>10)
	}
	want := bytes.Repeat([]byte("ledgermq "), 1<<17) // ~1.1 MiB
	frame := zstdStream(t, want, 256<<10)
	var got []byte
	if n := alloc(func() { got, err = decompress(CodecZstd, frame, 16<<20) }); err != nil || !bytes.Equal(got, want) || n > uint64(len(want))+2<<20 {
		t.Fatalf("valid frame: err %v, equal %v, allocated %d KiB for %d KiB", err, bytes.Equal(got, want), n>>10, len(want)>>10)
	}
	if _, err := decompress(CodecZstd, frame, len(want)-1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("one byte over the limit: %v, want ErrTooLarge", err)
	}
	if got, err := decompress(CodecZstd, frame, len(want)); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("exactly at the limit: %v", err)
	}
}
