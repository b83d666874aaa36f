package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
)

// Codec is a batch's compression codec.
type Codec uint8

// Codecs.
const (
	CodecNone Codec = iota
	CodecGzip
	CodecSnappy
	CodecS2
	CodecZstd
)

func (c Codec) valid() bool { return c <= CodecZstd }

func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecS2:
		return "s2"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// ParseCodec parses a codec name as printed by String.
func ParseCodec(s string) (Codec, error) {
	for c := CodecNone; c <= CodecZstd; c++ {
		if c.String() == s {
			return c, nil
		}
	}
	return 0, fmt.Errorf("%w %q (want none, gzip, snappy, s2 or zstd)", ErrCodec, s)
}

// zstdEncoder is built once per process on first use: an encoder is safe
// for concurrent EncodeAll calls and costly to build. It is a cache with no
// state visible to callers.
var zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
	e, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	return e
})

func compress(c Codec, b []byte) ([]byte, error) {
	switch c {
	case CodecNone:
		return b, nil
	case CodecGzip:
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(b); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case CodecSnappy:
		return snappy.Encode(nil, b), nil
	case CodecS2:
		return s2.Encode(nil, b), nil
	case CodecZstd:
		return zstdEncoder().EncodeAll(b, nil), nil
	}
	return nil, fmt.Errorf("%w %d", ErrCodec, c)
}

// decompress inflates b, refusing output over limit (0: no limit) without
// allocating it first.
func decompress(c Codec, b []byte, limit int) ([]byte, error) {
	if limit <= 0 {
		limit = 1 << 30
	}
	switch c {
	case CodecNone:
		if len(b) > limit {
			return nil, fmt.Errorf("%w: %d bytes of records", ErrTooLarge, len(b))
		}
		return b, nil
	case CodecGzip:
		r, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %w", ErrMalformed, err)
		}
		out, err := readAtMost(r, limit, 0)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %w", ErrMalformed, err)
		}
		if len(out) > limit {
			return nil, fmt.Errorf("%w: records inflate past %d bytes", ErrTooLarge, limit)
		}
		return out, nil
	case CodecSnappy, CodecS2:
		n, err := s2.DecodedLen(b)
		if c == CodecSnappy {
			n, err = snappy.DecodedLen(b)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, c, err)
		}
		if n > limit {
			return nil, fmt.Errorf("%w: records inflate to %d bytes", ErrTooLarge, n)
		}
		var out []byte
		if c == CodecSnappy {
			out, err = snappy.Decode(nil, b)
		} else {
			out, err = s2.Decode(nil, b)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, c, err)
		}
		return out, nil
	case CodecZstd:
		// A declared content size over the limit is refused before any
		// decoding; a declared size within it sizes the buffer once.
		var zh zstd.Header
		sizeHint := 0
		if zh.Decode(b) == nil && zh.HasFCS {
			if zh.FrameContentSize > uint64(limit) {
				return nil, fmt.Errorf("%w: records inflate to %d bytes", ErrTooLarge, zh.FrameContentSize)
			}
			sizeHint = int(zh.FrameContentSize)
		}
		r, err := zstd.NewReader(bytes.NewReader(b), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(max(limit, zstd.MinWindowSize))+1))
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %w", ErrMalformed, err)
		}
		defer r.Close()
		if sizeHint == 0 && len(b) > 0 {
			// No declared size: a first pass counts the output without
			// keeping it (memory: the decoder's window), so that a bomb is
			// refused before its output is buffered and a valid frame is
			// read into one buffer of its size. Twice the CPU, for frames
			// our SDK never sends (it declares sizes).
			n, err := io.Copy(io.Discard, io.LimitReader(r, int64(limit)+1))
			if err := zstdErr(err); err != nil {
				return nil, err
			}
			if n > int64(limit) {
				return nil, fmt.Errorf("%w: records inflate past %d bytes", ErrTooLarge, limit)
			}
			if err := r.Reset(bytes.NewReader(b)); err != nil {
				return nil, fmt.Errorf("%w: zstd: %w", ErrMalformed, err)
			}
			sizeHint = int(n)
		}
		out, err := readAtMost(r, limit, sizeHint)
		if err := zstdErr(err); err != nil {
			return nil, err
		}
		if len(out) > limit {
			return nil, fmt.Errorf("%w: records inflate past %d bytes", ErrTooLarge, limit)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w %d", ErrCodec, c)
}

// zstdErr classifies a zstd decoding error: over a size bound is
// ErrTooLarge, anything else ErrMalformed.
func zstdErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
		return fmt.Errorf("%w: zstd: %w", ErrTooLarge, err)
	}
	return fmt.Errorf("%w: zstd: %w", ErrMalformed, err)
}

// readAtMost reads r to its end or to limit+1 bytes, whichever comes
// first, into a buffer sized from hint (a declared size, when right: one
// allocation) and then doubled, never past limit+1: reading n bytes
// allocates less than 4n and less than 3(limit+1) in all, where
// io.ReadAll's slow growth of large slices can reach 5n.
func readAtMost(r io.Reader, limit, hint int) ([]byte, error) {
	c := max(64<<10, hint+1)
	buf := make([]byte, 0, min(c, limit+1))
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				return buf, nil
			}
			next := min(2*cap(buf), limit+1)
			if limit+1-next < next/2 { // almost there: one step, not two
				next = limit + 1
			}
			nb := make([]byte, len(buf), next)
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
