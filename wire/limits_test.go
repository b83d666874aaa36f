package wire

import (
	"bytes"
	"testing"
	"time"
)

// A message within maxMessageBytes is accepted however many headers carry
// it: the limit counts key, value and headers, not the record's framing.
func TestDecodeMessageLimitIgnoresFraming(t *testing.T) {
	for _, headers := range []int{0, 10, 40, 200} {
		m := Message{Value: []byte("value")}
		for i := range headers {
			m.Headers = append(m.Headers, Header{Key: string(rune('a' + i%26)), Value: nil})
		}
		b, err := Encode([]Message{m}, CodecNone, Producer{}, 1, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := Decode(b, 0, m.Size()); err != nil {
			t.Errorf("%d headers: a message of %d bytes under a limit of %d: %v", headers, m.Size(), m.Size(), err)
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
		if _, _, err := Decode(b, len(plain)-HeaderSize, 0); err != nil {
			t.Errorf("records of %d bytes under a limit of %d: %v", len(plain)-HeaderSize, len(plain)-HeaderSize, err)
		}
	}
}
