package wire

import (
	"bytes"
	"errors"
	"testing"
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
